// `nesso-mcp doctor` as a subprocess: one verdict line per check, a fix for each failure, and the
// exit code.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";

const root = resolve(import.meta.dirname, "../..");
const cli = join(root, "dist/src/cli/main.js");
const filesystemServer = join(root, "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");

function doctor(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [cli, "doctor", ...args], {
    cwd,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, HF_HUB_CACHE: join(cwd, "hf-cache"), HF_HUB_OFFLINE: "1" },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The verdict line of one check, e.g. "[FAIL] model config: …". */
function lineOf(stdout: string, check: string): string {
  return stdout.split("\n").find((line) => line.includes(`] ${check}:`)) ?? `(no line for ${check})`;
}

describe("nesso-mcp doctor", () => {
  let workDir: string;
  let modelDir: string;
  let goodConfig: string;

  beforeAll(() => {
    modelDir = tinyCheckpoint("F32");
    workDir = mkdtempSync(join(tmpdir(), "nesso-doctor-"));
    goodConfig = join(workDir, "good.json");
    writeFileSync(goodConfig, JSON.stringify({ mcpServers: { filesystem: { command: process.execPath, args: [filesystemServer, workDir] } } }));
  });

  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it("passes every check with a model and a working server", () => {
    const output = doctor(["--model", modelDir, "--config", goodConfig], workDir);

    expect(output.code, output.stdout + output.stderr).toBe(0);
    expect(lineOf(output.stdout, "Node.js")).toMatch(/^\[ok/);
    expect(lineOf(output.stdout, "native addon")).toMatch(/^\[ok {2}\] native addon: loaded, SIMD path \w+/);
    expect(lineOf(output.stdout, "model")).toMatch(/^\[ok/);
    expect(lineOf(output.stdout, "model config")).toContain("2 layers, hidden 64");
    expect(lineOf(output.stdout, "weights")).toMatch(/^\[ok/);
    expect(lineOf(output.stdout, "server filesystem")).toMatch(/^\[ok {2}\] server filesystem: 14 tools over stdio/);
    expect(lineOf(output.stdout, "tool schemas")).toMatch(/\d+ tokens for 14 tools/);
    expect(output.stdout).toContain("All checks passed");
  });

  it("reports a missing model with the pull command", () => {
    const output = doctor(["--model", "example-org/not-downloaded", "--config", goodConfig], workDir);

    expect(output.code).toBe(1);
    expect(lineOf(output.stdout, "model")).toMatch(/^\[FAIL\] model: .*not in the Hugging Face cache/);
    expect(output.stdout).toContain("→ run: nesso-mcp pull example-org/not-downloaded");
  });

  it("reports a corrupt config.json", () => {
    const brokenModel = join(workDir, "broken-model");
    rmSync(brokenModel, { recursive: true, force: true });
    mkdirSync(brokenModel);
    for (const file of readdirSync(modelDir)) {
      if (file !== "config.json") symlinkSync(join(modelDir, file), join(brokenModel, file));
    }
    writeFileSync(join(brokenModel, "config.json"), '{"model_type": "llama", "hidden_size": ');

    const output = doctor(["--model", brokenModel, "--config", goodConfig], workDir);

    expect(output.code).toBe(1);
    expect(lineOf(output.stdout, "model config")).toMatch(/^\[FAIL\] model config: .*config\.json/);
    expect(output.stdout).toMatch(/→ re-download the model \(nesso-mcp pull\) or fix config\.json/);
  });

  it("reports a server whose command does not exist", () => {
    const badConfig = join(workDir, "bad.json");
    writeFileSync(badConfig, JSON.stringify({ mcpServers: { ghost: { command: "nesso-no-such-command-xyz", args: [] } } }));

    const output = doctor(["--model", modelDir, "--config", badConfig], workDir);

    expect(output.code).toBe(1);
    expect(lineOf(output.stdout, "server ghost")).toMatch(/^\[FAIL\] server ghost: .*nesso-no-such-command-xyz/);
    expect(output.stdout).toContain("→ check its command, args and env in mcp.json");
  });
});
