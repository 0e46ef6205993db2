// The JS-visible surface of the native addon (native/build/Release/nesso_native.node).
// This file is the contract between native/ and src/engine/: the C++ side implements exactly
// these names, and only src/engine/native.ts loads the addon and maps its errors.
//
// Glossary: dim (hidden size), nLayers, nHeads, nKvHeads, headDim, ffnDim (intermediate size),
// vocabSize (rows of the embedding), contextSize.

/** Element type of a tensor as safetensors names it. */
export type NativeDtype = "F32" | "F16" | "BF16";

/** Element type of a checkpoint tensor: a float dtype, or U32 for MLX-packed quantized weights. */
export type NativeTensorDtype = NativeDtype | "U32";

/** Parameters of an MLX affine-quantized weight: w = scale · q + bias per group of inputs. */
export interface NativeQuantization {
  /** Bits per element: 2, 3, 4, 5, 6 or 8. */
  bits: number;
  /** Inputs per group that share one scale and bias: 32, 64 or 128. */
  groupSize: number;
}

/** One tensor the TS side has validated: where its bytes sit in which file. */
export interface NativeTensorSpec {
  /** Checkpoint name, e.g. "model.layers.0.self_attn.q_proj.weight". */
  name: string;
  /** Index into NativeModelSpec.files. */
  file: number;
  dtype: NativeTensorDtype;
  /**
   * Set on a U32 "<path>.weight" of shape [rows, inputs · bits / 32] whose "<path>.scales" and
   * "<path>.biases" ([rows, inputs / groupSize], one float dtype) are also in the spec.
   */
  quantization?: NativeQuantization;
  shape: number[];
  /** Absolute byte offset in the file (8 + header length + data_offsets[0]); may be unaligned. */
  offset: number;
  /** Byte length (data_offsets[1] - data_offsets[0]). */
  byteLength: number;
}

/** Model geometry resolved from config.json with the mlx-lm defaults applied. */
export interface NativeModelConfig {
  dim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  ffnDim: number;
  /** Rows of model.embed_tokens.weight (may exceed the tokenizer's size). */
  vocabSize: number;
  /** Logits of ids >= this are set to -Infinity (the tokenizer has no such ids). */
  tokenizerVocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** false: rotate-half pairing (i, i + headDim/2); true: adjacent pairs (2i, 2i+1). */
  ropeTraditional: boolean;
  /** Per-pair frequency divisors of length headDim/2 (llama3 / linear scaling), or null for plain RoPE. */
  ropeFreqFactors: Float32Array | null;
  /** Multiplies positions before the angle is computed (1 / factor for linear scaling, else 1). */
  ropePositionScale: number;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  mlpBias: boolean;
  /** Hard limit on contextSize (max_position_embeddings). */
  maxContextSize: number;
}

export interface NativeModelSpec {
  /** Absolute paths of the safetensors files; they are mmapped read-only. */
  files: string[];
  tensors: NativeTensorSpec[];
  config: NativeModelConfig;
  /** Compute threads; 0 means one per physical core. */
  threads: number;
}

/** Sampling parameters for one step. temperature 0 means greedy (argmax). */
export interface NativeSamplerParams {
  temperature: number;
  topK: number; // 0 = off
  topP: number; // 1 = off
  minP: number; // 0 = off
  repeatPenalty: number; // 1 = off
  /** Token ids the penalty looks at (the last repeatLastN tokens, chosen by the caller). */
  penaltyTokens: Int32Array | null;
  /** Seed for this step's random draw; the TS side advances it per step for reproducibility. */
  seed: number;
}

export interface NativeEvalResult {
  /** Tokens evaluated (less than requested only when cancelled). */
  evaluated: number;
  cancelled: boolean;
}

/**
 * Element type of a context's KV cache. "f16" (the default, as in llama.cpp) halves the cache's
 * memory and the bytes attention reads per token; "f32" keeps keys and values exactly.
 */
export type KvCacheType = "f16" | "f32";

