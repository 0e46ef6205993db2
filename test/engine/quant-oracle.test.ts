// Quantized checkpoints against llama.cpp: our engine on the MLX-quantized fixture and llama.cpp
// on an F32 GGUF of the same weights dequantized (llama.cpp cannot read MLX packing, and no ggml
// type stores MLX 8-bit or 2/3/6-bit groups exactly). 8-bit runs with every group size, the other
// widths with one group size each; quant-model.test.ts compares all 18 pairs with their F32
// dequantization in our own engine.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildModelSpec, readCheckpointTensors } from "../../src/engine/checkpoint.js";
import { parseConfigText } from "../../src/engine/config.js";
import { loadNativeAddon } from "../../src/engine/native.js";
import { TextTokenizer } from "../../src/engine/tokenizer.js";
import { nessoVocabSize } from "../fixtures/checkpoint.js";
import { writeGguf } from "../oracle/gguf.js";
import { disposeCpuLlama, LlamaCpp } from "../oracle/llama-cpp.js";
import { makeTempDir } from "./helpers.js";
import { argmax } from "./native-helpers.js";
import { quantizedPair } from "./quant-fixtures.js";

// These tests check the float-activation kernels at float32 rounding bounds; the default int8
// activations of 4- and 8-bit weights are tested in quant-int8.test.ts.
process.env.NESSO_MCP_QUANT_ACTIVATIONS = "float";

const greedySteps = 16;
/**
 * Bound on max |Δ log-softmax| / max |logit|. llama.cpp multiplies the dequantized F32 weights
 * in its own order, so only float32 rounding differs: measured ratios are 4e-7 to 5.4e-6.
 */
const relativeTolerance = 1e-4;

/** (bits, group size) pairs compared with llama.cpp. */
const cases: [number, number][] = [
  [2, 32],
  [3, 64],
  [4, 128],
  [4, 64],
  [5, 32],
  [6, 64],
  [8, 32],
  [8, 64],
  [8, 128],
];

const temp = makeTempDir("nesso-quant-oracle-");
afterAll(async () => {
  await disposeCpuLlama();
  temp.remove();
});

const promptText = "<|im_start|>system\nSei un assistente.<|im_end|>\n<|im_start|>user\nWhat is 2+2? Rispondi in breve 🙂<|im_end|>\n<|im_start|>assistant\n";

function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const value of logits) if (value > max) max = value;
  let sum = 0;
  for (const value of logits) sum += Math.exp(value - max);
  const logSum = max + Math.log(sum);
  return Float64Array.from(logits, (value) => value - logSum);
}

/** Our greedy run on the quantized checkpoint: logits after the prompt, and the tokens. */
async function ourRun(dir: string, prompt: Int32Array): Promise<{ logits: Float32Array; tokens: number[] }> {
  const config = parseConfigText(readFileSync(join(dir, "config.json"), "utf8"));
  const spec = buildModelSpec(config, await readCheckpointTensors(dir), { tokenizerVocabSize: nessoVocabSize });
  const model = await loadNativeAddon().loadModel({ ...spec, threads: 2 });
  try {
    const context = model.createContext({ contextSize: 128, kvCacheType: "f32" });
    await context.eval(prompt);
    const logits = context.getLogits();
    const tokens: number[] = [];
    for (let step = 0; step < greedySteps; step++) {
      tokens.push(argmax(context.getLogits()));
      if (step < greedySteps - 1) await context.eval(Int32Array.of(tokens[step]));
    }
    return { logits, tokens };
  } finally {
    model.dispose();
  }
}

let prompt: Int32Array | null = null;

describe("quantized checkpoints against llama.cpp", () => {
  for (const [bits, groupSize] of cases) {
    it(`matches llama.cpp at ${bits} bits, group size ${groupSize}`, { timeout: 120_000 }, async () => {
      const { quantized, dequantized } = await quantizedPair(bits, groupSize);
      prompt ??= Int32Array.from((await TextTokenizer.load(quantized)).encode(promptText));
      const ours = await ourRun(quantized, prompt);

      const gguf = await writeGguf(dequantized, join(temp.dir, `q${bits}-g${groupSize}.gguf`), { tensorType: "F32", contextLength: 128 });
      const llama = await LlamaCpp.open(gguf, { contextSize: 128, threads: 1 });
      let theirs: Float64Array;
      let llamaTokens: number[];
      try {
        theirs = await llama.logProbsAfter([...prompt]);
        llamaTokens = await llama.greedy([...prompt], greedySteps);
      } finally {
        await llama.dispose();
      }

      const mine = logSoftmax(ours.logits);
      let difference = 0;
      let maxLogit = 0;
      for (let id = 0; id < mine.length; id++) {
        if (Number.isFinite(ours.logits[id])) maxLogit = Math.max(maxLogit, Math.abs(ours.logits[id]));
        // A probability that underflows in node-llama-cpp carries no information.
        if (theirs[id] === -Infinity) continue;
        difference = Math.max(difference, Math.abs(mine[id] - theirs[id]));
      }
      console.info(`${bits}-bit g${groupSize} vs llama.cpp F32: max |Δ log-softmax| ${difference.toExponential(2)}, max |logit| ${maxLogit.toFixed(2)}, ratio ${(difference / maxLogit).toExponential(2)}`);
      expect(difference).toBeLessThanOrEqual(relativeTolerance * maxLogit);
      expect(ours.tokens).toEqual(llamaTokens);
    });
  }
});
