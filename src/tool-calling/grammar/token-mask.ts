// Token masks: which vocabulary entries may come next in a grammar state. The mask walks the
// vocabulary trie depth-first and advances the recognizer one byte per trie edge, so a prefix the
// grammar rejects prunes every token below it. Special tokens are allowed where the state has a
// Token element for them.
//
// Two engines compute the same masks: the native addon (native/grammar.cc, the default) and the
// TypeScript walk below, which is the reference the tests compare against and the fallback when
// the addon is not built. The environment variable NESSO_MCP_GRAMMAR=ts|native picks one for
// maskers created without an explicit `engine` option; "native" fails when the addon is missing.

import type { NativeGrammarVocabulary, NativeTokenMasker } from "../../engine/native-api.js";
import { loadNativeAddon } from "../../engine/native.js";
import { NessoError } from "../../errors.js";
import { createLogger } from "../../logger.js";
import type { Frame, GrammarRuntime, State } from "./recognizer.js";
import type { Vocabulary } from "./vocabulary.js";

const log = createLogger("grammar");

/** The implementation that computes masks on a cache miss. */
export type TokenMaskEngine = "ts" | "native";

export interface TokenMaskerOptions {
  /**
   * Masks kept for reuse, keyed by the state's canonical key (default 64, at vocabulary-size bytes
   * each: about 8 MB for 128,262 tokens).
   */
  cacheSize?: number;
  /** Mask engine (default: NESSO_MCP_GRAMMAR, else "native" when the addon loads, else "ts"). */
  engine?: TokenMaskEngine;
}

/** Native copies of vocabulary tries, one per Vocabulary object. */
const nativeVocabularies = new WeakMap<Vocabulary, NativeGrammarVocabulary>();
let nativeUnavailableLogged = false;

/** Resolves the engine option and NESSO_MCP_GRAMMAR into the engine to use. */
function chooseEngine(requested: TokenMaskEngine | undefined): TokenMaskEngine {
  const fromEnv = process.env.NESSO_MCP_GRAMMAR;
  if (requested === undefined && fromEnv !== undefined && fromEnv !== "") {
    if (fromEnv !== "ts" && fromEnv !== "native") {
      throw new NessoError("INVALID_ARGUMENT", `NESSO_MCP_GRAMMAR is ${JSON.stringify(fromEnv)}; set it to "ts" or "native", or unset it`);
    }
    return fromEnv;
  }
  if (requested !== undefined) return requested;
  try {
    loadNativeAddon();
    return "native";
  } catch (error) {
    if (!nativeUnavailableLogged) {
      nativeUnavailableLogged = true;
      log.warn(`native token-mask engine unavailable, using the TypeScript one: ${(error as Error).message}`);
    }
    return "ts";
  }
}

function nativeVocabulary(vocabulary: Vocabulary): NativeGrammarVocabulary {
  let native = nativeVocabularies.get(vocabulary);
  if (native === undefined) {
    const trie = vocabulary.trie;
    native = loadNativeAddon().createGrammarVocabulary({
      size: vocabulary.size,
      maxTokenBytes: vocabulary.maxTokenBytes,
      nodeByte: trie.nodeByte,
      subtreeEnd: trie.subtreeEnd,
      tokenStart: trie.tokenStart,
      tokenIds: trie.tokenIds,
    });
    nativeVocabularies.set(vocabulary, native);
  }
  return native;
}

/**
 * Encodes the stacks of `state` the way NativeTokenMasker.computeMask reads them: the stack count,
 * then per stack its depth and (position, count) pairs from the top frame down.
 */
export function encodeStateStacks(state: State): Uint32Array {
  const values: number[] = [state.tops.length];
  for (const top of state.tops) {
    const depthAt = values.length;
    values.push(0);
    let depth = 0;
    for (let frame: Frame | null = top; frame !== null; frame = frame.parent) {
      values.push(frame.position, frame.count);
      depth++;
    }
    values[depthAt] = depth;
  }
  return Uint32Array.from(values);
}

// A mask that misses the cache inside a JSON string walks nearly all of the ~275,000 trie nodes
// of the Llama-3 vocabulary with the TypeScript engine (9 ms of CPU on a busy 2-core x86_64
// machine). The native engine walks them once per string context (3.5 ms) and then needs about
// 0.25 ms for another string of the same rule (grammar-native.test.ts prints the times).
export class TokenMasker {
  readonly vocabulary: Vocabulary;
  readonly runtime: GrammarRuntime;
  readonly engine: TokenMaskEngine;
  /** The native masker, created on the first mask so that compiling a grammar stays cheap. */
  private native: NativeTokenMasker | null = null;
  private readonly cache = new Map<string, Uint8Array>();
  private readonly cacheSize: number;
  /** Masks computed by walking the trie (cache misses), for measurements. */
  walks = 0;

  constructor(vocabulary: Vocabulary, runtime: GrammarRuntime, options: TokenMaskerOptions = {}) {
    this.vocabulary = vocabulary;
    this.runtime = runtime;
    this.cacheSize = options.cacheSize ?? 64;
    this.engine = chooseEngine(options.engine);
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

  /** Computes the mask without the cache, with this masker's engine. */
  compute(state: State): Uint8Array {
    if (this.engine === "ts") return this.computeReference(state);
    this.native ??= loadNativeAddon().createTokenMasker(this.runtime.grammar, nativeVocabulary(this.vocabulary));
    this.walks++;
    const mask = new Uint8Array(this.vocabulary.size);
    this.native.computeMask(encodeStateStacks(state), state.accepting, mask);
    return mask;
  }

  /** Computes the mask without the cache by the TypeScript walk, whatever the engine. */
  computeReference(state: State): Uint8Array {
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
