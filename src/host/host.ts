// The MCP host: every server of mcp.json connected in parallel, one tool registry across them, and
// tool calls routed to the right server. The agent loop uses it through ToolExecutor.

import { resolve } from "node:path";

import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

import { DisposedError, NessoError, throwIfAborted } from "../errors.js";
import { createLogger } from "../logger.js";
import type { HostConfig } from "./config.js";
import { defaultConnectionOptions, ServerConnection, type ConnectionOptions, type RestartPolicy, type ServerStatus } from "./connection.js";
import { buildRegistry } from "./registry.js";
import { abortReason, type ElicitationHandler, type SamplingHandler } from "./session.js";
import type { CallToolOptions, RegisteredTool, ToolExecutor } from "./types.js";

const log = createLogger("host");

export interface HostOptions {
  /** Directories offered to servers as roots (default: the working directory); an entry's `roots` replaces them. */
  roots?: string[];
  /** Name and version sent in initialize (default: nesso-mcp 0.1.0). */
  clientInfo?: { name: string; version: string };
  /** Bound on starting one server: spawn, initialize and the first tools/list (default 60 s; npx may download first). */
  startTimeoutMs?: number;
  /** Per-call timeout for servers without `timeoutMs`, reset by progress (default 60 s). */
  callTimeoutMs?: number;
  /** Hard limit of one call, whatever the progress (default 10 min). */
  maxCallMs?: number;
  /** Timeout of each tools/list page (default 30 s). */
  listTimeoutMs?: number;
  /** Wait after closing a stdio server's stdin before SIGTERM (default 2000 ms). */
  stdinGraceMs?: number;
  /** Wait after SIGTERM before SIGKILL (default 2000 ms). */
  termGraceMs?: number;
  /** Lines of stderr kept per stdio server (default 40). */
  stderrLines?: number;
  /** Restart of crashed servers (defaults: 5 attempts, 500 ms doubling up to 30 s, reset after 60 s up). */
  restart?: Partial<RestartPolicy>;
}

type HostState = "new" | "starting" | "started" | "closed";

export class Host implements ToolExecutor {
  readonly config: HostConfig;
  readonly #options: HostOptions;
  #state: HostState = "new";
  #connections: ServerConnection[] = [];
  #samplingHandler?: SamplingHandler;
  #elicitationHandler?: ElicitationHandler;
  #tools: RegisteredTool[] = [];
  #byName = new Map<string, { connection: ServerConnection; tool: RegisteredTool }>();
  #toolsFingerprint = "[]";
  readonly #toolListeners = new Set<(tools: RegisteredTool[]) => void>();
  #closePromise?: Promise<void>;

  constructor(config: HostConfig, options: HostOptions = {}) {
    this.config = config;
    this.#options = options;
  }

