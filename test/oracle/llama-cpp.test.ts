// Golden comparison with llama.cpp: the same checkpoint, written as GGUF by our own writer, gives
// the same next-token distribution and the same greedy tokens in both engines.

import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Model } from "../../src/engine/model.js";
import { cachedCheckpoint, tinyCheckpoint, tinyShape } from "../fixtures/checkpoint.js";
import { collect, makeTempDir } from "../engine/helpers.js";
import { writeGguf } from "./gguf.js";
import { disposeCpuLlama, LlamaCpp } from "./llama-cpp.js";

const greedySteps = 32;
const temp = makeTempDir("nesso-oracle-");
afterAll(async () => {
  await disposeCpuLlama();
  temp.remove();
});

function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const value of logits) if (value > max) max = value;
  let sum = 0;
  for (const value of logits) sum += Math.exp(value - max);
  const logSum = max + Math.log(sum);
  return Float64Array.from(logits, (value) => value - logSum);
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

interface Comparison {
  /** max over the compared positions and ids of |Δ log-softmax| between the engines. */
  maxDifference: number;
  /** max over the compared positions and ids of |logit| in our engine. */
  maxLogit: number;
  ourTokens: number[];
  llamaTokens: number[];
  promptLength: number;
}

/** Largest |a - b| over ids where llama.cpp's probability did not underflow, and largest |logit|. */
function compareRows(ours: Float32Array, theirs: Float64Array): { difference: number; maxLogit: number } {
  expect(theirs.length).toBe(ours.length);
  const mine = logSoftmax(ours);
  let difference = 0;
  let maxLogit = 0;
  for (let id = 0; id < mine.length; id++) {
    maxLogit = Math.max(maxLogit, Math.abs(ours[id]));
    // A probability that underflows float32 in node-llama-cpp carries no information.
    if (theirs[id] === -Infinity) continue;
    difference = Math.max(difference, Math.abs(mine[id] - theirs[id]));
  }
  return { difference, maxLogit };
}

/**
 * Runs our engine greedily for 32 steps (argmax of the logits, stop tokens included) and llama.cpp
 * greedily on the same prompt, and compares the next-token logits after the prompt and after the
 * prompt plus all 32 tokens.
 */
async function compareWithLlamaCpp(modelDir: string, ggufTensorType: "source" | "F32"): Promise<Comparison> {
  const ggufPath = await writeGguf(modelDir, join(temp.dir, `${modelDir.split("/").pop()}-${ggufTensorType}.gguf`), { tensorType: ggufTensorType, contextLength: 256 });
  const model = await Model.load(modelDir);
  const session = model.createSession({ contextSize: 256 });
  const prompt = model.encode(
    model.applyChatTemplate([
      { role: "system", content: "Sei un assistente che risponde in italiano." },
      { role: "user", content: "Qual è la capitale d'Italia? Rispondi con una parola 🙂" },
    ]),
  );

  // Each step re-submits prompt + tokens so far; prefix reuse evaluates only the new token.
  const ourLogits: Float32Array[] = [];
  const ourTokens: number[] = [];
  for (let step = 0; step <= greedySteps; step++) {
    const finish = (await collect(session.generate([...prompt, ...ourTokens], { maxTokens: 0 }))).at(-1)!;
    if (finish.kind === "finish" && step > 0) expect(finish.reusedTokens).toBe(prompt.length + ourTokens.length - 1);
    const logits = session.getLogits();
    if (step === 0 || step === greedySteps) ourLogits.push(logits);
    if (step < greedySteps) ourTokens.push(argmax(logits));
  }
  model.dispose();

  const llama = await LlamaCpp.open(ggufPath, { contextSize: 256, threads: 1 });
  try {
    const afterPrompt = compareRows(ourLogits[0], await llama.logProbsAfter(prompt));
    const afterTokens = compareRows(ourLogits[1], await llama.logProbsAfter([...prompt, ...ourTokens]));
    const llamaTokens = await llama.greedy(prompt, greedySteps);
    return {
      maxDifference: Math.max(afterPrompt.difference, afterTokens.difference),
      maxLogit: Math.max(afterPrompt.maxLogit, afterTokens.maxLogit),
      ourTokens,
      llamaTokens,
      promptLength: prompt.length,
    };
  } finally {
    await llama.dispose();
  }
}

