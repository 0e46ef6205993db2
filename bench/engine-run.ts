// Child process of `npm run bench`: measures one engine on one model and prints an EngineReport as
// one JSON line on stdout. Each engine runs in its own process so peak RSS belongs to it alone.
//
//   node --import tsx bench/engine-run.ts --engine nesso|llama.cpp --model PATH
//        --threads N --prefill 512,2048 --decode 128 --runs 1
//
// A short warm-up (a 32-token prompt and 4 decode steps) pages the weights in before the timed
// runs. Each run prefills every prompt length from an empty cache, then decodes with the first
// prompt cached.

import { parseArgs } from "node:util";
import { Model } from "../src/engine/model.js";
import { loadNativeAddon } from "../src/engine/native.js";
import type { TokenConstraint } from "../src/engine/types.js";
import { asTokens, disposeCpuLlama, LlamaCpp } from "../test/oracle/llama-cpp.js";
import { benchmarkPrompt, parseLengths, peakRssMiB, type EngineReport, type RunTiming } from "./measure.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string" },
    model: { type: "string" },
    threads: { type: "string" },
    prefill: { type: "string", default: "512" },
    decode: { type: "string", default: "128" },
    runs: { type: "string", default: "1" },
  },
});

const prefillLengths = parseLengths(values.prefill ?? "");
if (prefillLengths === null) throw new Error(`engine-run: --prefill must list positive integers, got "${values.prefill}"`);
const decodeTokens = Number(values.decode);
const runs = Number(values.runs);
const threads = Number(values.threads);
const modelPath = values.model ?? "";
const warmUpTokens = 32;
const contextSize = Math.max(...prefillLengths, warmUpTokens) + decodeTokens + 8;
const prompts = prefillLengths.map((length) => benchmarkPrompt(length));
const decodePrompt = prompts[0];

/**
 * Runs the warm-up, then `runs` timed runs of one engine's prefill and decode functions (both
 * return milliseconds). `unevaluated` is how many prompt tokens the prefill leaves to decode.
 */
async function timeRuns(
  prefill: (prompt: number[]) => Promise<number>,
  decode: (prompt: number[], count: number) => Promise<number>,
  unevaluated: number,
): Promise<RunTiming[]> {
  const warmUp = benchmarkPrompt(warmUpTokens);
  await prefill(warmUp);
  await decode(warmUp, 4);

  const timings: RunTiming[] = [];
  for (let run = 0; run < runs; run++) {
    const prefillRates: number[] = [];
    for (const prompt of prompts) prefillRates.push(((prompt.length - unevaluated) * 1000) / (await prefill(prompt)));
    await prefill(decodePrompt);
    const decodeMs = await decode(decodePrompt, decodeTokens);
    timings.push({ prefillTokensPerSecond: prefillRates, decodeTokensPerSecond: (decodeTokens * 1000) / decodeMs });
  }
  return timings;
}

/** Measures nesso-mcp's engine: a warm-up, then `runs` timed runs. */
async function measureNesso(): Promise<EngineReport> {
  const loadStart = performance.now();
  // The prompt cache stays off: every prefill must evaluate its whole prompt.
  const model = await Model.load(modelPath, { threads, promptCache: false });
  const loadMs = performance.now() - loadStart;
  const session = model.createSession({ contextSize });
  // Decode must produce exactly decodeTokens tokens, so stop tokens are masked out.
  const mask = new Uint8Array(model.config.vocabSize).fill(1);
  for (const id of model.stopTokens) mask[id] = 0;
  const noStop: TokenConstraint = { mask: () => mask, accept: () => {}, isComplete: () => false };

  async function prefill(prompt: number[]): Promise<number> {
    session.reset();
    for await (const record of session.generate(prompt, { maxTokens: 0 })) {
      if (record.kind === "finish") return record.prefillMs;
    }
    throw new Error("prefill: the generation ended without a finish record");
  }

  /** Decodes `count` tokens after `prompt`, which is cached except its last token. */
  async function decode(prompt: number[], count: number): Promise<number> {
    const start = performance.now();
    let generated = 0;
    for await (const record of session.generate(prompt, { maxTokens: count, constraint: noStop })) {
      if (record.kind === "finish") generated = record.generatedTokens;
    }
    if (generated !== count) throw new Error(`decode produced ${generated} tokens instead of ${count}`);
    return performance.now() - start;
  }

  // nesso-mcp evaluates the whole prompt in the prefill.
  const timings = await timeRuns(prefill, decode, 0);
  const details = { simd: loadNativeAddon().simdPath(), kvCache: "F16" };
  model.dispose();
  return { engine: "nesso-mcp", model: modelPath, threads: model.threads, prefillTokens: prefillLengths!, decodeTokens, loadMs, runs: timings, peakRssMiB: peakRssMiB(), details };
}

/** Measures llama.cpp through node-llama-cpp the same way. */
async function measureLlamaCpp(): Promise<EngineReport> {
  const loadStart = performance.now();
  const llama = await LlamaCpp.open(modelPath, { contextSize, threads, batchSize: Math.max(...prefillLengths!), exact: false });
  const loadMs = performance.now() - loadStart;

  /** Evaluates all but the last token of `prompt` from an empty cache; returns milliseconds. */
  async function prefill(prompt: number[]): Promise<number> {
    await llama.sequence.clearHistory();
    const start = performance.now();
    await llama.sequence.evaluateWithoutGeneratingNewTokens(asTokens(prompt.slice(0, -1)));
    return performance.now() - start;
  }

  /** Generates `count` tokens starting with the last prompt token; returns milliseconds. */
  async function decode(prompt: number[], count: number): Promise<number> {
    const start = performance.now();
    let generated = 0;
    for await (const _token of llama.sequence.evaluate(asTokens(prompt.slice(-1)), { temperature: 0 })) {
      generated++;
      if (generated === count) break;
    }
    return performance.now() - start;
  }

  // The prefill evaluates length - 1 tokens; the last one is the first decode step.
  const timings = await timeRuns(prefill, decode, 1);
  const details = { kvCache: "F16 (llama.cpp default)", flashAttention: "auto", batchSize: Math.max(...prefillLengths!) };
  await llama.dispose();
  await disposeCpuLlama();
  return { engine: "llama.cpp", model: modelPath, threads, prefillTokens: prefillLengths!, decodeTokens, loadMs, runs: timings, peakRssMiB: peakRssMiB(), details };
}

const report = values.engine === "llama.cpp" ? await measureLlamaCpp() : await measureNesso();
process.stdout.write(JSON.stringify(report) + "\n");
