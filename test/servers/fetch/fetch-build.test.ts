// The fetch server compiled to JavaScript runs as plain `node main.js`, the way mcp.json starts it.

import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Host } from "../../../src/host/host.js";
import { makeTempDir, modulesDir, repoRoot } from "../../host/helpers/processes.js";
import { startPageServer, type PageServer } from "./page-server.js";

let temp: { path: string; remove: () => void };
let mainScript: string;
let pages: PageServer;

beforeAll(async () => {
  temp = makeTempDir("fetch-build");

  // Each file is compiled on its own to ES modules, which is what tsc emits for this ESM package.
  // The server uses no type-directed emit, so the output is the same as a full tsc build.
  const sourceDir = join(repoRoot, "servers", "fetch");
  const outputDir = join(temp.path, "servers", "fetch");
  mkdirSync(outputDir, { recursive: true });
  for (const file of readdirSync(sourceDir).filter((name) => name.endsWith(".ts"))) {
    const output = ts.transpileModule(readFileSync(join(sourceDir, file), "utf8"), {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
      fileName: file,
    });
    writeFileSync(join(outputDir, file.replace(/\.ts$/, ".js")), output.outputText);
  }

  // The compiled files resolve the SDK and read their module type like dist/ inside the package does.
  symlinkSync(modulesDir, join(temp.path, "node_modules"), "dir");
  writeFileSync(join(temp.path, "package.json"), JSON.stringify({ type: "module" }));
  mainScript = join(temp.path, "servers", "fetch", "main.js");
  pages = await startPageServer();
});

afterAll(async () => {
  await pages?.close();
  temp?.remove();
});

describe("compiled fetch server", () => {
  it("serves the fetch tool as node main.js", async () => {
    const host = new Host({ servers: [{ name: "fetch", type: "stdio", command: "node", args: [mainScript], env: {}, disabled: false }] });
    try {
      const [status] = await host.start();
      expect(status.error).toBeUndefined();
      expect(status.serverInfo).toEqual({ name: "nesso-mcp-fetch", version: "0.1.0" });
      expect(host.listTools().map((tool) => tool.name)).toEqual(["fetch"]);

      const result = await host.callTool("fetch", { url: `${pages.url}/pagina.html`, max_length: 60 });
      const text = (result.content as Array<{ text: string }>)[0].text;
      expect(text).toContain("# Perché il caffè napoletano è speciale ☕");
    } finally {
      await host.close();
    }
  });

  it("prints usage for --help", () => {
    const result = spawnSync(process.execPath, [mainScript, "--help"], { encoding: "utf8" });

    expect(result.status).toBe(0);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("--max-bytes N");
  });

  it("rejects invalid options with exit code 2", () => {
    const unknown = spawnSync(process.execPath, [mainScript, "--colour"], { encoding: "utf8" });
    const invalid = spawnSync(process.execPath, [mainScript, "--timeout-ms", "soon"], { encoding: "utf8" });

    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("--colour");
    expect(invalid.status).toBe(2);
    expect(invalid.stderr).toContain('--timeout-ms must be a positive integer, got "soon"');
  });
});
