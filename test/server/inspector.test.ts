// The MCP inspector CLI (@modelcontextprotocol/inspector-cli 1.0.3), an independent client, lists
// and calls the server's tools non-interactively over stdio and over Streamable HTTP.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { cliEntry, repositoryRoot, startHttpServe, type HttpServeProcess } from "./serve-process.js";

const inspector = join(repositoryRoot, "node_modules/.bin/mcp-inspector-cli");

/** Runs the inspector CLI; its cwd must be below an npm project (inspector-cli 1.0.3 looks for ../package.json). */
function runInspector(args: string[]) {
  const run = spawnSync(inspector, ["--cli", ...args], { cwd: join(repositoryRoot, "test"), encoding: "utf8", timeout: 120_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe("inspector CLI", () => {
  let dir: string;
  let configPath: string;
  let server: HttpServeProcess;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "nesso-inspector-"));
    configPath = join(dir, "claude_desktop_config.json");
    // The same shape as a Claude Desktop entry, with the local checkout instead of npx.
    const entry = { command: process.execPath, args: ["--import", "tsx", cliEntry, "serve", "--model", tinyCheckpoint("F32"), "--no-servers", "--threads", "2"] };
    writeFileSync(configPath, JSON.stringify({ mcpServers: { nesso: entry } }));
    server = await startHttpServe(["--model", tinyCheckpoint("F32"), "--no-servers", "--threads", "2"]);
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists tools over stdio", () => {
    const run = runInspector(["--config", configPath, "--server", "nesso", "--method", "tools/list"]);
    expect(run.status, run.stderr).toBe(0);
    const { tools } = JSON.parse(run.stdout) as { tools: { name: string }[] };
    expect(tools.map((tool) => tool.name).sort()).toEqual(["agent", "extract", "generate"]);
  });

  it("calls generate over stdio", () => {
    const run = runInspector(["--config", configPath, "--server", "nesso", "--method", "tools/call", "--tool-name", "generate", "--tool-arg", "prompt=Ciao, com'è il tempo a Milano? 🌧️", "max_tokens=3"]);
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { isError?: boolean; structuredContent: { generated_tokens: number; finish_reason: string } };
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toMatchObject({ generated_tokens: 3, finish_reason: "length" });
  });

  it("calls generate over HTTP", () => {
    const run = runInspector([server.url, "--transport", "http", "--method", "tools/call", "--tool-name", "generate", "--tool-arg", "prompt=Buongiorno", "max_tokens=2"]);
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { isError?: boolean; structuredContent: { generated_tokens: number } };
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent.generated_tokens).toBe(2);
  });

  it("reads nesso://model over HTTP", () => {
    const run = runInspector([server.url, "--transport", "http", "--method", "resources/read", "--uri", "nesso://model"]);
    expect(run.status, run.stderr).toBe(0);
    const { contents } = JSON.parse(run.stdout) as { contents: { text: string }[] };
    expect(JSON.parse(contents[0].text)).toMatchObject({ state: "ready", context_size: 4096 });
  });
});
