// llama.cpp through node-llama-cpp 3.21.1 (prebuilt CPU binary, nothing is built or downloaded),
// used as the reference implementation for logits and as the speed baseline of the benchmark.

import { getLlama, LlamaLogLevel, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel } from "node-llama-cpp";

export interface LlamaCppOptions {
  contextSize: number;
  /** Compute threads (default: node-llama-cpp's choice, the core count). */
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

/** A GGUF model loaded in llama.cpp with one context and one sequence. */
export class LlamaCpp {
  private constructor(
    private readonly llama: Llama,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    readonly sequence: LlamaContextSequence,
  ) {}

  /** Loads a GGUF on the CPU. */
  static async open(ggufPath: string, options: LlamaCppOptions): Promise<LlamaCpp> {
    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
    const model = await llama.loadModel({ modelPath: ggufPath });
    const exact = options.exact ?? true;
    const context = await model.createContext({
      contextSize: options.contextSize,
      batchSize: options.batchSize ?? 512,
      threads: options.threads,
      ...(exact ? { flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" } : {}),
    });
    return new LlamaCpp(llama, model, context, context.getSequence());
  }

  /**
   * Evaluates `prompt`, then follows `steps` more tokens chosen by `choose` (given llama.cpp's
   * greedy token and log-probabilities). Returns llama.cpp's log-softmax of the logits after the
   * prompt and after each followed token ([steps + 1][vocabulary]) and its greedy tokens.
   */
  async followTokens(prompt: number[], steps: number, choose: (step: number, greedyToken: number) => number): Promise<{ logProbs: Float64Array[]; greedyTokens: number[] }> {
    const iterator = this.sequence.evaluateWithMetadata(prompt, { probabilities: true }, { temperature: 0 });
    const logProbs: Float64Array[] = [];
    const greedyTokens: number[] = [];
    try {
      let result = await iterator.next();
      for (let step = 0; step <= steps && !result.done; step++) {
        const { token, probabilities } = result.value;
        // With greedy sampling nothing is filtered, so there is one probability per vocabulary id.
        const row = new Float64Array(probabilities.size).fill(-Infinity);
        for (const [id, probability] of probabilities) row[id] = Math.log(probability);
        logProbs.push(row);
        greedyTokens.push(token);
        if (step === steps) break;
        result = await iterator.next(choose(step, token));
      }
    } finally {
      await iterator.return(undefined);
    }
    return { logProbs, greedyTokens };
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}
