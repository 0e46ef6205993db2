// `npm run bench`: prefill and decode speed and peak memory of the engine on a random-weight
// checkpoint with Nesso-0.4B's exact shapes, with llama.cpp measured in the same run on a GGUF
// written from the same checkpoint. Results go to stdout (and to --json FILE); record them in
// docs/benchmarks.md.
//
// The engines take turns: each timed run is a fresh child process of one engine (load, short
// warm-up, one run), nesso-mcp then llama.cpp, so a change in the machine's load during the
// benchmark reaches both alike. Peak RSS is the highest of an engine's processes.
//
// Options:
//   --preset NAME     checkpoint preset (default nesso-bf16; see presets below)
//   --runs N          timed runs per engine (default 3); medians are reported
//   --prefill LIST    prompt lengths evaluated from an empty cache (default 512,2048)
//   --decode N        tokens generated with the first prompt cached (default 128)
//   --threads N       compute threads for both engines (default: physical cores)
//   --compare         also measure llama.cpp on the same weights (the default)
//   --no-compare      measure only nesso-mcp
//   --json FILE       also write the reports as JSON

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadNativeAddon } from "../src/engine/native.js";
import { cachedCheckpoint, fixtureCacheDir, nessoShape } from "../test/fixtures/checkpoint.js";
import { cachedConversion } from "../test/engine/quant-fixtures.js";
import type { FixtureDtype } from "../test/fixtures/dtype.js";
import { writeGguf } from "../test/oracle/gguf.js";
import { median, parseBenchArgs, parseLengths, type EngineReport } from "./measure.js";

const benchDir = dirname(fileURLToPath(import.meta.url));

/** A checkpoint to measure. */
interface Preset {
  /** Name of the cached fixture under .fixtures/. */
  fixture: string;
  dtype: FixtureDtype;
  seed: number;
  /**
   * Tensor type of the GGUF given to llama.cpp ("source" keeps the checkpoint's dtype). The GGUF
   * is always written from the float fixture; Q8_0 and Q4_0 are llama.cpp's nearest block types
   * to MLX 8-bit and 4-bit.
   */
  ggufTensorType: "source" | "F32" | "Q8_0" | "Q4_0";
  /** MLX affine quantization nesso-mcp runs, converted from the float fixture. */
  quantize?: { bits: number; groupSize: number };
}

const presets: Record<string, Preset> = {
  "nesso-bf16": { fixture: "nesso-bf16-s1", dtype: "BF16", seed: 1, ggufTensorType: "source" },
  "nesso-f32": { fixture: "nesso-f32-s1", dtype: "F32", seed: 1, ggufTensorType: "source" },
  "nesso-q8": { fixture: "nesso-bf16-s1", dtype: "BF16", seed: 1, ggufTensorType: "Q8_0", quantize: { bits: 8, groupSize: 64 } },
  "nesso-q4": { fixture: "nesso-bf16-s1", dtype: "BF16", seed: 1, ggufTensorType: "Q4_0", quantize: { bits: 4, groupSize: 64 } },
};

const usage = `Usage: npm run bench -- [options]

  --preset NAME     ${Object.keys(presets).join(", ")} (default nesso-bf16)
  --runs N          timed runs per engine (default 3); medians are reported
  --prefill LIST    prompt lengths evaluated from an empty cache (default 512,2048)
  --decode N        tokens generated with the first prompt cached (default 128)
  --threads N       compute threads for both engines (default: physical cores)
  --no-compare      measure only nesso-mcp (default: also llama.cpp)
  --json FILE       also write the reports as JSON`;

const { values } = parseBenchArgs(
  {
    preset: { type: "string", default: "nesso-bf16" },
    runs: { type: "string", default: "3" },
    prefill: { type: "string", default: "512,2048" },
    decode: { type: "string", default: "128" },
    threads: { type: "string" },
    compare: { type: "boolean", default: true },
    "no-compare": { type: "boolean", default: false },
    json: { type: "string" },
  },
  usage,
);

function positiveInteger(name: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) {
    process.stderr.write(`bench: --${name} must be an integer >= 1, got "${text}"\n`);
    process.exit(2);
  }
  return value;
}

const preset = presets[values.preset!];
if (!preset) {
  process.stderr.write(`bench: unknown --preset "${values.preset}"; choose one of ${Object.keys(presets).join(", ")}\n`);
  process.exit(2);
}
const runs = positiveInteger("runs", values.runs);
const prefill = parseLengths(values.prefill ?? "");
if (prefill === null) {
  process.stderr.write(`bench: --prefill must be a comma-separated list of integers >= 1, got "${values.prefill}"\n`);
  process.exit(2);
}
const decode = positiveInteger("decode", values.decode);
// The fixtures' config.json sets max_position_embeddings to 4,096, as Nesso's does; the engines
// need room for the prompt, the decoded tokens and 8 spare positions.
const maxPositions = 4096;
if (Math.max(...prefill) + decode + 8 > maxPositions) {
  process.stderr.write(`bench: --prefill ${Math.max(...prefill)} plus --decode ${decode} exceeds the model's ${maxPositions} positions; use shorter prompts or fewer tokens\n`);
  process.exit(2);
}
const threads = values.threads === undefined ? loadNativeAddon().physicalCores() : positiveInteger("threads", values.threads);

