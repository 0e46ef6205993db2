// The server's tools and resources through a real MCP client over an in-memory transport, with a
// scripted stand-in for the model's text. The subprocess tests drive the real engine.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult, Progress } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";

import { NessoError } from "../../src/errors.js";
import { createNessoServer } from "../../src/server/mcp-server.js";
import type { LoadedModel } from "../../src/server/model-slot.js";
import { ServerRuntime, type RuntimeDependencies, type RuntimeOptions } from "../../src/server/runtime.js";
import { readJsonResource } from "./acceptance.js";
import { scriptedModel, type ScriptedModel } from "./scripted-model.js";

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function loaded(model: ScriptedModel): LoadedModel {
  return {
    chatModel: model,
    info: { path: "/models/scripted", config: { hidden_size: 64 }, quantization: "none (float32 weights)", contextSize: model.contextSize, threads: 1 },
    dispose: () => undefined,
  };
}

async function connect(dependencies: Partial<RuntimeDependencies> & { model?: ScriptedModel }, options: RuntimeOptions = {}) {
  const model = dependencies.model ?? scriptedModel({ reply: () => "ok" });
  const runtime = new ServerRuntime({ loadModel: async () => loaded(model), ...dependencies }, { queueHeartbeatMs: 0, ...options });
  const server = createNessoServer(runtime);
  const client = new Client({ name: "test", version: "1.0.0" });
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  await client.connect(clientTransport);
  cleanups.push(async () => {
    await client.close();
    await server.close();
    await runtime.close();
  });
  return { client, runtime, model };
}

function textOf(result: CallToolResult): string {
  return result.content.map((block) => (block.type === "text" ? block.text : "")).join("");
}

describe("tools/list", () => {
  it("lists agent, generate and extract with schemas", async () => {
    const { client } = await connect({});
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual(["agent", "extract", "generate"]);
    for (const tool of tools) {
      expect(tool.description?.length).toBeGreaterThan(80);
      expect(tool.inputSchema.type).toBe("object");
      expect(tool.outputSchema?.type).toBe("object");
      expect(tool.annotations?.title).toBeTruthy();
    }
    const generate = tools.find((tool) => tool.name === "generate")!;
    expect(Object.keys(generate.inputSchema.properties ?? {})).toEqual(["prompt", "messages", "max_tokens", "temperature", "stop", "raw"]);
    expect(generate.annotations?.readOnlyHint).toBe(true);
  });

  it("answers before the model has loaded", async () => {
    let loads = 0;
    const { client, runtime } = await connect({
      loadModel: () => {
        loads++;
        return new Promise<LoadedModel>(() => undefined);
      },
    });
    const { tools } = await client.listTools();
    expect(tools).toHaveLength(3);
    expect(loads).toBe(0);
    expect(runtime.models.state).toBe("not loaded");
  });
});

