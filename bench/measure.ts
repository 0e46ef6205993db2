// Shared shapes of benchmark measurements, the statistics over repeated runs and the command-line
// parsing of the benchmark scripts.

import { parseArgs, type ParseArgsConfig } from "node:util";

/** One timed run of one engine. */
export interface RunTiming {
  /**
   * Prefill of a prompt from an empty cache, in tokens per second: one entry per length of
   * EngineReport.prefillTokens, in that order.
   */
  prefillTokensPerSecond: number[];
  /** Decode with the first prompt length cached: generated tokens per second, sampling included. */
  decodeTokensPerSecond: number;
}

/** Report of one engine process, printed as one JSON line on stdout. */
export interface EngineReport {
  engine: string;
  /** Model file or directory that was measured. */
  model: string;
  threads: number;
  /** Prompt lengths whose prefill was timed. */
  prefillTokens: number[];
  decodeTokens: number;
  loadMs: number;
  runs: RunTiming[];
  /** Peak resident set size of the engine process, in MiB. */
  peakRssMiB: number;
  /** Extra facts (SIMD path, llama.cpp backend, ...). */
  details: Record<string, string | number>;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Parses a comma-separated list of prompt lengths such as "512,2048". */
export function parseLengths(text: string): number[] | null {
  const lengths = text.split(",").map((part) => Number(part.trim()));
  return lengths.length > 0 && lengths.every((n) => Number.isSafeInteger(n) && n >= 1) ? lengths : null;
}

/** Seeded prompt of ordinary token ids (no special tokens), the same for every engine. */
export function benchmarkPrompt(length: number, seed = 1): number[] {
  let state = seed >>> 0;
  const tokens: number[] = [];
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    // Ordinary Llama-3 tokens are ids 0..127999; skip the first 256 single-byte tokens.
    tokens.push(256 + (state % (128000 - 256)));
  }
  return tokens;
}

/** Peak RSS of this process in MiB (resourceUsage reports kilobytes on Linux and macOS). */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Parses a benchmark script's options. `--help` prints `usage` and exits with status 0; an unknown
 * option or a missing value prints the problem and `usage` to stderr and exits with status 2.
 */
export function parseBenchArgs<T extends NonNullable<ParseArgsConfig["options"]>>(options: T, usage: string) {
  if (process.argv.slice(2).some((arg) => arg === "--help" || arg === "-h")) {
    process.stdout.write(usage.endsWith("\n") ? usage : usage + "\n");
    process.exit(0);
  }
  try {
    return parseArgs({ options, strict: true, allowPositionals: false });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${usage}${usage.endsWith("\n") ? "" : "\n"}`);
    process.exit(2);
  }
}
