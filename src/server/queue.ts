// The request queue in front of the one engine: one request runs at a time, the others wait in
// arrival order, and a bounded number may wait.

import { DisposedError, NessoError } from "../errors.js";

export interface RequestQueueOptions {
  /** Requests that may wait behind the running one; a request beyond it is rejected with BUSY at once. */
  maxWaiting: number;
}

export interface EnqueueOptions {
  /** Removes the request from the queue (or aborts it while it runs, through the task's signal). */
  signal?: AbortSignal;
  /** Name of the request in errors, e.g. `tools/call generate`. */
  label?: string;
}

interface Waiter {
  start: () => void;
  fail: (error: unknown) => void;
  onPosition?: (position: number) => void;
}

/** A FIFO of tasks with one running at a time. */
export class RequestQueue {
  readonly maxWaiting: number;
  #running = false;
  #waiting: Waiter[] = [];
  #closed = false;

  constructor(options: RequestQueueOptions) {
    if (!Number.isSafeInteger(options.maxWaiting) || options.maxWaiting < 0) {
      throw new NessoError("INVALID_ARGUMENT", `RequestQueue: maxWaiting must be an integer >= 0, got ${String(options.maxWaiting)}`);
    }
    this.maxWaiting = options.maxWaiting;
  }

  /** Requests waiting for their turn (the running one excluded). */
  get waitingCount(): number {
    return this.#waiting.length;
  }

  get busy(): boolean {
    return this.#running;
  }

  /**
   * Runs `task` once every request that arrived earlier has finished. Rejects at once with a BUSY
   * NessoError when `maxWaiting` requests already wait, and with the signal's reason when the
   * signal fires before the turn comes. `onPosition` receives the 1-based waiting position
   * whenever it changes (0 means running).
   */
  async run<T>(task: () => Promise<T>, options: EnqueueOptions & { onPosition?: (position: number) => void } = {}): Promise<T> {
    const label = options.label ?? "request";
    if (this.#closed) throw new DisposedError("the request queue");
    options.signal?.throwIfAborted();

    if (this.#running) {
      if (this.#waiting.length >= this.maxWaiting) {
        throw new NessoError(
          "BUSY",
          `${label}: the server is busy (1 request running and ${this.#waiting.length} waiting, the queue limit is ${this.maxWaiting}); retry later or start the server with a larger --queue-limit`,
        );
      }
      await this.#waitForTurn(options.signal, options.onPosition);
    }
    this.#running = true;
    options.onPosition?.(0);
    try {
      return await task();
    } finally {
      this.#running = false;
      this.#startNext();
    }
  }

  /** Rejects every waiting request and any later one. Safe to call twice; the running task is not touched. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const waiter of waiting) waiter.fail(new DisposedError("the request queue"));
  }

  #waitForTurn(signal: AbortSignal | undefined, onPosition: ((position: number) => void) | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const index = this.#waiting.indexOf(waiter);
        if (index >= 0) this.#waiting.splice(index, 1);
        this.#reportPositions(index);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        start: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        fail: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
        onPosition,
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(waiter);
      onPosition?.(this.#waiting.length);
    });
  }

  #startNext(): void {
    const next = this.#waiting.shift();
    if (next === undefined) return;
    // The next request claims the slot before any other caller can see it free.
    this.#running = true;
    next.start();
    this.#reportPositions(0);
  }

  /** Tells the waiters from `fromIndex` on their new positions. */
  #reportPositions(fromIndex: number): void {
    for (let index = Math.max(0, fromIndex); index < this.#waiting.length; index++) {
      this.#waiting[index].onPosition?.(index + 1);
    }
  }
}
