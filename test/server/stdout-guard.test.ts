import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const script = fileURLToPath(new URL("./fixtures/stray-output.ts", import.meta.url));

describe("guardStdout", () => {
  it("sends stray output to stderr", () => {
    const run = spawnSync(process.execPath, ["--import", "tsx", script], { encoding: "utf8", timeout: 30_000 });
    expect(run.status).toBe(0);
    const stdoutLines = run.stdout.split("\n").filter((line) => line !== "");
    expect(stdoutLines).toEqual(['{"jsonrpc":"2.0","method":"notifications/message","params":{"text":"è 🇮🇹"}}', "after restore"]);
    for (const stray of ["stray console.log", "stray console.info", "stray console.debug", "stray process.stdout.write"]) {
      expect(run.stderr).toContain(stray);
    }
  });
});
