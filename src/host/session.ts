// One MCP session with one server: a transport, an SDK Client on it, the initialize handshake and
// the server's tool list. A connection (connection.ts) opens a new session for every (re)start.

import { basename } from "node:path";
import { pathToFileURL } from "node:url";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ErrorCode,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  McpError,
  ToolListChangedNotificationSchema,
  type ClientCapabilities,
  type CreateMessageRequestParams,
  type CreateMessageResult,
  type Implementation,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import type { ElicitRequestFormParams, ElicitResult } from "@modelcontextprotocol/sdk/types.js";

import { NessoError } from "../errors.js";
import { createLogger } from "../logger.js";
import type { ServerConfig } from "./config.js";
import { StdioProcessTransport } from "./stdio-transport.js";

const log = createLogger("session");

/** A failure to start a server, with the stderr lines the server wrote before it failed. */
export class ServerStartError extends NessoError {
  readonly stderrTail: string[];

  constructor(code: "SERVER" | "TIMEOUT", message: string, stderrTail: string[], cause: unknown) {
    super(code, message, { cause });
    this.name = "ServerStartError";
    this.stderrTail = stderrTail;
  }
}

/** Handles a server's `sampling/createMessage` request; the local model plugs in here. */
export type SamplingHandler = (
  params: CreateMessageRequestParams,
  context: { server: string; signal: AbortSignal },
) => Promise<CreateMessageResult>;

/**
 * Handles a server's form-mode `elicitation/create` request (ask the user for structured input).
 * Defaults declared in the requested schema are filled into an accepted answer by the SDK client,
 * because the capability is declared with `applyDefaults`.
 */
export type ElicitationHandler = (
  params: ElicitRequestFormParams,
  context: { server: string; signal: AbortSignal },
) => Promise<ElicitResult>;

export type TransportKind = "stdio" | "http" | "sse";

export interface SessionOptions {
  clientInfo: Implementation;
  /** Directories offered to the server as roots (file:// URIs); `false` declares no roots capability. */
  roots: readonly string[] | false;
  samplingHandler?: SamplingHandler;
  elicitationHandler?: ElicitationHandler;
  /** Bound on initialize plus the first tools/list, in milliseconds. */
  startTimeoutMs: number;
  /** Timeout of each tools/list page, in milliseconds. */
  listTimeoutMs: number;
  /** Passed to the stdio transport. */
  stdinGraceMs: number;
  termGraceMs: number;
  stderrLines: number;
  /** Called when the session has refreshed its tool list after `notifications/tools/list_changed`. */
  onToolsChanged: (session: Session) => void;
  /** Called when the transport closed without close() being called on the session. */
  onUnexpectedClose: (session: Session) => void;
}

/** An initialized session. `tools` contains the server's complete, unfiltered list. */
export class Session {
  readonly server: string;
  readonly kind: TransportKind;
  readonly client: Client;
  readonly transport: Transport;
  tools: Tool[] = [];
  /** True once the transport has closed, for any reason. */
  closed = false;
  #closing = false;
  #refreshing?: Promise<void>;
  #refreshAgain = false;
  #errorCount = 0;
  readonly #options: SessionOptions;

  constructor(server: string, kind: TransportKind, transport: Transport, options: SessionOptions) {
    this.server = server;
    this.kind = kind;
    this.transport = transport;
    this.#options = options;

    const capabilities: ClientCapabilities = {};
    if (options.roots !== false) capabilities.roots = {};
    if (options.samplingHandler !== undefined) capabilities.sampling = {};
    if (options.elicitationHandler !== undefined) capabilities.elicitation = { form: { applyDefaults: true } };
    this.client = new Client(options.clientInfo, { capabilities });
    this.#installHandlers();
  }

  get stdio(): StdioProcessTransport | undefined {
    return this.transport instanceof StdioProcessTransport ? this.transport : undefined;
  }

  /** Describes a stdio server's exit and stderr tail; "" for remote servers. */
  describeFailure(): string {
    return this.stdio?.describeFailure() ?? "";
  }

