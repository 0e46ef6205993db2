// The lifecycle of one configured server: start, restart with backoff after a crash, the filtered
// tool list, and tool calls with timeouts, progress and cancellation.

import { McpError, type CallToolResult, type Tool } from "@modelcontextprotocol/sdk/types.js";

import { DisposedError, NessoError, throwIfAborted } from "../errors.js";
import { createLogger } from "../logger.js";
import type { ServerConfig } from "./config.js";
import {
  abortReason,
  describeTransportError,
  isRequestTimeout,
  isSessionLost,
  openSession,
  ServerStartError,
  type Session,
  type SessionOptions,
  type TransportKind,
} from "./session.js";
import { filterTools } from "./tool-filter.js";
import type { CallToolOptions } from "./types.js";

const log = createLogger("connection");

/** Lifecycle state of a server. */
export type ServerState = "disabled" | "starting" | "ready" | "restarting" | "failed" | "closed";

/** Status of one server, as `Host.servers()` reports it. */
export interface ServerStatus {
  name: string;
  state: ServerState;
  transport: TransportKind;
  /** Tools exposed after `includeTools`/`excludeTools`. */
  toolCount: number;
  /** Reason the server failed to start, crashed or was given up on, with the last stderr lines. */
  error?: string;
  /** Last stderr lines of a stdio server. */
  stderrTail?: string[];
  /** Process id of a running stdio server (the leader of its process group). */
  pid?: number;
  /** How many times the server was restarted after a crash. */
  restarts: number;
  serverInfo?: { name: string; version: string };
}

/** Restart after a crash: delays double from `initialDelayMs` up to `maxDelayMs`. */
export interface RestartPolicy {
  /** Consecutive failed restarts before the server is marked failed (default 5). */
  maxAttempts: number;
  /** Delay before the first restart (default 500 ms). */
  initialDelayMs: number;
  /** Maximum delay between restarts (default 30 s). */
  maxDelayMs: number;
  /** A server that ran this long before crashing starts again from attempt 1 (default 60 s). */
  stableAfterMs: number;
}

export interface ConnectionOptions extends Omit<SessionOptions, "onToolsChanged" | "onUnexpectedClose"> {
  /** Per-call timeout when the server entry has no `timeoutMs`, reset by progress (default 60 s). */
  callTimeoutMs: number;
  /** Hard limit of one call, whatever the progress (default 10 min). */
  maxCallMs: number;
  restart: RestartPolicy;
  /** Called whenever the filtered tool list may have changed. */
  onToolsChanged: () => void;
}

export const defaultConnectionOptions: Omit<ConnectionOptions, "onToolsChanged"> = {
  clientInfo: { name: "nesso-mcp", version: "0.1.0" },
  roots: [],
  startTimeoutMs: 60_000,
  listTimeoutMs: 30_000,
  callTimeoutMs: 60_000,
  maxCallMs: 600_000,
  stdinGraceMs: 2000,
  termGraceMs: 2000,
  stderrLines: 40,
  restart: { maxAttempts: 5, initialDelayMs: 500, maxDelayMs: 30_000, stableAfterMs: 60_000 },
};

export class ServerConnection {
  readonly config: ServerConfig;
  readonly #options: ConnectionOptions;
  #state: ServerState;
  #session?: Session;
  #tools: Tool[] = [];
  #error?: string;
  /** Stderr of the last failed start or crash; the live session's stderr is used while it runs. */
  #failedStderr?: string[];
  #restarts = 0;
  #restartAttempt = 0;
  #readySince = 0;
  #restartTimer?: NodeJS.Timeout;
  #reconnecting?: Promise<Session>;
  #closePromise?: Promise<void>;
  readonly #closeController = new AbortController();
  readonly #stateListeners = new Set<() => void>();

  constructor(config: ServerConfig, options: ConnectionOptions) {
    this.config = config;
    this.#options = options;
    this.#state = config.disabled ? "disabled" : "starting";
  }

  get name(): string {
    return this.config.name;
  }