  /**
   * Sets the function that handles servers' `sampling/createMessage` requests. The `sampling`
   * capability is declared only when a handler is set before start(); afterwards the handler can
   * be replaced but not added.
   */
  setSamplingHandler(handler: SamplingHandler): void {
    if (this.#state === "closed") throw new DisposedError("Host");
    if (this.#state !== "new" && this.#samplingHandler === undefined) {
      throw new NessoError(
        "INVALID_ARGUMENT",
        "setSamplingHandler() was called after start(); servers were initialized without the sampling capability " +
          "(set the handler before start())",
      );
    }
    this.#samplingHandler = handler;
  }

  /**
   * Sets the function that answers servers' form-mode `elicitation/create` requests. Like the
   * sampling handler, it must be set before start() for the `elicitation` capability to be declared.
   */
  setElicitationHandler(handler: ElicitationHandler): void {
    if (this.#state === "closed") throw new DisposedError("Host");
    if (this.#state !== "new" && this.#elicitationHandler === undefined) {
      throw new NessoError(
        "INVALID_ARGUMENT",
        "setElicitationHandler() was called after start(); servers were initialized without the elicitation capability " +
          "(set the handler before start())",
      );
    }
    this.#elicitationHandler = handler;
  }

  /**
   * Connects every enabled server in parallel. One failing server does not stop the others; the
   * returned report (the same as servers()) lists which started and why the others did not.
   */
  async start(options: { signal?: AbortSignal } = {}): Promise<ServerStatus[]> {
    throwIfAborted(options.signal, "starting the MCP host");
    if (this.#state === "closed") throw new DisposedError("Host");
    if (this.#state !== "new") throw new NessoError("INVALID_ARGUMENT", "Host.start() was called twice (create a new Host to connect again)");
    this.#state = "starting";

    const connectionOptions = this.#connectionOptions();
    this.#connections = this.config.servers.map((server) => new ServerConnection(server, connectionOptions));
    const results = await Promise.allSettled(this.#connections.map((connection) => connection.start(options.signal)));

    results.forEach((result, index) => {
      if (result.status === "rejected") {
        log.error(`server "${this.#connections[index].name}" did not start: ${(result.reason as Error).message}`);
      }
    });
    if (this.#isClosed()) throw new DisposedError("Host");
    this.#state = "started";
    if (options.signal?.aborted) throw abortReason(options.signal, "starting the MCP host");
    return this.servers();
  }

  /** Status of every configured server, in config order (empty before start()). */
  servers(): ServerStatus[] {
    return this.#connections.map((connection) => connection.status());
  }

  /** Returns the tools of running (and restarting) servers under their registered names. */
  listTools(): RegisteredTool[] {
    return [...this.#tools];
  }

  /** Subscribes to changes of the registered tool list; returns the unsubscribe function. */
  onToolsChanged(listener: (tools: RegisteredTool[]) => void): () => void {
    this.#toolListeners.add(listener);
    return () => this.#toolListeners.delete(listener);
  }

  async callTool(name: string, args: Record<string, unknown>, options: CallToolOptions = {}): Promise<CallToolResult> {
    if (this.#state === "closed") throw new DisposedError("Host");
    const entry = this.#byName.get(name);
    if (entry === undefined) {
      const known = this.#tools.map((tool) => tool.name);
      const listed = known.length === 0 ? "no tools are available" : `available tools: ${known.slice(0, 20).join(", ")}${known.length > 20 ? ", …" : ""}`;
      throw new NessoError("INVALID_ARGUMENT", `tools/call: unknown tool "${name}" (${listed})`);
    }
    return entry.connection.callTool(entry.tool.originalName, args, options);
  }

  /**
   * Closes every server in parallel (stdio servers: stdin end → SIGTERM → SIGKILL of the whole
   * process group). Safe to call twice; later calls return the same promise.
   */
  close(): Promise<void> {
    this.#closePromise ??= (async () => {
      this.#state = "closed";
      await Promise.all(this.#connections.map((connection) => connection.close()));
      this.#toolListeners.clear();
    })();
    return this.#closePromise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Rebuilds the registry after any server's tools changed, and notifies listeners of real changes. */
  #rebuildRegistry(): void {
    const connections = this.#connections;
    const tools = buildRegistry(connections.map((connection) => ({ server: connection.name, tools: connection.tools(), approval: connection.config.approval })));

    this.#byName = new Map();
    for (const tool of tools) {
      const connection = connections.find((candidate) => candidate.name === tool.server)!;
      this.#byName.set(tool.name, { connection, tool });
    }
    this.#tools = tools;

    const fingerprint = JSON.stringify(tools);
    if (fingerprint === this.#toolsFingerprint) return;
    this.#toolsFingerprint = fingerprint;
    if (this.#state === "closed") return;
    for (const listener of this.#toolListeners) {
      try {
        listener(this.listTools());
      } catch (error) {
        log.error("a tools-changed listener threw", error);
      }
    }
  }

  #connectionOptions(): ConnectionOptions {
    const options = this.#options;
    const defaults = defaultConnectionOptions;
    return {
      clientInfo: options.clientInfo ?? defaults.clientInfo,
      roots: (options.roots ?? [process.cwd()]).map((root) => resolve(root)),
      samplingHandler: this.#samplingHandler === undefined ? undefined : (params, context) => this.#samplingHandler!(params, context),
      elicitationHandler: this.#elicitationHandler === undefined ? undefined : (params, context) => this.#elicitationHandler!(params, context),
      startTimeoutMs: options.startTimeoutMs ?? defaults.startTimeoutMs,
      listTimeoutMs: options.listTimeoutMs ?? defaults.listTimeoutMs,
      callTimeoutMs: options.callTimeoutMs ?? defaults.callTimeoutMs,
      maxCallMs: options.maxCallMs ?? defaults.maxCallMs,
      stdinGraceMs: options.stdinGraceMs ?? defaults.stdinGraceMs,
      termGraceMs: options.termGraceMs ?? defaults.termGraceMs,
      stderrLines: options.stderrLines ?? defaults.stderrLines,
      restart: { ...defaults.restart, ...options.restart },
      onToolsChanged: () => this.#rebuildRegistry(),
    };
  }

  #isClosed(): boolean {
    return this.#state === "closed";
  }
}