describe("generate tool", () => {
  it("returns Italian and emoji text unchanged", async () => {
    const reply = "Città più bella: Perugia 🇮🇹 — sì, è così.";
    const model = scriptedModel({ reply: () => reply });
    const { client } = await connect({ model });
    const result = (await client.callTool({ name: "generate", arguments: { prompt: "Qual è la città più bella?" } })) as CallToolResult;
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toBe(reply);
    expect(result.structuredContent).toMatchObject({ text: reply, finish_reason: "stop", generated_tokens: [...reply].length });
    expect(model.prompts[0]).toContain("Qual è la città più bella?");
  });

  it("honours max_tokens and stop", async () => {
    const model = scriptedModel({ reply: () => "uno due tre quattro" });
    const { client } = await connect({ model });
    const limited = (await client.callTool({ name: "generate", arguments: { prompt: "conta", max_tokens: 3 } })) as CallToolResult;
    expect(limited.structuredContent).toMatchObject({ text: "uno", finish_reason: "length" });
    const stopped = (await client.callTool({ name: "generate", arguments: { prompt: "conta", stop: [" tre"] } })) as CallToolResult;
    expect(stopped.structuredContent).toMatchObject({ text: "uno due", finish_reason: "stop" });
  });

  it("passes a raw prompt without the template", async () => {
    const model = scriptedModel({ reply: () => "x" });
    const { client } = await connect({ model });
    await client.callTool({ name: "generate", arguments: { prompt: "<|im_start|>user\nciao", raw: true } });
    expect(model.prompts[0]).toBe("<|im_start|>user\nciao");
  });

  it("rejects prompt and messages together", async () => {
    const { client } = await connect({});
    const result = (await client.callTool({
      name: "generate",
      arguments: { prompt: "a", messages: [{ role: "user", content: "b" }] },
    })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/exactly one of prompt .* or messages/);
  });

  it("reports invalid arguments as a tool error", async () => {
    const { client } = await connect({});
    const result = (await client.callTool({ name: "generate", arguments: { prompt: "a", max_tokens: -4 } })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/max_tokens/);
    const next = (await client.callTool({ name: "generate", arguments: { prompt: "a" } })) as CallToolResult;
    expect(next.isError).toBeFalsy();
  });

  it("sends strictly increasing progress", async () => {
    const model = scriptedModel({ reply: () => "abcdefghijklmnopqrstuvwxyz0123456789".repeat(2) });
    const { client } = await connect({ model }, { progressEveryTokens: 8 });
    const received: Progress[] = [];
    await client.callTool({ name: "generate", arguments: { prompt: "alfabeto" } }, undefined, { onprogress: (progress) => received.push(progress) });
    expect(received.length).toBeGreaterThanOrEqual(7);
    for (let index = 1; index < received.length; index++) expect(received[index].progress).toBeGreaterThan(received[index - 1].progress);
    expect(received.some((progress) => /generated 16 of at most 256 tokens/.test(progress.message ?? ""))).toBe(true);
  });

  it("stops on cancellation and keeps serving", async () => {
    const model = scriptedModel({ reply: (_prompt, call) => (call === 0 ? "z".repeat(10_000) : "dopo"), tokenDelayMs: 1 });
    const { client } = await connect({ model });
    const controller = new AbortController();
    const started = Date.now();
    const cancelled = client.callTool({ name: "generate", arguments: { prompt: "lungo", max_tokens: 10_000 } }, undefined, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("user cancelled")), 100);
    await expect(cancelled).rejects.toThrow(/user cancelled/);
    const after = (await client.callTool({ name: "generate", arguments: { prompt: "ancora" } })) as CallToolResult;
    expect(after.structuredContent).toMatchObject({ text: "dopo" });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("answers a full queue with BUSY at once", async () => {
    const model = scriptedModel({ reply: () => "lento".repeat(40), tokenDelayMs: 2 });
    const { client } = await connect({ model }, { queueLimit: 1 });
    const first = client.callTool({ name: "generate", arguments: { prompt: "1" } });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = client.callTool({ name: "generate", arguments: { prompt: "2" } });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = Date.now();
    const third = (await client.callTool({ name: "generate", arguments: { prompt: "3" } })) as CallToolResult;
    expect(Date.now() - started).toBeLessThan(100);
    expect(third.isError).toBe(true);
    expect(textOf(third)).toMatch(/\[BUSY\] generate: the server is busy/);
    expect(((await first) as CallToolResult).isError).toBeFalsy();
    expect(((await second) as CallToolResult).isError).toBeFalsy();
  });

  it("ends a request at the time limit", async () => {
    const model = scriptedModel({ reply: () => "z".repeat(5_000), tokenDelayMs: 1 });
    const { client } = await connect({ model }, { requestTimeoutMs: 150 });
    const result = (await client.callTool({ name: "generate", arguments: { prompt: "lungo", max_tokens: 5_000 } })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/\[TIMEOUT\] generate timed out after 150 ms/);
  });

  it("reports a missing model with the pull command", async () => {
    let attempts = 0;
    const { client, runtime } = await connect({
      loadModel: async () => {
        attempts++;
        throw new NessoError("MODEL_NOT_FOUND", "model mlx-community/nesso-0.4B-agentic-mlx is not in the Hugging Face cache; download it with: nesso-mcp pull mlx-community/nesso-0.4B-agentic-mlx");
      },
    });
    const result = (await client.callTool({ name: "generate", arguments: { prompt: "ciao" } })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/\[MODEL_NOT_FOUND\].*nesso-mcp pull mlx-community\/nesso-0.4B-agentic-mlx/);
    expect(runtime.models.state).toBe("failed");

    await client.callTool({ name: "generate", arguments: { prompt: "ancora" } });
    expect(attempts).toBe(2);
  });

  it("loads the model once for concurrent calls", async () => {
    let loads = 0;
    const model = scriptedModel({ reply: () => "ok" });
    const { client } = await connect({
      loadModel: async () => {
        loads++;
        await new Promise((resolve) => setTimeout(resolve, 50));
        return loaded(model);
      },
    });
    const results = await Promise.all([1, 2, 3].map((index) => client.callTool({ name: "generate", arguments: { prompt: String(index) } })));
    expect(results.every((result) => !(result as CallToolResult).isError)).toBe(true);
    expect(loads).toBe(1);
  });
});

describe("extract tool", () => {
  const schema = {
    type: "object",
    properties: { città: { type: "string" }, abitanti: { type: "integer" } },
    required: ["città", "abitanti"],
    additionalProperties: false,
  };

  it("returns JSON valid for the schema", async () => {
    const model = scriptedModel({ reply: () => '```json\n{"città": "Perugia", "abitanti": 162000}\n```' });
    const { client } = await connect({ model });
    const result = (await client.callTool({ name: "extract", arguments: { text: "Perugia ha 162.000 abitanti.", schema } })) as CallToolResult;
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ data: { città: "Perugia", abitanti: 162000 }, attempts: 1 });
    expect(model.prompts[0]).toContain('"abitanti":{"type":"integer"}');
  });

  it("retries with the violations", async () => {
    const replies = ['{"città": "Perugia", "abitanti": "tanti"}', '{"città": "Perugia", "abitanti": 162000}'];
    const model = scriptedModel({ reply: (_prompt, call) => replies[call] });
    const { client } = await connect({ model });
    const result = (await client.callTool({ name: "extract", arguments: { text: "Perugia ha 162.000 abitanti.", schema } })) as CallToolResult;
    expect(result.structuredContent).toEqual({ data: { città: "Perugia", abitanti: 162000 }, attempts: 2 });
    expect(model.prompts[1]).toContain('"abitanti" must be integer');
  });

  it("says when no attempt validates", async () => {
    const model = scriptedModel({ reply: () => "Non lo so." });
    const { client } = await connect({ model });
    const result = (await client.callTool({ name: "extract", arguments: { text: "?", schema, max_attempts: 2 } })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/did not produce JSON that validates against the schema in 2 attempts/);
    expect(textOf(result)).toMatch(/attempt 1: the reply is not JSON/);
    expect(model.prompts).toHaveLength(2);
  });

  it("rejects a schema ajv cannot compile", async () => {
    const model = scriptedModel({ reply: () => "{}" });
    const { client } = await connect({ model });
    const result = (await client.callTool({ name: "extract", arguments: { text: "x", schema: { type: "object", properties: { a: { type: "nonsense" } } } } })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/the JSON Schema in "schema" is invalid/);
    expect(model.prompts).toHaveLength(0);
  });
});

describe("resources", () => {
  it("describes the model before and after loading", async () => {
    const { client } = await connect({});
    const before = await readJsonResource(client, "nesso://model");
    expect(before.state).toBe("not loaded");
    await client.callTool({ name: "generate", arguments: { prompt: "ciao" } });
    const after = await readJsonResource(client, "nesso://model");
    expect(after).toMatchObject({ state: "ready", path: "/models/scripted", context_size: 4096, threads: 1, quantization: "none (float32 weights)" });
  });

  it("lists both resources", async () => {
    const { client } = await connect({});
    const { resources } = await client.listResources();
    expect(resources.map((resource) => resource.uri).sort()).toEqual(["nesso://model", "nesso://servers"]);
    const servers = await readJsonResource(client, "nesso://servers");
    expect(servers.servers).toEqual([]);
  });
});
