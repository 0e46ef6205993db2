// llama.cpp through node-llama-cpp 3.21.1 (prebuilt CPU binary, nothing is built or downloaded),
// used as the reference implementation for logits and as the speed baseline of the benchmark.

import { getLlama, LlamaLogLevel, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from "node-llama-cpp";

/** node-llama-cpp brands token ids; ours are plain numbers. */
export const asTokens = (ids: readonly number[]): Token[] => ids as Token[];

export interface LlamaCppOptions {
  contextSize: number;
  /**
   * Compute threads (default: node-llama-cpp's choice, the core count). ggml's threads spin while
   * they wait for each other, so on a busy machine one thread can be far faster for tiny models.
   */
  threads?: number;
  /** Batch size of one prefill call (default 512). */
  batchSize?: number;
  /**
   * true (default): F32 KV cache and no flash attention, so the only rounding differences from a
   * float32 reference are those of the matmul kernels. false: llama.cpp's own defaults (F16 KV
   * cache, flash attention chosen automatically), which is what its users run.
   */
  exact?: boolean;
}

let cpuLlama: Promise<Llama> | null = null;

/** Loads the llama.cpp CPU backend once per process (loading takes a few seconds) and returns it. */
export function getCpuLlama(): Promise<Llama> {
  cpuLlama ??= getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
  return cpuLlama;
}

/** Unloads the backend of getCpuLlama(); safe to call when it was never loaded. */
export async function disposeCpuLlama(): Promise<void> {
  const loading = cpuLlama;
  cpuLlama = null;
  if (loading) await (await loading).dispose();
}

/** A GGUF model loaded in llama.cpp with one context and one sequence. */
export class LlamaCpp {
  private constructor(
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    readonly sequence: LlamaContextSequence,
  ) {}

  /** Loads a GGUF on the CPU. */
  static async open(ggufPath: string, options: LlamaCppOptions): Promise<LlamaCpp> {
    const llama = await getCpuLlama();
    const model = await llama.loadModel({ modelPath: ggufPath });
    const exact = options.exact ?? true;
    const context = await model.createContext({
      contextSize: options.contextSize,
      batchSize: options.batchSize ?? 512,
      threads: options.threads,
      ...(exact ? { flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" } : {}),
    });
    return new LlamaCpp(model, context, context.getSequence());
  }

  /**
   * Evaluates `tokens` from an empty cache and returns llama.cpp's log-softmax of the logits of the
   * last position, one entry per vocabulary id (node-llama-cpp exposes probabilities, not raw
   * logits, so the logits are known up to a constant).
   */
  async logProbsAfter(tokens: readonly number[]): Promise<Float64Array> {
    await this.sequence.clearHistory();
    const iterator = this.sequence.evaluateWithMetadata(asTokens(tokens), { probabilities: true }, { temperature: 0 });
    try {
      const result = await iterator.next();
      if (result.done) throw new Error("llama.cpp produced no token");
      const probabilities = result.value.probabilities;
      // With greedy sampling nothing is filtered, so there is one probability per vocabulary id.
      const row = new Float64Array(probabilities.size).fill(-Infinity);
      for (const [id, probability] of probabilities) row[id] = Math.log(probability);
      return row;
    } finally {
      await iterator.return(undefined);
    }
  }

  /** Generates `count` tokens greedily after `prompt` (from an empty cache; stop tokens do not end it). */
  async greedy(prompt: readonly number[], count: number): Promise<number[]> {
    await this.sequence.clearHistory();
    const tokens: number[] = [];
    for await (const token of this.sequence.evaluate(asTokens(prompt), { temperature: 0 })) {
      tokens.push(token);
      if (tokens.length === count) break;
    }
    return tokens;
  }

  /** Frees the context and the model; the backend stays loaded (see disposeCpuLlama). */
  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}
