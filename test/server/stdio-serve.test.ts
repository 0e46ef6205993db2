// `nesso-mcp serve` over stdio as a subprocess with the real engine on the tiny fixture model. The
// SDK client drives it like Claude Desktop would. A raw reader checks that every line on stdout is
// a JSON-RPC message while the model loads, generates and reports a tool error.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { JSONRPCMessageSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { defineServeChecks, removeConfig, writeMemoryConfig } from "./acceptance.js";
import { repositoryRoot, serveArguments } from "./serve-process.js";

describe("serve over stdio", () => {
  let client: Client;
  let configDir: string | undefined;
  let stderr = "";

  beforeAll(async () => {
    const { configPath, dir } = writeMemoryConfig();
    configDir = dir;
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: serveArguments(["--model", tinyCheckpoint("F32"), "--config", configPath, "--threads", "2"]),
      cwd: repositoryRoot,
      stderr: "pipe",
    });
    transport.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    client = new Client({ name: "stdio-acceptance", version: "1.0.0" });
    const started = Date.now();
    await client.connect(transport);
    // initialize returns before any model work, because the model loads on the first generate.
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  afterAll(async () => {
    await client?.close();
    removeConfig(configDir);
  });

  defineServeChecks(() => client);

  it("writes logs to stderr only", () => {
    expect(stderr).not.toMatch(/"jsonrpc"/);
  });
});

describe("serve stdout", () => {
  it("carries only JSON-RPC messages", async () => {
    const child = spawn(process.execPath, serveArguments(["--model", tinyCheckpoint("F32"), "--no-servers", "--threads", "2"]), {
      cwd: repositoryRoot,
      // Debug logging makes the engine, the model loader and the server log as much as they can.
      env: { ...process.env, NESSO_MCP_LOG_LEVEL: "debug" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

    const lines: string[] = [];
    const waiting = new Map<number, (message: { id?: number; result?: unknown; error?: unknown }) => void>();
    createInterface({ input: child.stdout }).on("line", (line) => {
      lines.push(line);
      try {
        const message = JSON.parse(line) as { id?: number };
        if (typeof message.id === "number") waiting.get(message.id)?.(message);
      } catch {
        // Judged below, with every other line.
      }
    });
    const send = (message: object) => child.stdin.write(JSON.stringify(message) + "\n");
    const request = (id: number, method: string, params: object) =>
      new Promise<{ result?: unknown; error?: unknown }>((resolve) => {
        waiting.set(id, resolve);
        send({ jsonrpc: "2.0", id, method, params });
      });

    await request(1, "initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } });
    send({ jsonrpc: "2.0", method: "notifications/initialized" });
    const generated = await request(2, "tools/call", { name: "generate", arguments: { prompt: "Ciao! Parlami di Roma 🏛️", max_tokens: 40 }, _meta: { progressToken: "p1" } });
    const invalid = await request(3, "tools/call", { name: "generate", arguments: { prompt: 42 } });
    const unknownTool = await request(4, "tools/call", { name: "nessuno", arguments: {} });
    const resource = await request(5, "resources/read", { uri: "nesso://model" });
    child.stdin.end();
    expect(await exited).toBe(0);

    expect(generated.result).toMatchObject({ structuredContent: { generated_tokens: expect.any(Number) } });
    expect(invalid.result).toMatchObject({ isError: true });
    expect(unknownTool.result ?? unknownTool.error).toBeDefined();
    expect(resource.result).toMatchObject({ contents: [{ uri: "nesso://model" }] });

    expect(lines.length).toBeGreaterThanOrEqual(6);
    for (const line of lines) {
      expect(JSONRPCMessageSchema.safeParse(JSON.parse(line)).success, line).toBe(true);
    }
    expect(lines.some((line) => line.includes('"notifications/progress"'))).toBe(true);
    expect(stderr).toMatch(/\[nesso-mcp:engine\]/);
    expect(stderr).toMatch(/\[nesso-mcp:server\] debug|\[nesso-mcp:server\] info/);
  });
});
