// State shared by every MCP session of one `serve` process: the lazily loaded model, the request
// queue, the host with the servers of mcp.json, and the agent loop. Each tool call runs through
// runRequest(), which applies the queue, the time limit, cancellation and progress.

import type { ServerNotification, ServerRequest } from "@modelcontextprotocol/sdk/types.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";

import type { ApprovalPolicy } from "../agent/approval.js";
import { DisposedError, NessoError } from "../errors.js";
import type { ChatModel } from "../engine/types.js";
import type { ServerStatus } from "../host/connection.js";
import type { SamplingHandler } from "../host/session.js";
import type { ToolExecutor } from "../host/types.js";
import { createLogger } from "../logger.js";
import type { AgentRunner } from "./agent-runner.js";
import { ModelSlot, type ModelLoader } from "./model-slot.js";
import { serverDefaults } from "./options.js";
import { ProgressReporter } from "./progress.js";
import { RequestQueue } from "./queue.js";

const log = createLogger("server");

export type RequestExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** The part of the host the server uses; `Host` from src/host implements it. */
export interface ServerHost extends ToolExecutor {
  /** The parsed mcp.json; its per-server `approval` policies apply to the agent's calls. */
  readonly config?: { servers: readonly { name: string; approval?: ApprovalPolicy }[] };
  start(options?: { signal?: AbortSignal }): Promise<ServerStatus[]>;
  servers(): ServerStatus[];
  setSamplingHandler(handler: SamplingHandler): void;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Requests that may wait behind the running one (default 8). */
  queueLimit?: number;
  /** Bound on one tool call, queue wait included, in milliseconds (default 10 minutes). */
  requestTimeoutMs?: number;
  /** Generated tokens between two progress notifications (default 16). */
  progressEveryTokens?: number;
  /** Interval of the progress heartbeat while nothing else is reported, in milliseconds (default 5000). */
  queueHeartbeatMs?: number;
  /** Agent steps when the caller gives no `max_steps` (default 8). */
  agentMaxSteps?: number;
}

export interface RuntimeDependencies {
  loadModel: ModelLoader;
  /** The host of mcp.json; without one the `agent` tool runs with no tools. */
  host?: ServerHost;
  /** The agent loop; without one the `agent` tool returns an error result. */
  runAgent?: AgentRunner;
}

/** Inputs of a tool handler for its turn on the engine. */
export interface RequestContext {
  model: ChatModel;
  /** Fires on cancellation by the caller, on the time limit and when the server closes. */
  signal: AbortSignal;
  progress: ProgressReporter;
}

export class ServerRuntime {
  readonly models: ModelSlot;
  readonly queue: RequestQueue;
  readonly host: ServerHost | undefined;
  readonly runAgent: AgentRunner | undefined;
  readonly requestTimeoutMs: number;
  readonly progressEveryTokens: number;
  readonly queueHeartbeatMs: number;
  readonly agentMaxSteps: number;
  readonly #closing = new AbortController();
  #hostStart: Promise<void> | undefined;
  #closePromise: Promise<void> | undefined;

  constructor(dependencies: RuntimeDependencies, options: RuntimeOptions = {}) {
    this.models = new ModelSlot(dependencies.loadModel);
    this.queue = new RequestQueue({ maxWaiting: options.queueLimit ?? serverDefaults.queueLimit });
    this.host = dependencies.host;
    this.runAgent = dependencies.runAgent;
    this.requestTimeoutMs = options.requestTimeoutMs ?? serverDefaults.requestTimeoutMs;
    this.progressEveryTokens = options.progressEveryTokens ?? serverDefaults.progressEveryTokens;
    this.queueHeartbeatMs = options.queueHeartbeatMs ?? serverDefaults.queueHeartbeatMs;
    this.agentMaxSteps = options.agentMaxSteps ?? serverDefaults.agentMaxSteps;
  }

  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /**
   * Connects the servers of mcp.json once, in the background of the first caller. Failures of
   * single servers are reported by the host's status list, not thrown.
   */
  startHost(): Promise<void> {
    const host = this.host;
    if (host === undefined) return Promise.resolve();
    this.#hostStart ??= host.start({ signal: this.#closing.signal }).then(
      (statuses) => {
        for (const status of statuses) {
          if (status.state === "failed") log.warn(`server "${status.name}" is not available: ${status.error ?? "unknown error"}`);
        }
      },
      (error: unknown) => {
        if (!this.closed) log.error("starting the servers of mcp.json failed", error);
      },
    );
    return this.#hostStart;
  }

  /**
   * Runs `work` with the model when the request's turn in the queue comes. The request is
   * rejected at once when the queue is full, and aborted by the caller's cancellation, by the time
   * limit and by close(). Progress notifications go to the caller's progress token.
   */
  async runRequest<T>(label: string, extra: RequestExtra, work: (context: RequestContext) => Promise<T>): Promise<T> {
    if (this.closed) throw new DisposedError("the server");
    const progress = new ProgressReporter(
      { token: extra._meta?.progressToken, send: (notification) => extra.sendNotification(notification) },
      { heartbeatMs: this.queueHeartbeatMs },
    );
    progress.startHeartbeat();
    const timeout = new AbortController();
    const timer = setTimeout(() => {
      timeout.abort(
        new NessoError("TIMEOUT", `${label} timed out after ${this.requestTimeoutMs} ms (the server's request time limit); ask for less work or restart the server with a larger --timeout-ms`),
      );
    }, this.requestTimeoutMs);
    timer.unref();
    const signal = AbortSignal.any([extra.signal, timeout.signal, this.#closing.signal]);

    try {
      return await this.queue.run(
        async () => {
          if (this.models.state !== "ready") progress.setStatus("loading the model", { now: true });
          const model = await this.models.get(signal);
          progress.setStatus("running");
          return await work({ model, signal, progress });
        },
        {
          signal,
          label,
          onPosition: (position) => {
            if (position > 0) progress.setStatus(`waiting in the queue at position ${position}`, { now: true });
          },
        },
      );
    } catch (error) {
      // The signal's reason names what stopped the request (cancellation, time limit or shutdown).
      if (signal.aborted && error !== signal.reason && isAbortError(error)) throw signal.reason;
      throw error;
    } finally {
      clearTimeout(timer);
      progress.stop();
    }
  }

  /** Rejects waiting requests, aborts running ones, closes the host and frees the model. Safe to call twice. */
  close(): Promise<void> {
    this.#closePromise ??= (async () => {
      this.#closing.abort(new DisposedError("the server"));
      this.queue.close();
      await Promise.allSettled([this.host?.close(), this.models.close()]);
    })();
    return this.#closePromise;
  }
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && (error.name === "AbortError" || (error instanceof NessoError && error.code === "ABORTED"));
}
