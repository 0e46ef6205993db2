// Child process of `npm run bench`: measures one engine on one model and prints an EngineReport as
// one JSON line on stdout. Each engine runs in its own process so peak RSS belongs to it alone.
//
//   node --import tsx bench/engine-run.ts --engine nesso|llama.cpp --model PATH
//        --threads N --prefill 512 --decode 128 --runs 3

import { parseArgs } from "node:util";
import { Model } from "../src/engine/model.js";
import { loadNativeAddon } from "../src/engine/native.js";
import type { TokenConstraint } from "../src/engine/types.js";
import { asTokens, disposeCpuLlama, LlamaCpp } from "../test/oracle/llama-cpp.js";
import { benchmarkPrompt, peakRssMiB, type EngineReport, type RunTiming } from "./measure.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string" },
    model: { type: "string" },
    threads: { type: "string" },
    prefill: { type: "string", default: "512" },
    decode: { type: "string", default: "128" },
    runs: { type: "string", default: "3" },
  },
});

const prefillTokens = Number(values.prefill);
const decodeTokens = Number(values.decode);
const runs = Number(values.runs);
const threads = Number(values.threads);
const modelPath = values.model ?? "";
const contextSize = prefillTokens + decodeTokens + 8;
const prompt = benchmarkPrompt(prefillTokens);

/** Measures nesso-mcp's engine: a warm-up run, then `runs` timed runs. */
async function measureNesso(): Promise<EngineReport> {
  const loadStart = performance.now();
  const model = await Model.load(modelPath, { threads });
  const loadMs = performance.now() - loadStart;
  const session = model.createSession({ contextSize });

  // Decode must produce exactly decodeTokens tokens, so stop tokens are masked out.
  const mask = new Uint8Array(model.config.vocabSize).fill(1);
  for (const id of model.stopTokens) mask[id] = 0;
  const noStop: TokenConstraint = { mask: () => mask, accept: () => {}, isComplete: () => false };

  const timings: RunTiming[] = [];
  for (let run = 0; run <= runs; run++) {
    session.reset();
    let prefillMs = 0;
    for await (const record of session.generate(prompt, { maxTokens: 0 })) {
      if (record.kind === "finish") prefillMs = record.prefillMs;
    }

    // The prompt is cached except its last token, which the first decode step evaluates.
    const decodeStart = performance.now();
    let generated = 0;
    for await (const record of session.generate(prompt, { maxTokens: decodeTokens, constraint: noStop })) {
      if (record.kind === "finish") generated = record.generatedTokens;
    }
    const decodeMs = performance.now() - decodeStart;
    if (generated !== decodeTokens) throw new Error(`decode produced ${generated} tokens instead of ${decodeTokens}`);
    if (run > 0) timings.push({ prefillTokensPerSecond: (prefillTokens * 1000) / prefillMs, decodeTokensPerSecond: (decodeTokens * 1000) / decodeMs });
  }
  const details = { simd: loadNativeAddon().simdPath() };
  model.dispose();
  return { engine: "nesso-mcp", model: modelPath, threads: model.threads, prefillTokens, decodeTokens, loadMs, runs: timings, peakRssMiB: peakRssMiB(), details };
}

/** Measures llama.cpp through node-llama-cpp the same way. */
async function measureLlamaCpp(): Promise<EngineReport> {
  const loadStart = performance.now();
  const llama = await LlamaCpp.open(modelPath, { contextSize, threads, batchSize: prefillTokens, exact: false });
  const loadMs = performance.now() - loadStart;
  const timings: RunTiming[] = [];
  for (let run = 0; run <= runs; run++) {
    await llama.sequence.clearHistory();
    const prefillStart = performance.now();
    await llama.sequence.evaluateWithoutGeneratingNewTokens(asTokens(prompt.slice(0, -1)));
    const prefillMs = performance.now() - prefillStart;

    const decodeStart = performance.now();
    let generated = 0;
    for await (const _token of llama.sequence.evaluate(asTokens(prompt.slice(-1)), { temperature: 0 })) {
      generated++;
      if (generated === decodeTokens) break;
    }
    const decodeMs = performance.now() - decodeStart;
    // The prefill above evaluated prefillTokens - 1 tokens; the last one is the first decode step.
    if (run > 0) timings.push({ prefillTokensPerSecond: ((prefillTokens - 1) * 1000) / prefillMs, decodeTokensPerSecond: (decodeTokens * 1000) / decodeMs });
  }
  const details = { kvCache: "F16 (llama.cpp default)", flashAttention: "auto", batchSize: prefillTokens };
  await llama.dispose();
  await disposeCpuLlama();
  return { engine: "llama.cpp", model: modelPath, threads, prefillTokens, decodeTokens, loadMs, runs: timings, peakRssMiB: peakRssMiB(), details };
}

const report = values.engine === "llama.cpp" ? await measureLlamaCpp() : await measureNesso();
process.stdout.write(JSON.stringify(report) + "\n");
