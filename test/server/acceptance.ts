// Checks that `nesso-mcp serve` must pass over every transport, run by stdio-serve.test.ts and
// http-serve.test.ts against a subprocess with the real engine on the tiny fixture model.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { CallToolResult, Progress } from "@modelcontextprotocol/sdk/types.js";
import { Ajv2020 } from "ajv/dist/2020.js";
import { expect, it } from "vitest";

const require = createRequire(import.meta.url);

/** Reads a JSON resource and returns it parsed. */
export async function readJsonResource(client: Client, uri: string): Promise<Record<string, unknown>> {
  const { contents } = await client.readResource({ uri });
  const first = contents[0];
  if (first === undefined || !("text" in first)) throw new Error(`${uri} returned no text content`);
  return JSON.parse(first.text) as Record<string, unknown>;
}

export function textOf(result: CallToolResult): string {
  return result.content.map((block) => (block.type === "text" ? block.text : "")).join("");
}

/** Writes a temporary mcp.json with the official memory server; returns it and the directory to remove afterwards. */
export function writeMemoryConfig(): { configPath: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "nesso-serve-"));
  const configPath = join(dir, "mcp.json");
  const memoryServer = require.resolve("@modelcontextprotocol/server-memory/dist/index.js");
  const config = {
    mcpServers: {
      memoria: { command: process.execPath, args: [memoryServer], env: { MEMORY_FILE_PATH: join(dir, "memory.jsonl") } },
    },
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return { configPath, dir };
}

export function removeConfig(dir: string | undefined): void {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}

/** Registers the shared checks; `client()` returns the connected client of the current suite. */
export function defineServeChecks(client: () => Client): void {
  it("lists the three tools", async () => {
    const { tools } = await client().listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual(["agent", "extract", "generate"]);
    for (const tool of tools) expect(tool.outputSchema?.type).toBe("object");
  });

  it("reads nesso://model", async () => {
    const model = await readJsonResource(client(), "nesso://model");
    // Nothing has needed the model yet, so it must not have been loaded.
    expect(model.state).toBe("not loaded");
  });

  it("generates with the tiny model", async () => {
    const result = (await client().callTool({ name: "generate", arguments: { prompt: "Scrivi una frase sul caffè ☕.", max_tokens: 12 } })) as CallToolResult;
    expect(result.isError, textOf(result)).toBeFalsy();
    const output = result.structuredContent as { text: string; finish_reason: string; generated_tokens: number; prompt_tokens: number };
    expect(output.generated_tokens).toBeGreaterThan(0);
    expect(output.generated_tokens).toBeLessThanOrEqual(12);
    expect(output.prompt_tokens).toBeGreaterThan(5);
    expect(["length", "stop"]).toContain(output.finish_reason);
    expect(textOf(result)).toBe(output.text);

    expect(await readJsonResource(client(), "nesso://model")).toMatchObject({ state: "ready", context_size: 4096, config: { hidden_size: 64, num_hidden_layers: 2 } });
  });

  it("sends progress while generating", async () => {
    const received: Progress[] = [];
    const result = (await client().callTool({ name: "generate", arguments: { prompt: "Conta fino a cento.", max_tokens: 80 } }, undefined, {
      onprogress: (progress) => received.push(progress),
    })) as CallToolResult;
    expect(result.isError, textOf(result)).toBeFalsy();
    // 80 tokens at one notification per 16 give 5; the last may arrive after the response and be dropped.
    expect(received.length).toBeGreaterThanOrEqual(3);
    for (let index = 1; index < received.length; index++) expect(received[index].progress).toBeGreaterThan(received[index - 1].progress);
    expect(received.some((progress) => /^generated \d+ of at most 80 tokens$/.test(progress.message ?? ""))).toBe(true);
  });

  it("cancels a long generation and keeps serving", async () => {
    const controller = new AbortController();
    let progressSeen!: () => void;
    const generating = new Promise<void>((resolve) => (progressSeen = resolve));
    const long = client().callTool({ name: "generate", arguments: { prompt: "Racconta una storia lunga.", max_tokens: 4000 } }, undefined, {
      signal: controller.signal,
      onprogress: () => progressSeen(),
      timeout: 120_000,
    });
    await generating;

    const cancelledAt = Date.now();
    controller.abort(new Error("cancelled by the test"));
    await expect(long).rejects.toThrow(/cancelled by the test/);
    expect(Date.now() - cancelledAt).toBeLessThan(1_000);

    // The next call can only start once the cancelled generation has left the engine.
    const next = (await client().callTool({ name: "generate", arguments: { prompt: "Ciao", max_tokens: 2 } })) as CallToolResult;
    expect(next.isError, textOf(next)).toBeFalsy();
    expect(Date.now() - cancelledAt).toBeLessThan(3_000);
  });

  it("extracts schema-valid JSON with the grammar", async () => {
    const schema = {
      type: "object",
      properties: { città: { type: "string", maxLength: 24 }, abitanti: { type: "integer", minimum: 0, maximum: 10_000_000 } },
      required: ["città", "abitanti"],
      additionalProperties: false,
    };
    const result = (await client().callTool(
      { name: "extract", arguments: { text: "Perugia, capoluogo dell'Umbria, ha circa 162.000 abitanti.", schema, max_tokens: 200 } },
      undefined,
      { timeout: 120_000 },
    )) as CallToolResult;
    expect(result.isError, textOf(result)).toBeFalsy();
    const output = result.structuredContent as { data: unknown; attempts: number };
    // An independent ajv instance checks what the server claims, whatever the random model wrote.
    const validate = new Ajv2020({ strict: false }).compile(schema);
    expect(validate(output.data), JSON.stringify(validate.errors)).toBe(true);
    expect(output.attempts).toBe(1);
    expect(JSON.parse(textOf(result))).toEqual(output.data);
  });

  it("reports invalid arguments as a tool error", async () => {
    const result = (await client().callTool({ name: "generate", arguments: { prompt: "ciao", max_tokens: "molti" } })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/max_tokens/);
    const missing = (await client().callTool({ name: "extract", arguments: { text: "x" } })) as CallToolResult;
    expect(missing.isError).toBe(true);
    expect(textOf(missing)).toMatch(/schema/);
    const alive = (await client().callTool({ name: "generate", arguments: { prompt: "ancora qui?", max_tokens: 2 } })) as CallToolResult;
    expect(alive.isError).toBeFalsy();
  });

  it("runs the agent with the configured server", async () => {
    const servers = (await readJsonResource(client(), "nesso://servers")) as unknown as { servers: { name: string; state: string; tools: { name: string }[] }[] };
    expect(servers.servers.map((server) => server.name)).toEqual(["memoria"]);

    const result = (await client().callTool({ name: "agent", arguments: { task: "Ricorda che il mio colore preferito è il verde.", max_steps: 2, language: "it" } }, undefined, {
      timeout: 120_000,
    })) as CallToolResult;
    expect(result.isError, textOf(result)).toBeFalsy();
    const output = result.structuredContent as { answer: string; steps: unknown[]; finish_reason: string };
    expect(typeof output.answer).toBe("string");
    expect(Array.isArray(output.steps)).toBe(true);
    expect(output.finish_reason).toMatch(/^(answer|length|max_steps|loop|retries_exhausted|context_full)$/);

    const unknown = (await client().callTool({ name: "agent", arguments: { task: "x", servers: ["nessuno"] } })) as CallToolResult;
    expect(unknown.isError).toBe(true);
    expect(textOf(unknown)).toMatch(/unknown server "nessuno" \(configured servers: memoria\)/);
  });
}