  get state(): ServerState {
    return this.#state;
  }

  /**
   * Returns the server's tools after `includeTools`/`excludeTools`. They stay listed while a crashed server
   * restarts (calls wait for it) and are empty once it failed or closed.
   */
  tools(): Tool[] {
    return this.#state === "ready" || this.#state === "restarting" ? this.#tools : [];
  }

  status(): ServerStatus {
    const session = this.#session;
    const status: ServerStatus = {
      name: this.name,
      state: this.#state,
      transport: session?.kind ?? (this.config.type === "stdio" ? "stdio" : this.config.type),
      toolCount: this.tools().length,
      restarts: this.#restarts,
    };
    if (this.#error !== undefined) status.error = this.#error;
    const stdio = session?.stdio;
    const stderrTail = this.#failedStderr ?? stdio?.stderrLines();
    if (stderrTail !== undefined) status.stderrTail = stderrTail;
    if (this.#state === "ready" && stdio?.pid !== undefined) status.pid = stdio.pid;
    const info = session?.client.getServerVersion();
    if (info !== undefined) status.serverInfo = { name: info.name, version: info.version };
    return status;
  }

  /** Connects for the first time. Rejects with the reason when the server cannot be started. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#state === "disabled") return;
    if (this.#state === "closed") throw new DisposedError(`server connection "${this.name}"`);
    if (this.#session !== undefined) throw new NessoError("INTERNAL", `server connection "${this.name}" was started twice`);
    const combined = signal === undefined ? this.#closeController.signal : AbortSignal.any([signal, this.#closeController.signal]);
    try {
      const session = await openSession(this.config, this.#sessionOptions(), combined);
      this.#adopt(session);
    } catch (error) {
      if (this.#isClosed()) throw new DisposedError(`server connection "${this.name}"`);
      this.#recordFailure(error);
      this.#setState("failed");
      throw error;
    }
  }

  /**
   * Calls a tool by its name on this server. Server-reported failures resolve as `isError`
   * results; a crash, timeout or abort rejects (see ToolExecutor.callTool).
   */
  async callTool(toolName: string, args: Record<string, unknown>, options: CallToolOptions = {}): Promise<CallToolResult> {
    const operation = `tools/call "${toolName}" on server "${this.name}"`;
    throwIfAborted(options.signal, operation);
    const timeoutMs = options.timeoutMs ?? this.config.timeoutMs ?? this.#options.callTimeoutMs;

    const session = await this.#readySession(operation, timeoutMs, options.signal);
    try {
      return await this.#callOnce(session, toolName, args, options, timeoutMs);
    } catch (error) {
      if (!isSessionLost(error)) return this.#settleCallError(error, session, operation);
    }

    log.info(`server "${this.name}" forgot the session; initializing again`);
    const fresh = await this.#reconnect(session, options.signal);
    try {
      return await this.#callOnce(fresh, toolName, args, options, timeoutMs);
    } catch (error) {
      return this.#settleCallError(error, fresh, operation);
    }
  }

  /** Stops restarts and ends the session (and the process group of a stdio server). Safe to call twice. */
  close(): Promise<void> {
    this.#closePromise ??= (async () => {
      clearTimeout(this.#restartTimer);
      this.#closeController.abort(new NessoError("ABORTED", `server "${this.name}" is closing`));
      const previous = this.#state;
      this.#setState("closed");
      if (previous === "ready" || previous === "restarting") this.#options.onToolsChanged();
      const session = this.#session;
      if (session !== undefined) {
        try {
          await session.close();
        } catch (error) {
          log.warn(`closing server "${this.name}" failed: ${(error as Error).message}`);
        }
      }
      log.info(`server "${this.name}" closed`);
    })();
    return this.#closePromise;
  }

  async #callOnce(session: Session, toolName: string, args: Record<string, unknown>, options: CallToolOptions, timeoutMs: number): Promise<CallToolResult> {
    const maxCallMs = Math.max(this.#options.maxCallMs, timeoutMs);
    const operation = `tools/call "${toolName}" on server "${this.name}"`;

    // A controller per call, so that the SDK's abort listener (never removed in SDK 1.x) is
    // attached to an object that dies with the call, not to the caller's long-lived signal.
    const controller = new AbortController();
    const onAbort = () => controller.abort(abortReason(options.signal!, operation));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const hardLimit = setTimeout(() => {
      controller.abort(new NessoError("TIMEOUT", `${operation} ran longer than the hard limit of ${maxCallMs} ms (progress does not extend it past this)`));
    }, maxCallMs);

    try {
      const result = await session.client.callTool({ name: toolName, arguments: args }, undefined, {
        signal: controller.signal,
        timeout: timeoutMs,
        resetTimeoutOnProgress: true,
        onprogress: (progress) => options.onProgress?.({ progress: progress.progress, total: progress.total, message: progress.message }),
      });
      return result as CallToolResult;
    } catch (error) {
      if (controller.signal.aborted) throw controller.signal.reason;
      if (isRequestTimeout(error)) {
        throw new NessoError(
          "TIMEOUT",
          `${operation} timed out after ${timeoutMs} ms without a result or progress ` +
            `(raise "timeoutMs" of server "${this.name}" in mcp.json if the tool is slow)`,
          { cause: error },
        );
      }
      throw error;
    } finally {
      clearTimeout(hardLimit);
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Settles a failed call: an error the server sent becomes an `isError` result, anything else is thrown. */
  #settleCallError(error: unknown, session: Session, operation: string): CallToolResult {
    if (error instanceof NessoError) throw error;
    if (session.closed) {
      if (this.#state === "closed") throw new NessoError("ABORTED", `${operation} was cancelled because the host is closing`, { cause: error });
      const detail = session.describeFailure();
      throw new NessoError("SERVER", `server "${this.name}" stopped during ${operation}${detail === "" ? "" : `: ${detail}`}`, { cause: error });
    }
    if (error instanceof McpError) {
      return { isError: true, content: [{ type: "text", text: `${operation} failed: ${error.message}` }] };
    }
    const where = this.config.type === "stdio" ? "" : ` at ${this.config.url}`;
    throw new NessoError("SERVER", `${operation} failed: server "${this.name}"${where}: ${describeTransportError(error)}`, { cause: error });
  }

  /** Waits until the server is ready (it may be restarting), bounded by `timeoutMs` and `signal`. */
  async #readySession(operation: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<Session> {
    if (this.#state === "starting" || this.#state === "restarting") {
      await this.#waitForStateChange(operation, timeoutMs, signal, () => this.#state !== "starting" && this.#state !== "restarting");
    }
    switch (this.#state) {
      case "ready":
        return this.#session!;
      case "disabled":
        throw new NessoError("SERVER", `${operation}: the server is disabled in mcp.json ("disabled": true)`);
      case "closed":
        throw new DisposedError(`server connection "${this.name}"`);
      default:
        throw new NessoError("SERVER", `${operation}: the server is not running: ${this.#error ?? "unknown error"}`);
    }
  }

  #waitForStateChange(operation: string, timeoutMs: number, signal: AbortSignal | undefined, done: () => boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const finish = (error?: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#stateListeners.delete(listener);
        if (error === undefined) resolve();
        else reject(error);
      };
      const listener = () => {
        if (done()) finish();
      };
      const onAbort = () => finish(abortReason(signal!, operation));
      const timer = setTimeout(() => {
        finish(new NessoError("TIMEOUT", `${operation} timed out after ${timeoutMs} ms waiting for the server to restart: ${this.#error ?? ""}`));
      }, timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#stateListeners.add(listener);
    });
  }

  /** Opens a new session after a remote server forgot the current one; concurrent callers share it. */
  #reconnect(lost: Session, signal: AbortSignal | undefined): Promise<Session> {
    if (this.#session !== lost && this.#session !== undefined && this.#state === "ready") return Promise.resolve(this.#session);
    this.#reconnecting ??= (async () => {
      try {
        void lost.close().catch(() => {});
        const combined = signal === undefined ? this.#closeController.signal : AbortSignal.any([signal, this.#closeController.signal]);
        const session = await openSession(this.config, this.#sessionOptions(), combined);
        this.#adopt(session);
        return session;
      } finally {
        this.#reconnecting = undefined;
      }
    })();
    return this.#reconnecting;
  }

  /** Makes a freshly opened session the current one. */
  #adopt(session: Session): void {
    if (this.#state === "closed") {
      void session.close();
      throw new DisposedError(`server connection "${this.name}"`);
    }
    this.#session = session;
    this.#tools = filterTools(session.tools, this.config.includeTools, this.config.excludeTools);
    this.#readySince = Date.now();
    this.#error = undefined;
    this.#failedStderr = undefined;
    this.#setState("ready");
    log.info(`server "${this.name}" is ready over ${session.kind} with ${this.#tools.length} tools`);
    this.#options.onToolsChanged();
  }

  #handleToolsChanged(session: Session): void {
    if (session !== this.#session || this.#state !== "ready") return;
    this.#tools = filterTools(session.tools, this.config.includeTools, this.config.excludeTools);
    log.info(`server "${this.name}" changed its tool list; now ${this.#tools.length} tools`);
    this.#options.onToolsChanged();
  }

  #handleUnexpectedClose(session: Session): void {
    if (session !== this.#session || this.#state !== "ready") return;
    const detail = session.describeFailure();
    this.#error = `server "${this.name}" stopped unexpectedly${detail === "" ? "" : `: ${detail}`}`;
    this.#failedStderr = session.stdio?.stderrLines();
    this.#setState("restarting");
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    if (this.#state === "closed") return;
    const policy = this.#options.restart;
    if (this.#readySince !== 0 && Date.now() - this.#readySince >= policy.stableAfterMs) this.#restartAttempt = 0;
    this.#readySince = 0;
    this.#restartAttempt++;

    if (this.#restartAttempt > policy.maxAttempts) {
      this.#error = `gave up after ${policy.maxAttempts} restart attempts; last error: ${this.#error ?? "unknown"}`;
      log.error(`server "${this.name}" ${this.#error}`);
      this.#setState("failed");
      this.#options.onToolsChanged();
      return;
    }
    const delayMs = Math.min(policy.initialDelayMs * 2 ** (this.#restartAttempt - 1), policy.maxDelayMs);
    log.warn(`server "${this.name}" will restart in ${delayMs} ms (attempt ${this.#restartAttempt} of ${policy.maxAttempts})`);
    this.#restartTimer = setTimeout(() => void this.#restart(), delayMs);
    this.#restartTimer.unref();
  }

  async #restart(): Promise<void> {
    // The previous process group must be gone before a new one starts.
    await this.#session?.close().catch(() => {});
    if (this.#state === "closed") return;
    try {
      const session = await openSession(this.config, this.#sessionOptions(), this.#closeController.signal);
      this.#restarts++;
      this.#adopt(session);
    } catch (error) {
      if (this.#isClosed()) return;
      this.#recordFailure(error);
      log.warn(`restarting server "${this.name}" failed: ${this.#error}`);
      this.#scheduleRestart();
    }
  }

  #sessionOptions(): SessionOptions {
    return {
      ...this.#options,
      roots: this.config.roots ?? this.#options.roots,
      onToolsChanged: (session) => this.#handleToolsChanged(session),
      onUnexpectedClose: (session) => this.#handleUnexpectedClose(session),
    };
  }

  #recordFailure(error: unknown): void {
    this.#error = (error as Error).message;
    this.#failedStderr = error instanceof ServerStartError && error.stderrTail.length > 0 ? error.stderrTail : undefined;
  }

  /** Reads the state without type narrowing, because await points may have changed it. */
  #isClosed(): boolean {
    return this.#state === "closed";
  }

  #setState(state: ServerState): void {
    this.#state = state;
    for (const listener of [...this.#stateListeners]) listener();
  }
}
