// `nesso-mcp serve`: nesso-mcp as an MCP server over stdio or Streamable HTTP, with the agent,
// generate and extract tools and the nesso://model and nesso://servers resources.

import { NessoError } from "../errors.js";
import { createLogger } from "../logger.js";
import { startHttp, type HttpOptions } from "./http.js";
import { createModelLoader, type ModelLoaderOptions } from "./model-loader.js";
import { checkIntegerOption, tokenEnvironmentVariable } from "./options.js";
import { ServerRuntime, type RuntimeDependencies, type RuntimeOptions, type ServerHost } from "./runtime.js";
import { createSamplingHandler } from "./sampling.js";
import { startStdio } from "./stdio.js";

export { guardStdout, type StdoutGuard } from "./stdout-guard.js";
export { createNessoServer } from "./mcp-server.js";
export { ServerRuntime, type RuntimeDependencies, type RuntimeOptions, type ServerHost } from "./runtime.js";
export type { AgentRunner, AgentRunRequest, AgentRunResult, AgentStep, AgentEvent } from "./agent-runner.js";
export type { LoadedModel, ModelInfo, ModelLoader } from "./model-slot.js";
export { serverDefaults, tokenEnvironmentVariable } from "./options.js";

const log = createLogger("server");

export interface StartServerOptions extends RuntimeOptions, ModelLoaderOptions, Omit<HttpOptions, "token"> {
  /** "stdio" (default) or "http" (Streamable HTTP). */
  transport?: "stdio" | "http";
  /** Bearer token for HTTP (default: the NESSO_MCP_TOKEN environment variable; none when both are unset). */
  token?: string;
  /** mcp.json with the servers the agent tool may use (default: ./mcp.json, then the user config directory). */
  configPath?: string;
  /** Start without the servers of mcp.json (the agent tool then has no tools). Default false. */
  noServers?: boolean;
  /** Replaces parts of the real stack; tests use it, the CLI does not need to. */
  dependencies?: Partial<RuntimeDependencies> & { createHost?: () => ServerHost | undefined | Promise<ServerHost | undefined> };
  /** Environment read for the token (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface RunningServer {
  /** The HTTP endpoint, e.g. http://127.0.0.1:6377/mcp; undefined for stdio. */
  readonly url: string | undefined;
  /** Resolves when the server stopped: stdin closed (stdio) or close() was called. */
  readonly closed: Promise<void>;
  /** Stops serving, aborts running requests, closes the servers of mcp.json and frees the model. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts `nesso-mcp serve`. The model is not loaded here but by the first call that needs it, so
 * `initialize` and `tools/list` respond at once. The servers of mcp.json start in the background.
 * For stdio, call guardStdout() before importing anything else.
 */
export async function startServer(options: StartServerOptions = {}): Promise<RunningServer> {
  const transport = options.transport ?? "stdio";
  checkOptions(options);
  const dependencies = options.dependencies ?? {};

  let host: ServerHost | undefined;
  if (dependencies.createHost !== undefined) host = await dependencies.createHost();
  else if (!options.noServers) host = await createDefaultHost(options.configPath);
  const runtime = new ServerRuntime(
    {
      loadModel: dependencies.loadModel ?? createModelLoader(options),
      host,
      runAgent: dependencies.runAgent ?? (await loadDefaultAgentRunner()),
    },
    options,
  );
  host?.setSamplingHandler(createSamplingHandler(runtime));

  let frontEnd: { close(): Promise<void> };
  let url: string | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await frontEnd?.close();
      await runtime.close();
      log.info("server stopped");
      resolveClosed();
    })();
    return closing;
  };

  try {
    if (transport === "http") {
      const token = options.token ?? nonEmpty((options.env ?? process.env)[tokenEnvironmentVariable]);
      const http = await startHttp(runtime, { ...options, token });
      frontEnd = http;
      url = http.url;
    } else {
      const stdio = await startStdio(runtime);
      frontEnd = stdio;
      void stdio.closed.then(close);
    }
  } catch (error) {
    await runtime.close();
    throw error;
  }
  void runtime.startHost();
  return { url, closed, close };
}

function checkOptions(options: StartServerOptions): void {
  if (options.transport !== undefined && options.transport !== "stdio" && options.transport !== "http") {
    throw new NessoError("INVALID_ARGUMENT", `serve: option transport must be "stdio" or "http", got ${JSON.stringify(options.transport)}`);
  }
  if (options.port !== undefined) checkIntegerOption("port", options.port, 0, 65_535);
  if (options.queueLimit !== undefined) checkIntegerOption("queueLimit", options.queueLimit, 0, 10_000);
  if (options.requestTimeoutMs !== undefined) checkIntegerOption("requestTimeoutMs", options.requestTimeoutMs, 1);
  if (options.maxBodyBytes !== undefined) checkIntegerOption("maxBodyBytes", options.maxBodyBytes, 1024);
  if (options.maxSessions !== undefined) checkIntegerOption("maxSessions", options.maxSessions, 1);
  if (options.progressEveryTokens !== undefined) checkIntegerOption("progressEveryTokens", options.progressEveryTokens, 1);
  if (options.queueHeartbeatMs !== undefined) checkIntegerOption("queueHeartbeatMs", options.queueHeartbeatMs, 0);
  if (options.agentMaxSteps !== undefined) checkIntegerOption("agentMaxSteps", options.agentMaxSteps, 1, 50);
  if (options.token !== undefined && options.token.trim() === "") {
    throw new NessoError("INVALID_ARGUMENT", "serve: option token must not be empty; omit it to serve without authentication");
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}

/** Reads mcp.json and creates the host; the servers are started later, in the background. */
async function createDefaultHost(configPath: string | undefined): Promise<ServerHost> {
  const { Host, loadConfig } = await import("../host/index.js");
  const config = loadConfig({ configPath });
  if (config.path === undefined) log.info("no mcp.json found; the agent tool has no tools");
  else log.info(`servers for the agent tool come from ${config.path}`);
  return new Host(config);
}

/** Imports the runner that adapts src/agent's loop to the agent tool. */
async function loadDefaultAgentRunner(): Promise<RuntimeDependencies["runAgent"]> {
  const { runAgentForServer } = await import("./agent-adapter.js");
  return runAgentForServer;
}