  /** Runs the initialize handshake and lists the tools, bounded by `startTimeoutMs` and `signal`. */
  async initialize(signal: AbortSignal): Promise<void> {
    const deadline = AbortSignal.timeout(this.#options.startTimeoutMs);
    const combined = AbortSignal.any([signal, deadline]);
    try {
      await this.client.connect(this.transport, { signal: combined, timeout: this.#options.startTimeoutMs });
      await this.refreshTools(combined);
    } catch (error) {
      // Describe the failure before close(): closing makes a healthy but slow server exit with 0.
      const failure = this.#describeStartError(error, signal, deadline);
      await this.close();
      throw failure;
    }
  }

  /**
   * Lists every page of the server's tools and replaces `tools`. Concurrent requests (for example a
   * list_changed notification during start) are merged into one more listing after the current one.
   */
  async refreshTools(signal?: AbortSignal): Promise<void> {
    if (this.#refreshing !== undefined) {
      this.#refreshAgain = true;
      return this.#refreshing;
    }
    this.#refreshing = (async () => {
      try {
        do {
          this.#refreshAgain = false;
          this.tools = await this.#listAllTools(signal);
        } while (this.#refreshAgain);
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  /** Ends the session; the connection does not treat this close as a crash. Safe to call twice. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.transport instanceof StreamableHTTPClientTransport && this.transport.sessionId !== undefined && !this.closed) {
      // Ask the server to drop the session (HTTP DELETE), bounded because a server that is gone
      // never responds.
      await Promise.race([this.transport.terminateSession().catch(() => {}), delay(1000)]);
    }
    await this.client.close();
    await this.stdio?.terminated;
  }

  /** Turns a failure to connect into an error that names the server and gives the reason. */
  #describeStartError(error: unknown, signal: AbortSignal, deadline: AbortSignal): Error {
    if (signal.aborted) return abortReason(signal, `starting server "${this.server}"`);
    const stderrTail = this.stdio?.stderrLines() ?? [];
    const detail = withDetail(this.describeFailure());

    if (deadline.aborted || isRequestTimeout(error)) {
      const message = `server "${this.server}" did not complete initialize and tools/list within ${this.#options.startTimeoutMs} ms${detail}`;
      return new ServerStartError("TIMEOUT", message, stderrTail, error);
    }
    // Spawn failures (command not found, bad cwd) already name the server and the fix.
    if (error instanceof NessoError && error.code === "SERVER" && this.stdio?.pid === undefined) {
      return new ServerStartError("SERVER", error.message, stderrTail, error);
    }
    const message = `server "${this.server}" failed to start: ${describeTransportError(error)}${detail}`;
    return new ServerStartError("SERVER", message, stderrTail, error);
  }

  async #listAllTools(signal: AbortSignal | undefined): Promise<Tool[]> {
    if (this.client.getServerCapabilities()?.tools === undefined) return [];
    const tools: Tool[] = [];
    const seenCursors = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await this.client.listTools(cursor === undefined ? undefined : { cursor }, {
        signal,
        timeout: this.#options.listTimeoutMs,
      });
      tools.push(...page.tools);
      cursor = page.nextCursor;
      if (cursor !== undefined && seenCursors.has(cursor)) {
        throw new NessoError("SERVER", `server "${this.server}" returned the tools/list cursor ${JSON.stringify(cursor)} twice; stopped paging`);
      }
      if (cursor !== undefined) seenCursors.add(cursor);
    } while (cursor !== undefined);

    // NOTE: Client.listTools (SDK 1.32.2) replaces its output-schema cache with each page, so with
    // several pages only the last page's tools would get their structuredContent validated.
    const client = this.client as unknown as { cacheToolMetadata?: (tools: Tool[]) => void };
    client.cacheToolMetadata?.(tools);
    return tools;
  }

  #installHandlers(): void {
    const { client } = this;
    if (this.#options.roots !== false) {
      const roots = this.#options.roots.map((path) => ({ uri: pathToFileURL(path).href, name: basename(path) || path }));
      client.setRequestHandler(ListRootsRequestSchema, () => ({ roots }));
    }

    const sampling = this.#options.samplingHandler;
    if (sampling !== undefined) {
      client.setRequestHandler(CreateMessageRequestSchema, (request, extra) =>
        sampling(request.params, { server: this.server, signal: extra.signal }),
      );
    }

    const elicitation = this.#options.elicitationHandler;
    if (elicitation !== undefined) {
      client.setRequestHandler(ElicitRequestSchema, async (request, extra) => {
        const params = request.params;
        // Only form mode is declared, so a URL-mode request is declined rather than guessed at.
        if ("mode" in params && params.mode === "url") return { action: "decline" };
        return elicitation(params as ElicitRequestFormParams, { server: this.server, signal: extra.signal });
      });
    }

    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      try {
        await this.refreshTools();
        this.#options.onToolsChanged(this);
      } catch (error) {
        log.warn(`server "${this.server}": refreshing the tool list after list_changed failed: ${(error as Error).message}`);
      }
    });

    client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
      const { level, logger, data } = notification.params;
      log.debug(`server "${this.server}"${logger ? ` (${logger})` : ""} ${level}: ${typeof data === "string" ? data : JSON.stringify(data)}`);
    });

    client.onerror = (error) => {
      // Out-of-band problems: unparseable stdout lines, late progress notifications, SSE reconnects.
      this.#errorCount++;
      if (this.#errorCount <= 5 || this.#errorCount % 100 === 0) {
        log.debug(`server "${this.server}" (error ${this.#errorCount}): ${error.message}`);
      }
    };

    client.onclose = () => {
      this.closed = true;
      if (!this.#closing) this.#options.onUnexpectedClose(this);
    };
  }
}