describe("llama.cpp oracle", () => {
  beforeAll(() => {
    tinyCheckpoint("F32");
  });

  it("matches llama.cpp on F32 weights", { timeout: 120_000 }, async () => {
    const result = await compareWithLlamaCpp(tinyCheckpoint("F32"), "source");
    console.info(`F32: max |Δlogit| ${result.maxDifference.toExponential(3)}, max |logit| ${result.maxLogit.toFixed(3)}, ratio ${(result.maxDifference / result.maxLogit).toExponential(3)}`);
    expect(result.promptLength).toBeGreaterThanOrEqual(16);
    expect(result.maxDifference).toBeLessThanOrEqual(1e-3 * result.maxLogit);
    expect(result.ourTokens).toEqual(result.llamaTokens);
  });

  it("matches llama.cpp on BF16 weights", { timeout: 120_000 }, async () => {
    const dir = cachedCheckpoint({ name: "tiny-bf16-s1", shape: tinyShape, dtype: "BF16", seed: 1 });
    // The GGUF contains the same BF16 values widened to F32, so llama.cpp computes them exactly.
    const result = await compareWithLlamaCpp(dir, "F32");
    console.info(`BF16: max |Δlogit| ${result.maxDifference.toExponential(3)}, max |logit| ${result.maxLogit.toFixed(3)}, ratio ${(result.maxDifference / result.maxLogit).toExponential(3)}`);
    expect(result.maxDifference).toBeLessThanOrEqual(1e-3 * result.maxLogit);
    expect(result.ourTokens).toEqual(result.llamaTokens);
  });

  it("matches llama.cpp on F16 weights", { timeout: 120_000 }, async () => {
    const dir = cachedCheckpoint({ name: "tiny-f16-s1", shape: tinyShape, dtype: "F16", seed: 1 });
    const result = await compareWithLlamaCpp(dir, "F32");
    console.info(`F16: max |Δlogit| ${result.maxDifference.toExponential(3)}, max |logit| ${result.maxLogit.toFixed(3)}, ratio ${(result.maxDifference / result.maxLogit).toExponential(3)}`);
    expect(result.maxDifference).toBeLessThanOrEqual(1e-3 * result.maxLogit);
    expect(result.ourTokens).toEqual(result.llamaTokens);
  });

  it("matches llama.cpp with llama3 RoPE and an untied head", { timeout: 120_000 }, async () => {
    const dir = cachedCheckpoint({
      name: "tiny-f32-llama3-untied-s2",
      shape: tinyShape,
      dtype: "F32",
      seed: 2,
      untied: true,
      config: { rope_theta: 500000, rope_scaling: { rope_type: "llama3", factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } },
    });
    const result = await compareWithLlamaCpp(dir, "source");
    console.info(`llama3 RoPE, untied: max |Δlogit| ${result.maxDifference.toExponential(3)}, max |logit| ${result.maxLogit.toFixed(3)}, ratio ${(result.maxDifference / result.maxLogit).toExponential(3)}`);
    expect(result.maxDifference).toBeLessThanOrEqual(1e-3 * result.maxLogit);
    expect(result.ourTokens).toEqual(result.llamaTokens);
  });

  it("matches llama.cpp with traditional RoPE and biases", { timeout: 120_000 }, async () => {
    const dir = cachedCheckpoint({ name: "tiny-f32-traditional-biases-s3", shape: tinyShape, dtype: "F32", seed: 3, biases: true, config: { rope_traditional: true } });
    const result = await compareWithLlamaCpp(dir, "source");
    console.info(`traditional RoPE, biases: max |Δlogit| ${result.maxDifference.toExponential(3)}, max |logit| ${result.maxLogit.toFixed(3)}, ratio ${(result.maxDifference / result.maxLogit).toExponential(3)}`);
    expect(result.maxDifference).toBeLessThanOrEqual(1e-3 * result.maxLogit);
    expect(result.ourTokens).toEqual(result.llamaTokens);
  });
});