/** Runs bench/engine-run.ts for one timed run in a child process and parses its one-line JSON report. */
function runEngine(engine: "nesso" | "llama.cpp", model: string): Promise<EngineReport> {
  const args = ["--import", "tsx", join(benchDir, "engine-run.ts"), "--engine", engine, "--model", model, "--threads", String(threads), "--prefill", prefill!.join(","), "--decode", String(decode), "--runs", "1"];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => (output += chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      const line = output.trim().split("\n").pop() ?? "";
      if (code !== 0 || !line.startsWith("{")) {
        reject(new Error(`bench: the ${engine} run exited with code ${code}; its output was: ${output.slice(-500)}`));
        return;
      }
      resolve(JSON.parse(line) as EngineReport);
    });
  });
}

/** Joins the one-run reports of one engine: all runs, the highest peak RSS, the median load time. */
function mergeReports(parts: EngineReport[]): EngineReport {
  return {
    ...parts[0],
    runs: parts.flatMap((part) => part.runs),
    peakRssMiB: Math.max(...parts.map((part) => part.peakRssMiB)),
    loadMs: median(parts.map((part) => part.loadMs)),
  };
}

interface Statistic {
  median: number;
  min: number;
  max: number;
}

function statistic(values: number[]): Statistic {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

function summarize(report: EngineReport) {
  return {
    prefill: report.prefillTokens.map((_, i) => statistic(report.runs.map((run) => run.prefillTokensPerSecond[i]))),
    decode: statistic(report.runs.map((run) => run.decodeTokensPerSecond)),
  };
}

const format = (s: Statistic) => `${s.median.toFixed(1)} (${s.min.toFixed(1)}-${s.max.toFixed(1)})`;

const log = (line: string) => process.stdout.write(line + "\n");

const loadBefore = loadavg()[0];
const generateStart = performance.now();
const checkpoint = cachedCheckpoint({ name: preset.fixture, shape: nessoShape, dtype: preset.dtype, seed: preset.seed });
let nessoCheckpoint = checkpoint;
if (preset.quantize) {
  const { bits, groupSize } = preset.quantize;
  nessoCheckpoint = await cachedConversion(`${preset.fixture}-q${bits}-g${groupSize}`, checkpoint, { kind: "quantize", bits, groupSize });
}
log(`checkpoint ${nessoCheckpoint} ready in ${((performance.now() - generateStart) / 1000).toFixed(1)} s`);

const compare = values.compare && !values["no-compare"];
let gguf = "";
if (compare) {
  const ggufDir = join(fixtureCacheDir, "gguf");
  mkdirSync(ggufDir, { recursive: true });
  gguf = join(ggufDir, `${preset.fixture}-${(preset.ggufTensorType === "source" ? preset.dtype : preset.ggufTensorType).toLowerCase()}.gguf`);
  if (!existsSync(gguf)) await writeGguf(checkpoint, gguf, { tensorType: preset.ggufTensorType });
}
const ourRuns: EngineReport[] = [];
const theirRuns: EngineReport[] = [];
for (let run = 0; run < runs; run++) {
  ourRuns.push(await runEngine("nesso", nessoCheckpoint));
  if (compare) theirRuns.push(await runEngine("llama.cpp", gguf));
  const last = [ourRuns.at(-1)!, ...(compare ? [theirRuns.at(-1)!] : [])];
  process.stderr.write(`run ${run + 1}/${runs}: ${last.map((r) => `${r.engine} prefill ${r.runs[0].prefillTokensPerSecond.map((v) => v.toFixed(1)).join("/")} decode ${r.runs[0].decodeTokensPerSecond.toFixed(1)}`).join("; ")}\n`);
}
const reports: EngineReport[] = [mergeReports(ourRuns), ...(compare ? [mergeReports(theirRuns)] : [])];

log("");
log(`machine: ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} logical cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}`);
// Other processes compete for the cores; a 1-minute load average above the core count means the figures are low.
log(`load average (1 min): ${loadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after`);
log(`preset ${values.preset}, ${threads} threads, prefill ${prefill.join(" and ")} tokens, decode ${decode} tokens with ${prefill[0]} cached, median of ${runs} alternating runs`);
log("");
const prefillHeaders = prefill.map((length) => `prefill ${length} tok/s (min-max)`);
log(`| engine | ${prefillHeaders.join(" | ")} | decode tok/s (min-max) | peak RSS MiB | load ms | details |`);
log(`|---|${prefill.map(() => "---|").join("")}---|---|---|---|`);
for (const report of reports) {
  const s = summarize(report);
  const details = Object.entries(report.details).map(([key, value]) => `${key} ${value}`).join(", ");
  log(`| ${report.engine} | ${s.prefill.map(format).join(" | ")} | ${format(s.decode)} | ${report.peakRssMiB.toFixed(0)} | ${report.loadMs.toFixed(0)} | ${details} |`);
}
if (reports.length === 2) {
  const [ours, theirs] = reports.map(summarize);
  const prefillRatios = prefill.map((length, i) => `prefill ${length} ${(ours.prefill[i].median / theirs.prefill[i].median).toFixed(2)}`);
  log("");
  log(`ratio nesso-mcp / llama.cpp: ${prefillRatios.join(", ")}, decode ${(ours.decode.median / theirs.decode.median).toFixed(2)}, peak RSS ${(reports[0].peakRssMiB / reports[1].peakRssMiB).toFixed(2)}`);
}
if (values.json) writeFileSync(values.json, JSON.stringify({ preset: values.preset, threads, prefill, decode, runs, reports }, null, 2));
