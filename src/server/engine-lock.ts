// One generation at a time on the engine's single session. The request queue already runs one tool
// call at a time. This lock also covers sampling requests from downstream servers. Those arrive
// while an agent request holds the queue and waits for a tool call, so they must not queue behind it.

import type { ChatModel, GenerateOptions, GenerationRecord } from "../engine/types.js";

/** A FIFO mutex whose waits can be aborted. */
export class EngineLock {
  #held = false;
  #waiters: (() => void)[] = [];

  /** Resolves to the release function once the lock is free; rejects with the signal's reason when it fires first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve(this.#releaser());
      };
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((waiter) => waiter !== grant);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(grant);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next === undefined) this.#held = false;
      else next();
    };
  }
}

/** Wraps a ChatModel so that each generate() holds the lock from its first step until the stream ends or is returned. */
export function lockedChatModel(model: ChatModel, lock: EngineLock): ChatModel {
  return {
    get contextSize() {
      return model.contextSize;
    },
    countTokens: (text) => model.countTokens(text),
    renderChat: (messages, options) => model.renderChat(messages, options),
    async *generate(prompt: string, options: GenerateOptions = {}): AsyncGenerator<GenerationRecord, void, undefined> {
      const release = await lock.acquire(options.signal);
      try {
        yield* model.generate(prompt, options);
      } finally {
        release();
      }
    },
  };
}
