import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // The engine tests share two cores; running files one at a time keeps timings and memory predictable.
    fileParallelism: false,
    // Prompt-cache files written by engine, CLI and server tests (and their subprocesses) go to a
    // scratch directory, never to the user's cache.
    env: { NESSO_MCP_CACHE_DIR: join(tmpdir(), `nesso-mcp-test-prompt-cache-${process.pid}`) },
    reporters: ["default", "json"],
    outputFile: { json: "test-results.json" },
  },
});