export interface NativeContext {
  readonly contextSize: number;
  readonly kvCacheType: KvCacheType;
  /** Tokens currently in the KV cache (0 after dispose()). Advances per chunk during an eval. */
  readonly length: number;
  /**
   * Evaluates tokens at positions length..length+n-1 on a worker thread and keeps the logits of
   * the last evaluated position. Prefill runs in chunks of `chunkSize` tokens (default 128) and the
   * cancel flag is checked before each chunk. Rejects (does not crash) when length + n > contextSize
   * (CONTEXT_FULL), when an id is outside [0, vocabSize) or chunkSize is not a positive integer, and
   * when another eval, saveState or loadState of this context is still running ("busy").
   */
  eval(tokens: Int32Array, options?: { chunkSize?: number }): Promise<NativeEvalResult>;
  /**
   * Copies the logits of the last evaluated position ([vocabSize] float32; ids >= tokenizerVocabSize
   * are -Infinity). Throws INVALID_ARGUMENT when there are none: before the first eval, after
   * rewind() dropped tokens, or after loadState() of a state saved without logits.
   */
  getLogits(): Float32Array;
  /**
   * Picks the next token from the last logits. `mask` has one byte per token id (0 = not allowed)
   * and a length between tokenizerVocabSize and vocabSize; ids past its end are not allowed. With
   * a mask where nothing is allowed it throws. Same preconditions as getLogits(). Synchronous: it
   * costs about a millisecond.
   */
  sample(params: NativeSamplerParams, mask?: Uint8Array | null): number;
  /** Drops cached tokens beyond n (prefix reuse). n must be <= length. */
  rewind(n: number): void;
  /**
   * Sets the atomic flag that eval() checks before each chunk; eval() clears it when it is called.
   * A no-op after dispose().
   */
  cancel(): void;
  /**
   * Serializes the KV cache of the first n tokens (default: all) with the model's geometry and
   * weights fingerprint; the last logits are included when n == length.
   */
  saveState(n?: number): Promise<Uint8Array>;
  /** Restores a saveState() result; rejects a state from another model (INVALID_ARGUMENT). */
  loadState(state: Uint8Array): Promise<void>;
  /** Frees the KV cache. Safe to call twice; later calls of other methods throw. */
  dispose(): void;
}

export interface NativeModel {
  readonly config: NativeModelConfig;
  readonly threads: number;
  /** Creates a context with its own KV cache of contextSize positions (kvCacheType default "f16"). */
  createContext(options: { contextSize: number; kvCacheType?: KvCacheType }): NativeContext;
  /** Unmaps the weights. Safe to call twice; contexts must be disposed first or they are disposed here. */
  dispose(): void;
}

/** Kernels exposed for unit tests with hand-computed values. Inputs and outputs are float32. */
export interface NativeTesting {
  rmsNorm(x: Float32Array, weight: Float32Array, eps: number): Float32Array;
  /** Rotates one head vector x [headDim] at `position`. */
  rope(x: Float32Array, position: number, theta: number, traditional: boolean, freqFactors?: Float32Array | null): Float32Array;
  /**
   * Attention of q [nHeads, headDim] over keys/values [nKv, T, headDim] (one query position that
   * sees all T keys), returns [nHeads, headDim]. With kvType "f16" the keys and values are rounded
   * to float16 first and read in that form, as an f16 KV cache stores them.
   */
  attention(q: Float32Array, k: Float32Array, v: Float32Array, nHeads: number, nKvHeads: number, headDim: number, T: number, kvType?: KvCacheType): Float32Array;
  /** y [rows] = W [rows, cols] · x [cols] with W given in `dtype` bytes. */
  matVec(weights: Uint8Array, dtype: NativeDtype, rows: number, cols: number, x: Float32Array): Float32Array;
  /** y [tokens, rows] = x [tokens, cols] · Wᵀ with the prefill kernel. */
  matMul(weights: Uint8Array, dtype: NativeDtype, rows: number, cols: number, x: Float32Array, tokens: number): Float32Array;
  /** softmax(x); -Infinity entries get 0. */
  softmax(x: Float32Array): Float32Array;
  /** silu(gate) ⊙ up with silu(z) = z / (1 + e^-z). */
  siluMul(gate: Float32Array, up: Float32Array): Float32Array;
  /** The first `count` codes of an MLX-packed row (LSB-first bit stream of `bits`-bit codes). */
  quantUnpack(packed: Uint8Array, bits: number, count: number): Uint8Array;
  /**
   * y [rows] = dequant(W) · x for an MLX affine-quantized W: packed rows [rows, cols · bits / 8]
   * bytes, scales and biases [rows, cols / groupSize].
   */
  quantMatVec(packed: Uint8Array, scales: Float32Array, biases: Float32Array, bits: number, groupSize: number, rows: number, cols: number, x: Float32Array): Float32Array;
  /** y [tokens, rows] = x [tokens, cols] · dequant(W)ᵀ with the prefill path. */
  quantMatMul(packed: Uint8Array, scales: Float32Array, biases: Float32Array, bits: number, groupSize: number, rows: number, cols: number, x: Float32Array, tokens: number): Float32Array;
  /** dequant(W) [rows, cols] with w = scale · q + bias. */
  quantDequantize(packed: Uint8Array, scales: Float32Array, biases: Float32Array, bits: number, groupSize: number, rows: number, cols: number): Float32Array;
}

