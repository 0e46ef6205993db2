// `npm run bench`: prefill and decode speed and peak memory of the engine on a random-weight
// checkpoint with Nesso-0.4B's exact shapes, with llama.cpp measured in the same run on a GGUF
// written from the same checkpoint. Results go to stdout (and to --json FILE); record them in
// docs/benchmarks.md.
//
// Options:
//   --preset NAME     checkpoint preset (default nesso-bf16; see presets below)
//   --runs N          timed runs per engine after one warm-up run (default 3); medians are reported
//   --prefill N       prompt tokens evaluated from an empty cache (default 512)
//   --decode N        tokens generated with the prompt cached (default 128)
//   --threads N       compute threads for both engines (default: physical cores)
//   --compare         also measure llama.cpp on the same weights (the default)
//   --no-compare      measure only nesso-mcp
//   --json FILE       also write the reports as JSON

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadNativeAddon } from "../src/engine/native.js";
import { cachedCheckpoint, fixtureCacheDir, nessoShape } from "../test/fixtures/checkpoint.js";
import { cachedConversion } from "../test/engine/quant-fixtures.js";
import type { FixtureDtype } from "../test/fixtures/dtype.js";
import { writeGguf } from "../test/oracle/gguf.js";
import { median, type EngineReport } from "./measure.js";

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

const { values } = parseArgs({
  options: {
    preset: { type: "string", default: "nesso-bf16" },
    runs: { type: "string", default: "3" },
    prefill: { type: "string", default: "512" },
    decode: { type: "string", default: "128" },
    threads: { type: "string" },
    compare: { type: "boolean", default: true },
    "no-compare": { type: "boolean", default: false },
    json: { type: "string" },
  },
});

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
const prefill = positiveInteger("prefill", values.prefill);
const decode = positiveInteger("decode", values.decode);
const threads = values.threads === undefined ? loadNativeAddon().physicalCores() : positiveInteger("threads", values.threads);

/** Runs bench/engine-run.ts in a child process and parses its one-line JSON report. */
function runEngine(engine: "nesso" | "llama.cpp", model: string): Promise<EngineReport> {
  const args = ["--import", "tsx", join(benchDir, "engine-run.ts"), "--engine", engine, "--model", model, "--threads", String(threads), "--prefill", String(prefill), "--decode", String(decode), "--runs", String(runs)];
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

function summarize(report: EngineReport) {
  return {
    prefill: median(report.runs.map((run) => run.prefillTokensPerSecond)),
    decode: median(report.runs.map((run) => run.decodeTokensPerSecond)),
    prefillRange: [Math.min(...report.runs.map((run) => run.prefillTokensPerSecond)), Math.max(...report.runs.map((run) => run.prefillTokensPerSecond))],
    decodeRange: [Math.min(...report.runs.map((run) => run.decodeTokensPerSecond)), Math.max(...report.runs.map((run) => run.decodeTokensPerSecond))],
  };
}

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

const reports: EngineReport[] = [await runEngine("nesso", nessoCheckpoint)];
if (values.compare && !values["no-compare"]) {
  const ggufDir = join(fixtureCacheDir, "gguf");
  mkdirSync(ggufDir, { recursive: true });
  const gguf = join(ggufDir, `${preset.fixture}-${(preset.ggufTensorType === "source" ? preset.dtype : preset.ggufTensorType).toLowerCase()}.gguf`);
  if (!existsSync(gguf)) await writeGguf(checkpoint, gguf, { tensorType: preset.ggufTensorType });
  reports.push(await runEngine("llama.cpp", gguf));
}

log("");
log(`machine: ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} logical cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}`);
// Other processes compete for the cores; a 1-minute load average above the core count means the figures are low.
log(`load average (1 min): ${loadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after`);
log(`preset ${values.preset}, ${threads} threads, prefill ${prefill} tokens, decode ${decode} tokens, median of ${runs} runs after one warm-up`);
log("");
log("| engine | prefill tok/s (min-max) | decode tok/s (min-max) | peak RSS MiB | load ms | details |");
log("|---|---|---|---|---|---|");
for (const report of reports) {
  const s = summarize(report);
  const details = Object.entries(report.details).map(([key, value]) => `${key} ${value}`).join(", ");
  log(`| ${report.engine} | ${s.prefill.toFixed(1)} (${s.prefillRange[0].toFixed(1)}-${s.prefillRange[1].toFixed(1)}) | ${s.decode.toFixed(1)} (${s.decodeRange[0].toFixed(1)}-${s.decodeRange[1].toFixed(1)}) | ${report.peakRssMiB.toFixed(0)} | ${report.loadMs.toFixed(0)} | ${details} |`);
}
if (reports.length === 2) {
  const [ours, theirs] = reports.map(summarize);
  log("");
  log(`ratio nesso-mcp / llama.cpp: prefill ${(ours.prefill / theirs.prefill).toFixed(2)}, decode ${(ours.decode / theirs.decode).toFixed(2)}, peak RSS ${(reports[0].peakRssMiB / reports[1].peakRssMiB).toFixed(2)}`);
}
if (values.json) writeFileSync(values.json, JSON.stringify({ preset: values.preset, threads, prefill, decode, runs, reports }, null, 2));