/**
 * Opens a session with the server of `config`: spawns a stdio server or connects to a remote one,
 * trying Streamable HTTP first and then legacy SSE when the entry has no `type`.
 */
export async function openSession(config: ServerConfig, options: SessionOptions, signal: AbortSignal): Promise<Session> {
  if (config.type === "stdio") {
    const transport = new StdioProcessTransport({
      server: config.name,
      command: config.command,
      args: config.args,
      env: config.env,
      cwd: config.cwd,
      stderrLines: options.stderrLines,
      stdinGraceMs: options.stdinGraceMs,
      termGraceMs: options.termGraceMs,
    });
    const session = new Session(config.name, "stdio", transport, options);
    await session.initialize(signal);
    return session;
  }

  const url = new URL(config.url);
  const requestInit: RequestInit = { headers: config.headers };
  if (config.type === "sse") {
    const session = new Session(config.name, "sse", new SSEClientTransport(url, { requestInit }), options);
    await session.initialize(signal);
    return session;
  }

  const streamable = new Session(config.name, "http", new StreamableHTTPClientTransport(url, { requestInit }), options);
  try {
    await streamable.initialize(signal);
    return streamable;
  } catch (error) {
    if (!config.sseFallback || !isHttpClientError(error)) throw error;
    log.info(`server "${config.name}": Streamable HTTP was rejected (${describeTransportError(error)}); trying legacy SSE at ${url.href}`);
  }
  const sse = new Session(config.name, "sse", new SSEClientTransport(url, { requestInit }), options);
  await sse.initialize(signal);
  return sse;
}

/** True when a Streamable HTTP server has forgotten the session (HTTP 404, the spec's signal). */
export function isSessionLost(error: unknown): boolean {
  if (!(error instanceof StreamableHTTPError)) return false;
  if (error.code === 404) return true;
  // NOTE: server-everything 2026.8.31 returns 400 "No valid session ID provided" for an unknown
  // session instead of 404, so a 400 that mentions the session is treated the same way.
  return error.code === 400 && /session/i.test(error.message);
}

/** Tells whether the Streamable HTTP POST got a 4xx response, the signal to fall back to SSE. */
function isHttpClientError(error: unknown): boolean {
  const cause = error instanceof NessoError ? error.cause : error;
  return cause instanceof StreamableHTTPError && cause.code !== undefined && cause.code >= 400 && cause.code < 500 && cause.code !== 401 && cause.code !== 403;
}

export function isRequestTimeout(error: unknown): boolean {
  return error instanceof McpError && error.code === ErrorCode.RequestTimeout;
}

/** Describes a transport-level failure in one line: HTTP status, connection refused, closed pipe. */
export function describeTransportError(error: unknown): string {
  if (error instanceof StreamableHTTPError) {
    // The message may carry an HTML error page; keep its text, shortened.
    const text = error.message.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim();
    return `HTTP ${error.code}: ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`;
  }
  if (error instanceof McpError && error.code === ErrorCode.ConnectionClosed) return "the server closed the connection";
  if (error instanceof Error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const causeText = cause?.code ?? cause?.message;
    return causeText !== undefined ? `${error.message} (${causeText})` : error.message;
  }
  return String(error);
}

export function abortReason(signal: AbortSignal, operation: string): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name !== "AbortError") return reason;
  return new NessoError("ABORTED", `${operation} was aborted`);
}

function withDetail(detail: string): string {
  return detail === "" ? "" : `: ${detail}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
