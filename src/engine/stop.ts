// When generation ends: stop token ids, and stop strings that are cut from the output.

import type { TextTokenizer } from "./tokenizer.js";

/** End-of-turn tokens of the Llama 3 family, treated as stops whenever the tokenizer has them. */
const conventionalStopTokens = ["<|im_end|>", "<|end_of_text|>", "<|eot_id|>"];

/**
 * The stop token set: `<|im_end|>`, `<|end_of_text|>` and `<|eot_id|>` when the tokenizer has
 * them, the tokenizer's eos_token, and the eos ids of config.json and generation_config.json.
 * Nesso ends turns with `<|im_end|>` (128256) while its base config may still list 128001, so the
 * sets are merged (mlx-lm uses only the config ids, which may miss `<|im_end|>`).
 */
export function stopTokenIds(tokenizer: TextTokenizer, configEosIds: readonly number[]): Set<number> {
  const ids = new Set<number>(configEosIds);
  for (const token of [...conventionalStopTokens, tokenizer.eosToken]) {
    if (token === null) continue;
    const id = tokenizer.tokenId(token);
    if (id !== undefined) ids.add(id);
  }
  return ids;
}

/**
 * Finds stop strings in streamed text. Text that could be the start of a stop string is held back
 * until it is known not to be one, so no part of a stop string is ever emitted.
 */
export class StopStringMatcher {
  private pending = "";
  private readonly stops: string[];

  constructor(stops: readonly string[] = []) {
    this.stops = stops.filter((stop) => stop.length > 0);
  }

  /** Adds streamed text; returns the text that is safe to emit and whether a stop string was found. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text, stopped: false };
    this.pending += text;

    let stopAt = -1;
    for (const stop of this.stops) {
      const index = this.pending.indexOf(stop);
      if (index !== -1 && (stopAt === -1 || index < stopAt)) stopAt = index;
    }
    if (stopAt !== -1) {
      const emitted = this.pending.slice(0, stopAt);
      this.pending = "";
      return { text: emitted, stopped: true };
    }

    const keep = this.partialStopLength();
    const emitted = this.pending.slice(0, this.pending.length - keep);
    this.pending = this.pending.slice(this.pending.length - keep);
    return { text: emitted, stopped: false };
  }

  /** Returns the held-back text at the end of generation (it did not become a stop string). */
  flush(): string {
    const rest = this.pending;
    this.pending = "";
    return rest;
  }

  /** Length of the longest suffix of the pending text that is a proper prefix of a stop string. */
  private partialStopLength(): number {
    let longest = 0;
    for (const stop of this.stops) {
      const maxLength = Math.min(stop.length - 1, this.pending.length);
      for (let length = maxLength; length > longest; length--) {
        if (this.pending.endsWith(stop.slice(0, length))) {
          longest = length;
          break;
        }
      }
    }
    return longest;
  }
}