/** The vocabulary byte trie of vocabulary.ts (VocabularyTrie) plus the mask length. */
export interface NativeGrammarTrie {
  /** Token ids per mask (the vocabulary size). */
  size: number;
  /** Length of the longest token byte string (the trie depth). */
  maxTokenBytes: number;
  nodeByte: Uint8Array;
  subtreeEnd: Uint32Array;
  tokenStart: Uint32Array;
  tokenIds: Uint32Array;
}

/** A vocabulary trie copied into native memory once and shared by every NativeTokenMasker built on it. */
export interface NativeGrammarVocabulary {
  readonly size: number;
  readonly nodeCount: number;
}

/** The typed arrays of a GrammarIR (ir.ts); ruleNames are not needed. */
export interface NativeGrammarTables {
  ruleAltStart: Uint32Array;
  altElementStart: Uint32Array;
  elementKind: Uint8Array;
  elementValue: Uint32Array;
  elementMin: Uint32Array;
  elementMax: Uint32Array;
  byteSets: Uint8Array;
  root: number;
}

/**
 * The native pushdown recognizer and trie walk of one grammar. It computes the same masks as
 * TokenMasker.compute in src/tool-calling/grammar/token-mask.ts.
 */
export interface NativeTokenMasker {
  /**
   * Writes 1 into `mask` (length: the vocabulary size) for each token allowed next, 0 elsewhere.
   * `stacks` encodes the recognizer state: the stack count, then per stack its depth d and d
   * (element position, repetition count) pairs from the top frame down. Throws INVALID_ARGUMENT
   * when the encoding does not fit the grammar, UNSUPPORTED when expansion exceeds its limits.
   * Synchronous.
   */
  computeMask(stacks: Uint32Array, accepting: boolean, mask: Uint8Array): void;
  /** States interned now by both recognizers; each drops its tables before a mask once past the state limit. */
  readonly stateCount: number;
  /** Frees the tables. Safe to call twice; computeMask then throws DISPOSED. */
  dispose(): void;
}

export interface NativeAddon {
  loadModel(spec: NativeModelSpec): Promise<NativeModel>;
  /** Routes native log lines to JS (level 0 error .. 3 debug). Native code never prints. */
  setLogger(callback: ((level: number, message: string) => void) | null): void;
  /**
   * SIMD path chosen at run time: "avx512", "avx2", "neon" or "portable". The environment variable
   * NESSO_MCP_SIMD forces one (read at each loadModel() and testing call); an unsupported choice
   * falls back to the best path with a warning. "emulated16" and "emulated4" (test only) run the
   * AVX-512 and NEON algorithms over plain C++ vectors.
   */
  simdPath(): string;
  /** Physical core count as the addon detects it. */
  physicalCores(): number;
  testing: NativeTesting;
  /** Copies and validates a vocabulary trie (INVALID_ARGUMENT names the first inconsistency). */
  createGrammarVocabulary(trie: NativeGrammarTrie): NativeGrammarVocabulary;
  /**
   * Copies and validates a grammar for masks over `vocabulary`. stateLimit (default 32,768, about
   * 36 MB of tables) bounds the interned states of each of its two recognizers; see
   * NativeTokenMasker.stateCount. It also keeps up to 16 cached context masks of vocabulary-size
   * bytes (about 2 MB for Llama 3).
   */
  createTokenMasker(grammar: NativeGrammarTables, vocabulary: NativeGrammarVocabulary, options?: { stateLimit?: number }): NativeTokenMasker;
}
