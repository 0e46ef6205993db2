// Progress notifications for one request. Hosts with an idle timeout give up on a call that sends
// nothing for a while, so a heartbeat repeats the current status whenever nothing else was sent:
// in the queue, while the model loads, during a long prefill or a slow tool call.

import type { ProgressToken, ServerNotification } from "@modelcontextprotocol/sdk/types.js";
import { createLogger } from "../logger.js";

const log = createLogger("server");

export interface ProgressTarget {
  /** The caller's `_meta.progressToken`; without one, nothing is sent. */
  token: ProgressToken | undefined;
  send(notification: ServerNotification): Promise<void>;
}

/**
 * Sends `notifications/progress` for one request. The `progress` value counts work units (queue
 * heartbeats, generated tokens, agent steps), so it increases strictly with every notification, as
 * the protocol requires. The `message` names the units.
 */
export class ProgressReporter {
  readonly #target: ProgressTarget;
  readonly #heartbeatMs: number;
  #progress = 0;
  #status = "working";
  #lastSentAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(target: ProgressTarget, options: { heartbeatMs: number }) {
    this.#target = target;
    this.#heartbeatMs = options.heartbeatMs;
  }

  get enabled(): boolean {
    return this.#target.token !== undefined && !this.#stopped;
  }

  /** Adds `units` (at least 1 counts) to the progress and sends a notification with `message`. */
  advance(units: number, message: string): void {
    this.#status = message;
    if (!this.enabled) return;
    this.#progress += Math.max(1, units);
    this.#send(message);
  }

  /** Sets the message the heartbeat repeats, and sends it now when `now` is true. */
  setStatus(message: string, options: { now?: boolean } = {}): void {
    this.#status = message;
    if (options.now) this.advance(1, message);
  }

  /** Starts the heartbeat: when nothing was sent for `heartbeatMs`, the current status is sent again. */
  startHeartbeat(): void {
    if (!this.enabled || this.#timer !== undefined || this.#heartbeatMs <= 0) return;
    this.#timer = setInterval(() => {
      if (Date.now() - this.#lastSentAt >= this.#heartbeatMs) this.advance(1, this.#status);
    }, this.#heartbeatMs);
    this.#timer.unref();
  }

  /** Stops the heartbeat and every later notification. Safe to call twice. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #send(message: string): void {
    this.#lastSentAt = Date.now();
    const notification: ServerNotification = {
      method: "notifications/progress",
      params: { progressToken: this.#target.token!, progress: this.#progress, message },
    };
    this.#target.send(notification).catch((error: unknown) => {
      log.debug(`sending a progress notification failed: ${(error as Error).message}`);
    });
  }
}
