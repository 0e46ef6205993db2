#!/usr/bin/env node
// The portable-only check that `npm test` runs after the main vitest run:
//   1. builds the addon with NESSO_MCP_SIMD_BUILD=OFF (portable kernels only, no AVX2, AVX-512 or
//      NEON sources) into native/build-portable, leaving native/build alone;
//   2. checks that build: no object file for a SIMD source, and simdPath() is "portable" even when
//      NESSO_MCP_SIMD requests a SIMD path;
//   3. runs the test files that exercise the native code with NESSO_MCP_ADDON pointing at that
//      build, writing the vitest JSON report test-results-portable.json.
// Any failed step exits with status 1, so `npm test` fails too.
//
// Usage: node scripts/test-portable.mjs

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const buildDir = join(nativeDir, "build-portable");
const addonPath = join(buildDir, "Release", "nesso_native.node");
const reportPath = join(root, "test-results-portable.json");

// Files that load the addon: kernels, forward pass, quantized models, prompt cache, sampler, the
// llama.cpp oracle comparison and the engine-backed agent loop. Build and tests took 3m20s in one
// run on 2 shared cores. The grammar-constrained generation file (tool-calling) is left out
// because it alone took 7 minutes on the portable kernels in that setting.
const testFiles = [
  "test/engine/native-kernels.test.ts",
  "test/engine/quant-kernels.test.ts",
  "test/engine/quant-int8.test.ts",
  "test/engine/native-forward.test.ts",
  "test/engine/native-sampler.test.ts",
  "test/engine/native-context.test.ts",
  "test/engine/native-load.test.ts",
  "test/engine/native-fuzz.test.ts",
  "test/engine/model-errors.test.ts",
  "test/engine/quant-model.test.ts",
  "test/engine/quant-oracle.test.ts",
  "test/engine/prompt-cache.test.ts",
  "test/engine/prompt-cache-process.test.ts",
  "test/engine/session.test.ts",
  "test/engine/stop.test.ts",
  "test/oracle/gguf.test.ts",
  "test/oracle/llama-cpp.test.ts",
  "test/agent/engine-agent.test.ts",
];

/** Sources that CMakeLists.txt compiles only when the SIMD kernels are on. */
const simdSourcePattern = /-(avx2|avx512|neon)\.cc$/;

/** SIMD paths the portable build must reject, falling back to "portable". */
const simdPaths = ["avx2", "avx512", "neon"];

function fail(message) {
  console.error(`test-portable: ${message}`);
  process.exit(1);
}

/** Runs a command with inherited stdio and fails the script when it exits non-zero. */
function run(step, args, env) {
  console.error(`test-portable: ${step}`);
  const result = spawnSync(process.execPath, args, { cwd: root, env, stdio: "inherit" });
  if (result.error) fail(`${step} failed to start: ${result.error.message}`);
  if (result.status !== 0) fail(`${step} failed (exit status ${result.status ?? result.signal})`);
}

/** Returns the environment for the portable steps: NESSO_MCP_SIMD unset, so the addon picks its path. */
function portableEnvironment(extra) {
  const env = { ...process.env, ...extra };
  delete env.NESSO_MCP_SIMD;
  return env;
}

function buildPortableAddon() {
  const cmakeJs = join(root, "node_modules", "cmake-js", "bin", "cmake-js");
  run(
    "building the portable-only addon in native/build-portable",
    [cmakeJs, "compile", "--directory", nativeDir, "--out", buildDir],
    { ...process.env, NESSO_MCP_SIMD_BUILD: "OFF" },
  );
  if (!existsSync(addonPath)) fail(`the portable build wrote no ${addonPath}`);
}

/** Returns the names of all files under `dir`. */
function fileNamesUnder(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => entry.name);
}

/** Checks the object files: the portable kernels were compiled and no SIMD source was. */
function checkCompiledSources() {
  const simdSources = readdirSync(nativeDir).filter((name) => simdSourcePattern.test(name));
  if (simdSources.length === 0) {
    fail(`found no SIMD sources (*-avx2.cc, *-avx512.cc, *-neon.cc) in ${nativeDir}; update simdSourcePattern`);
  }

  const objects = new Set(fileNamesUnder(buildDir));
  const hasObject = (source) => objects.has(`${source}.o`) || objects.has(`${source}.obj`);
  if (!hasObject("kernels-portable.cc")) {
    fail(`found no object file for kernels-portable.cc under ${buildDir}, so the source check cannot run`);
  }
  const compiled = simdSources.filter(hasObject);
  if (compiled.length > 0) {
    fail(
      `${buildDir} holds object files for SIMD sources (${compiled.join(", ")}); ` +
        `delete ${buildDir} and run again so it is configured with NESSO_MCP_SIMD_BUILD=OFF`,
    );
  }
  console.error(`test-portable: no object file for ${simdSources.join(", ")}`);
}

/** Loads the build through NESSO_MCP_ADDON in a child process and checks which kernels it reports. */
function checkSimdPath() {
  const nativeModule = pathToFileURL(join(root, "src", "engine", "native.ts")).href;
  const probe = `
    const { loadNativeAddon } = await import(${JSON.stringify(nativeModule)});
    const addon = loadNativeAddon();
    const reported = { unset: addon.simdPath() };
    for (const path of ${JSON.stringify(simdPaths)}) {
      process.env.NESSO_MCP_SIMD = path;
      reported[path] = addon.simdPath();
    }
    process.stdout.write(JSON.stringify(reported));
  `;
  const env = portableEnvironment({ NESSO_MCP_ADDON: addonPath, NESSO_MCP_LOG_LEVEL: "error" });
  const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", probe], {
    cwd: root,
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (result.status !== 0) fail(`loading ${addonPath} through NESSO_MCP_ADDON failed (exit status ${result.status})`);

  const reported = JSON.parse(result.stdout);
  const wrong = Object.entries(reported).filter(([, chosen]) => chosen !== "portable");
  if (wrong.length > 0) {
    const list = wrong.map(([forced, chosen]) => `NESSO_MCP_SIMD ${forced} -> ${chosen}`).join(", ");
    fail(`${addonPath} runs SIMD kernels (${list}); expected "portable" for every setting`);
  }
  console.error(`test-portable: simdPath() is "portable" with NESSO_MCP_SIMD unset and set to ${simdPaths.join(", ")}`);
}

function runPortableTests() {
  const missing = testFiles.filter((file) => !existsSync(join(root, file)));
  if (missing.length > 0) fail(`test files not found: ${missing.join(", ")}; update testFiles in scripts/test-portable.mjs`);

  rmSync(reportPath, { force: true });
  const vitest = join(root, "node_modules", "vitest", "vitest.mjs");
  run(
    `running ${testFiles.length} test files against the portable addon`,
    [vitest, "run", ...testFiles, `--outputFile.json=${reportPath}`],
    portableEnvironment({ NESSO_MCP_ADDON: addonPath }),
  );
  if (!existsSync(reportPath)) fail(`vitest wrote no ${reportPath}`);
}

buildPortableAddon();
checkCompiledSources();
checkSimdPath();
runPortableTests();
