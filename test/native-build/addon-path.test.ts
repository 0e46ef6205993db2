// NESSO_MCP_ADDON: loadNativeAddon() loads the addon file the variable names, and a missing or
// broken file is an error naming the variable and the path. Each case runs in a child process
// because the loaded addon is cached for the life of the process.

import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { makeTempDir } from "../engine/helpers.js";

const root = resolve(import.meta.dirname, "../..");
const defaultAddon = join(root, "native", "build", "Release", "nesso_native.node");
const nativeModule = pathToFileURL(join(root, "src", "engine", "native.ts")).href;

const temp = makeTempDir("nesso-addon-path-");
afterAll(() => temp.remove());

// A directory name with an accent and an emoji, so the loader is checked on a non-ASCII path.
const copyDir = join(temp.dir, "modèllo-🦆");
mkdirSync(copyDir);
const copiedAddon = join(copyDir, "nesso_native.node");
copyFileSync(defaultAddon, copiedAddon);

interface LoadOutcome {
  simdPath?: string;
  code?: string;
  message?: string;
  stderr: string;
}

/** Calls loadNativeAddon() in a child process with NESSO_MCP_ADDON set to `setting`, from `cwd`. */
function loadInChild(setting: string, cwd = root): LoadOutcome {
  const probe = `
    process.chdir(${JSON.stringify(cwd)});
    const { loadNativeAddon } = await import(${JSON.stringify(nativeModule)});
    try {
      process.stdout.write(JSON.stringify({ simdPath: loadNativeAddon().simdPath() }));
    } catch (error) {
      process.stdout.write(JSON.stringify({ code: error.code, message: error.message }));
    }
  `;
  const env: NodeJS.ProcessEnv = { ...process.env, NESSO_MCP_ADDON: setting, NESSO_MCP_LOG_LEVEL: "debug" };
  delete env.NESSO_MCP_SIMD;
  const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", probe], {
    cwd: root,
    env,
    encoding: "utf8",
  });
  expect(result.status, result.stderr).toBe(0);
  return { ...(JSON.parse(result.stdout) as Omit<LoadOutcome, "stderr">), stderr: result.stderr };
}

describe("NESSO_MCP_ADDON", () => {
  it("loads the named addon file", () => {
    const outcome = loadInChild(copiedAddon);

    expect(outcome.code).toBeUndefined();
    expect(["portable", "avx2", "avx512", "neon"]).toContain(outcome.simdPath);
    expect(outcome.stderr).toContain(`loaded ${copiedAddon} (`);
  });

  it("resolves a relative path against the current directory", () => {
    const outcome = loadInChild(join("modèllo-🦆", "nesso_native.node"), temp.dir);

    expect(outcome.code).toBeUndefined();
    expect(outcome.stderr).toContain(`loaded ${copiedAddon} (`);
  });

  it("rejects a missing file", () => {
    const missing = join(temp.dir, "assente", "nesso_native.node");
    const outcome = loadInChild(missing);

    expect(outcome.code).toBe("INVALID_ARGUMENT");
    expect(outcome.message).toContain(`NESSO_MCP_ADDON=${missing}`);
    expect(outcome.message).toContain("not found");
    expect(outcome.stderr).not.toContain("loaded ");
  });

  it("rejects a file that is not an addon", () => {
    const broken = join(temp.dir, "rotto.node");
    writeFileSync(broken, "not a shared library");
    const outcome = loadInChild(broken);

    expect(outcome.code).toBe("INVALID_ARGUMENT");
    expect(outcome.message).toContain(broken);
    expect(outcome.message).toContain("from NESSO_MCP_ADDON failed to load");
  });

  it("rejects a module that is not nesso_native", () => {
    const other = join(temp.dir, "altro.cjs");
    writeFileSync(other, "module.exports = { loadModel: 1 };");
    const outcome = loadInChild(other);

    expect(outcome.code).toBe("INVALID_ARGUMENT");
    expect(outcome.message).toContain(`${other} from NESSO_MCP_ADDON is not nesso_native.node`);
  });
});
