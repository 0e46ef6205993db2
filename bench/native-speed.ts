// Speed of the native engine alone (no tokenizer, no session): decode and prefill tokens per
// second and peak RSS on a random BF16 checkpoint with Nesso-0.4B's exact shapes.
//
//   node --import tsx bench/native-speed.ts [--threads 2] [--runs 5] [--decode 128] [--prefill 512]
//                                           [--cached 16] [--chunk 64] [--dtype BF16|F16|F32]
//                                           [--model DIR]
//
// --model measures an existing checkpoint directory (for example a quantized one that
// `npm run bench -- --preset nesso-q8` generated) instead of the generated one.
//
// Decode is timed with --cached tokens already in the KV cache (a long prompt makes attention
// read more of the cache per step).
//
// NESSO_MCP_SIMD=portable|avx2|avx512 forces a kernel path. The checkpoint is generated once into
// .fixtures/ (about 875 MB for BF16).

import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { buildModelSpec, readCheckpointTensors } from "../src/engine/checkpoint.js";
import { resolveModelConfig } from "../src/engine/config.js";
import { loadNativeAddon } from "../src/engine/native.js";
import { readModelJson } from "../src/engine/tokenizer.js";
import { cachedCheckpoint, nessoShape } from "../test/fixtures/checkpoint.js";
import type { FixtureDtype } from "../test/fixtures/dtype.js";
import { specFromDirectory } from "../test/engine/native-helpers.js";
import { benchmarkPrompt, median } from "./measure.js";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    runs: { type: "string", default: "5" },
    decode: { type: "string", default: "128" },
    prefill: { type: "string", default: "512" },
    chunk: { type: "string", default: "64" },
    cached: { type: "string", default: "16" },
    dtype: { type: "string", default: "BF16" },
    model: { type: "string" },
  },
});
const threads = Number(values.threads);
const runs = Number(values.runs);
const decodeTokens = Number(values.decode);
const prefillTokens = Number(values.prefill);
const chunkSize = Number(values.chunk);
const cachedTokens = Number(values.cached);
const dtype = (values.dtype ?? "BF16").toUpperCase() as FixtureDtype;

const log = (line: string) => process.stderr.write(`${line}\n`);

async function specFromModelDirectory(modelDir: string) {
  const config = resolveModelConfig(await readModelJson(modelDir, "config.json"));
  const checkpoint = await readCheckpointTensors(modelDir);
  const vocabRows = checkpoint.tensors.get("model.embed_tokens.weight")?.shape[0] ?? config.vocabSize;
  return { ...buildModelSpec(config, checkpoint, { tokenizerVocabSize: vocabRows }), threads };
}

const generateStart = performance.now();
const dir = values.model ?? cachedCheckpoint({ name: `nesso-${dtype.toLowerCase()}-s1`, shape: nessoShape, dtype, seed: 1 });
log(`checkpoint ${dir} ready in ${((performance.now() - generateStart) / 1000).toFixed(1)} s`);

const addon = loadNativeAddon();
const loadStart = performance.now();
// A given directory goes through the engine's own checks (quantized layouts included); the
// generated one through the test helper, which skips reading the tokenizer.
const spec = values.model === undefined ? specFromDirectory(dir, { threads }) : await specFromModelDirectory(dir);
const model = await addon.loadModel(spec);
log(`loaded in ${(performance.now() - loadStart).toFixed(0)} ms: ${model.threads} threads, ${addon.simdPath()} kernels`);

const prompt = Int32Array.from(benchmarkPrompt(Math.max(prefillTokens, cachedTokens)));
const context = model.createContext({ contextSize: Math.max(prefillTokens, cachedTokens) + decodeTokens + 8 });
const greedy = { temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, penaltyTokens: null, seed: 0 };

// Warm-up: pages the weights in and sizes the buffers.
await context.eval(prompt.subarray(0, 16));
for (let i = 0; i < 4; i++) await context.eval(Int32Array.of(context.sample(greedy)));

const loadBefore = loadavg()[0];
const decodeRates: number[] = [];
const prefillRates: number[] = [];
for (let run = 0; run < runs; run++) {
  // Decode: one token per eval after the cached prompt, sampling included.
  context.rewind(0);
  await context.eval(prompt.subarray(0, cachedTokens));
  const decodeStart = performance.now();
  for (let i = 0; i < decodeTokens; i++) await context.eval(Int32Array.of(context.sample(greedy)));
  decodeRates.push(decodeTokens / ((performance.now() - decodeStart) / 1000));

  // Prefill: the whole prompt from an empty cache.
  context.rewind(0);
  const prefillStart = performance.now();
  await context.eval(prompt.subarray(0, prefillTokens), { chunkSize });
  prefillRates.push(prefillTokens / ((performance.now() - prefillStart) / 1000));
  log(`run ${run + 1}: decode ${decodeRates[run].toFixed(2)} tok/s, prefill ${prefillRates[run].toFixed(1)} tok/s`);
}

const peakRssMiB = process.resourceUsage().maxRSS / 1024;
context.dispose();
model.dispose();

const report = {
  dtype,
  threads,
  simd: addon.simdPath(),
  decodeTokens,
  cachedTokens,
  prefillTokens,
  chunkSize,
  decodeTokensPerSecond: Number(median(decodeRates).toFixed(2)),
  prefillTokensPerSecond: Number(median(prefillRates).toFixed(1)),
  peakRssMiB: Math.round(peakRssMiB),
  // Other processes share the cores; a load above the core count means the figures are low.
  loadAverage: [Number(loadBefore.toFixed(2)), Number(loadavg()[0].toFixed(2))],
  runs: decodeRates.map((decode, i) => ({ decode: Number(decode.toFixed(2)), prefill: Number(prefillRates[i].toFixed(1)) })),
};
process.stdout.write(`${JSON.stringify(report)}\n`);
