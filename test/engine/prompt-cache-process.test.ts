// The persistent prompt cache across processes: a state saved by one process is restored by the
// next, and a process that writes while another reads never exposes a partial file.

import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PromptCache, type PromptCacheStats } from "../../src/engine/prompt-cache.js";
import type { FinishRecord } from "../../src/engine/types.js";
import { LogLevel, getLogLevel, setLogLevel, setLogSink } from "../../src/logger.js";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { makeTempDir } from "./helpers.js";
import { syntheticEntry } from "./prompt-cache-fixtures.js";

const testDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(testDir, "../..");
const childScript = join(testDir, "prompt-cache-child.ts");

let temp: { dir: string; remove: () => void };
const children = new Set<ChildProcess>();

beforeEach(() => {
  temp = makeTempDir("nesso-prompt-cache-process-");
});

afterEach(() => {
  // A failed test must not leave a child behind.
  for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGKILL");
  children.clear();
  temp.remove();
});

interface ChildRun {
  /** The child's parsed JSON line, available once it exits with code 0. */
  output: Promise<unknown>;
  /** Reports whether the child has exited. */
  exited: () => boolean;
}

function runChild(args: string[], timeoutMs = 60_000): ChildRun {
  const child = spawn(process.execPath, ["--import", "tsx", childScript, ...args], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stdout = "";
  let stderr = "";
  let exited = false;
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const output = new Promise<unknown>((resolveOutput, reject) => {
    const timer = setTimeout(() => process.kill(child.pid!, "SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      exited = true;
      const line = stdout.trim().split("\n").pop() ?? "";
      if (code !== 0 || !line.startsWith("{")) {
        reject(new Error(`prompt-cache-child ${args[0]} exited with code ${code} (signal ${signal}); stderr: ${stderr.slice(-2000)}`));
        return;
      }
      resolveOutput(JSON.parse(line));
    });
  });
  return { output, exited: () => exited };
}

interface GenerateOutput {
  tokens: number[];
  finish: FinishRecord;
  stats: PromptCacheStats;
}

describe("prompt cache across processes", () => {
  it("restores a state saved by another process", async () => {
    const args = ["generate", "--model", tinyCheckpoint("F32"), "--cache", temp.dir];
    const first = (await runChild([...args, "--user", "Quali file ci sono in «città»? 🇮🇹"]).output) as GenerateOutput;
    expect(first.finish.promptCacheTokens).toBe(0);
    expect(first.stats.writes).toBe(1);
    expect(first.tokens.length).toBeGreaterThan(0);

    const second = (await runChild([...args, "--user", "Quali file ci sono in «città»? 🇮🇹"]).output) as GenerateOutput;
    expect(second.stats).toMatchObject({ hits: 1, writes: 0, rejected: 0 });
    expect(second.finish.promptCacheTokens).toBeGreaterThan(50);
    expect(second.finish.reusedTokens).toBe(second.finish.promptCacheTokens);
    expect(second.tokens).toEqual(first.tokens);

    // A different user message after the same system turn restores the same prefix.
    const third = (await runChild([...args, "--user", "List the files, please."]).output) as GenerateOutput;
    expect(third.finish.promptCacheTokens).toBe(second.finish.promptCacheTokens);
  });

  it("hides a concurrent writer's partial files", async () => {
    const lines: string[] = [];
    const previousLevel = getLogLevel();
    const restoreSink = setLogSink((line) => lines.push(line));
    setLogLevel(LogLevel.Debug);
    try {
      const entry = syntheticEntry();
      const reader = new PromptCache({ dir: temp.dir, modelIdentity: entry.modelIdentity });
      const writer = runChild(["write", "--cache", temp.dir, "--count", "15"]);

      // Read for as long as the writer keeps replacing the file. Each read must be a miss (before
      // the first rename) or the complete state, never a rejected file.
      let hits = 0;
      while (!writer.exited()) {
        const state = await reader.lookup(entry.prefix);
        if (state !== null) {
          expect(Buffer.from(state).equals(entry.state)).toBe(true);
          hits++;
        }
        await new Promise((resolveWait) => setTimeout(resolveWait, 1));
      }
      expect(await writer.output).toEqual({ writes: 15 });
      expect(hits).toBeGreaterThan(0);
      expect(reader.stats.rejected).toBe(0);
      expect(lines.filter((line) => line.includes("ignoring prompt cache file"))).toEqual([]);
    } finally {
      setLogSink(restoreSink);
      setLogLevel(previousLevel);
    }
  });
});
