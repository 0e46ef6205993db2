// Runs @modelcontextprotocol/conformance 0.1.13, an independent implementation of the protocol's
// checks: its server scenarios against `nesso-mcp serve --http`, and its client scenarios against
// the host's client. Expected failures are listed, with reasons, in baseline.yml.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { repositoryRoot, startHttpServe, type HttpServeProcess } from "../server/serve-process.js";

const conformanceCli = join(repositoryRoot, "node_modules/@modelcontextprotocol/conformance/dist/index.js");
const baseline = fileURLToPath(new URL("./baseline.yml", import.meta.url));
const clientProgram = fileURLToPath(new URL("./client.ts", import.meta.url));

interface Check {
  id: string;
  status: string;
  errorMessage?: string;
}

/** Reads every checks.json the CLI wrote under `dir`, keyed by the scenario directory name. */
function readChecks(dir: string): Map<string, Check[]> {
  const results = new Map<string, Check[]>();
  for (const entry of readdirSync(dir)) {
    const scenario = entry.replace(/^(server|client)-/, "").replace(/-\d{4}-\d{2}-\d{2}T.*$/, "");
    results.set(scenario, JSON.parse(readFileSync(join(dir, entry, "checks.json"), "utf8")) as Check[]);
  }
  return results;
}

function runConformance(args: string[], outputDir: string) {
  return spawnSync(process.execPath, [conformanceCli, ...args, "--expected-failures", baseline, "-o", outputDir], {
    cwd: repositoryRoot,
    encoding: "utf8",
    timeout: 240_000,
  });
}

describe("conformance server scenarios", () => {
  let server: HttpServeProcess;
  let outputDir: string;

  beforeAll(async () => {
    outputDir = mkdtempSync(join(tmpdir(), "nesso-conformance-"));
    server = await startHttpServe(["--no-servers"]);
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(outputDir, { recursive: true, force: true });
  });

  it("passes all but the baseline", () => {
    const run = runConformance(["server", "--url", server.url], outputDir);
    expect(run.stdout, run.stderr).toContain("Baseline check passed: all failures are expected.");
    expect(run.status).toBe(0);

    const checks = readChecks(outputDir);
    for (const scenario of ["server-initialize", "ping", "tools-list", "tools-call-error", "resources-list", "server-sse-multiple-streams", "dns-rebinding-protection"]) {
      const scenarioChecks = checks.get(scenario);
      expect(scenarioChecks, scenario).toBeDefined();
      expect(scenarioChecks!.filter((check) => check.status === "FAILURE"), scenario).toEqual([]);
    }
    expect(checks.get("dns-rebinding-protection")!.map((check) => `${check.id}:${check.status}`)).toEqual([
      "localhost-host-rebinding-rejected:SUCCESS",
      "localhost-host-valid-accepted:SUCCESS",
    ]);
  });

  it("keeps serving after the suite", async () => {
    const response = await fetch(server.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "after", version: "1" } } }),
    });
    expect(response.status).toBe(200);
    await response.body?.cancel();
  });
});

describe("conformance client scenarios", () => {
  const scenarios = ["initialize", "tools_call", "sse-retry", "elicitation-sep1034-client-defaults"];

  for (const scenario of scenarios) {
    it(`runs ${scenario} against the host's client`, () => {
      const outputDir = mkdtempSync(join(tmpdir(), "nesso-conformance-client-"));
      try {
        const run = runConformance(["client", "--command", `${process.execPath} --import tsx ${clientProgram}`, "--scenario", scenario], outputDir);
        expect(run.stdout, run.stderr).toContain("Baseline check passed: all failures are expected.");
        expect(run.status).toBe(0);
        const checks = [...readChecks(outputDir).values()].flat();
        expect(checks.length).toBeGreaterThan(0);
      } finally {
        rmSync(outputDir, { recursive: true, force: true });
      }
    });
  }
});
