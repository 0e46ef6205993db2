// End to end: `nesso-mcp run` as a subprocess, with the native engine on the tiny fixture and the
// real filesystem MCP server from npm.

import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";

const root = resolve(import.meta.dirname, "../..");
const cli = join(root, "dist/src/cli/main.js");
const filesystemServer = join(root, "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");

/** PIDs of live processes whose command line mentions `needle`. */
function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const commandLine = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
      if (commandLine.includes(needle)) pids.push(Number(entry));
    } catch {
      // The process ended while the list was read.
    }
  }
  return pids;
}

interface RunOutput {
  code: number | null;
  stdoutChunks: string[];
  stderr: string;
}

function runCli(args: string[], cwd: string, timeoutMs = 120_000): Promise<RunOutput> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1", HF_HUB_CACHE: join(cwd, "hf-cache"), HF_HUB_OFFLINE: "1" } });
    const stdoutChunks: string[] = [];
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => stdoutChunks.push(chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`nesso-mcp ${args[0]} did not exit within ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdoutChunks, stderr });
    });
  });
}

describe("nesso-mcp run", () => {
  let workDir: string;
  let modelDir: string;

  beforeAll(() => {
    modelDir = tinyCheckpoint("F32");
    workDir = mkdtempSync(join(tmpdir(), "nesso-cli-run-"));
    writeFileSync(join(workDir, "note.txt"), "Appunti: il caffè è pronto 🙂\n");
    const config = { mcpServers: { filesystem: { command: process.execPath, args: [filesystemServer, workDir] } } };
    writeFileSync(join(workDir, "mcp.json"), JSON.stringify(config));
  });

  afterAll(() => {
    rmSync(workDir, { recursive: true, force: true });
  });

  it("prompts with the tools, streams and exits cleanly", async () => {
    const output = await runCli(
      ["run", "leggi il file note.txt", "--model", modelDir, "--config", join(workDir, "mcp.json"), "--temperature", "0", "--max-steps", "2", "--yes", "--verbose"],
      workDir,
    );

    expect(output.stderr).toMatch(/prompt of \d+ tokens offers tools: [^\n]*read_text_file/);
    expect(output.code, output.stderr.slice(-2000)).toBe(0);
    // The random-weight model writes prose until the output limit, streamed in many chunks.
    expect(output.stderr).toContain("the answer reached the output token limit");
    expect(output.stdoutChunks.length).toBeGreaterThan(1);
    expect(output.stdoutChunks.join("").length).toBeGreaterThan(100);
    expect(processesMentioning(workDir)).toEqual([]);
  });

  it("reports a missing model with the pull command", async () => {
    const output = await runCli(["run", "ciao", "--model", "example-org/missing-model", "--config", join(workDir, "mcp.json")], workDir, 60_000);

    expect(output.code).toBe(1);
    expect(output.stderr).toContain("nesso-mcp pull example-org/missing-model");
    expect(processesMentioning(workDir)).toEqual([]);
  });

  it("rejects a run without a task", async () => {
    const output = await runCli(["run"], workDir, 30_000);

    expect(output.code).toBe(2);
    expect(output.stderr).toContain("run needs a task");
  });
});
