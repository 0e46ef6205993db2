// Token masks: which vocabulary entries may come next in a grammar state. The mask walks the
// vocabulary trie depth-first and advances the recognizer one byte per trie edge, so a prefix the
// grammar rejects prunes every token below it. Special tokens are allowed where the state has a
// Token element for them.

import type { GrammarRuntime, State } from "./recognizer.js";
import type { Vocabulary } from "./vocabulary.js";

export interface TokenMaskerOptions {
  /**
   * Masks kept for reuse, keyed by the state's canonical key (default 64, at vocabulary-size bytes
   * each: about 8 MB for 128,262 tokens).
   */
  cacheSize?: number;
}

// NOTE: a mask that misses the cache inside a JSON string visits nearly all of the ~275,000 trie
// nodes of the Llama-3 vocabulary (about 7 ms in V8 on an idle 2-core x86_64 machine, measured with
// the grammar-token-mask test). The native engine should precompute, per grammar position, the
// tokens accepted or rejected whatever the stack below is, and walk only the rest at run time.
export class TokenMasker {
  readonly vocabulary: Vocabulary;
  readonly runtime: GrammarRuntime;
  private readonly cache = new Map<string, Uint8Array>();
  private readonly cacheSize: number;
  /** Masks computed by walking the trie (cache misses), for measurements. */
  walks = 0;

  constructor(vocabulary: Vocabulary, runtime: GrammarRuntime, options: TokenMaskerOptions = {}) {
    this.vocabulary = vocabulary;
    this.runtime = runtime;
    this.cacheSize = options.cacheSize ?? 64;
  }

  /**
   * Returns one byte per token id, 1 where the token may come next. The array may be shared with
   * later calls and must not be modified.
   */
  mask(state: State): Uint8Array {
    const key = this.runtime.canonicalKey(state, this.vocabulary.maxTokenBytes);
    const cached = this.cache.get(key);
    if (cached) {
      // Re-inserting keeps the map in least-recently-used order.
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached;
    }
    const mask = this.compute(state);
    this.cache.set(key, mask);
    if (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    return mask;
  }

  /** Computes the mask without the cache. */
  compute(state: State): Uint8Array {
    this.walks++;
    const mask = new Uint8Array(this.vocabulary.size);
    if (state.tops.length > 0) this.walk(0, state, mask);
    for (const id of this.runtime.allowedTokens(state)) {
      if (id < mask.length) mask[id] = 1;
    }
    return mask;
  }

  /** Walks the trie depth-first with an explicit stack (one frame per trie depth), marking allowed tokens. */
  private walk(root: number, rootState: State, mask: Uint8Array): void {
    const { nodeByte, subtreeEnd, tokenStart, tokenIds } = this.vocabulary.trie;
    const runtime = this.runtime;
    const depth = this.vocabulary.maxTokenBytes + 1;
    // Per depth: the parent node's subtree end, the next child to visit and the parent's state.
    const ends = new Uint32Array(depth);
    const nextChild = new Uint32Array(depth);
    const states: State[] = new Array(depth);
    let top = 0;
    ends[0] = subtreeEnd[root];
    nextChild[0] = root + 1;
    states[0] = rootState;

    while (top >= 0) {
      const child = nextChild[top];
      if (child >= ends[top]) {
        top--;
        continue;
      }
      const childEnd = subtreeEnd[child];
      nextChild[top] = childEnd;
      const state = states[top];
      const byte = nodeByte[child];
      let next = state.next[byte];
      if (next === undefined) next = runtime.step(state, byte);
      if (next === null) continue;

      for (let t = tokenStart[child]; t < tokenStart[child + 1]; t++) mask[tokenIds[t]] = 1;
      if (childEnd > child + 1 && next.tops.length > 0) {
        top++;
        ends[top] = childEnd;
        nextChild[top] = child + 1;
        states[top] = next;
      }
    }
  }
}
