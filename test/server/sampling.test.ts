// Sampling for downstream servers: server-everything, connected through an mcp.json, sends
// sampling/createMessage from its trigger-sampling-request tool, and the local model generates the reply.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult, CreateMessageRequestParams } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Host, loadConfig } from "../../src/host/index.js";
import { startServer, type RunningServer } from "../../src/server/index.js";
import { samplingMessages } from "../../src/server/sampling.js";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { readJsonResource } from "./acceptance.js";

const require = createRequire(import.meta.url);

async function waitForTool(host: Host, originalName: string): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const tool = host.listTools().find((candidate) => candidate.originalName === originalName);
    if (tool !== undefined) return tool.name;
    if (Date.now() > deadline) throw new Error(`${originalName} did not appear; tools: ${host.listTools().map((candidate) => candidate.name).join(", ")}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("sampling for servers of mcp.json", () => {
  let dir: string;
  let host: Host;
  let server: RunningServer;
  let client: Client;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "nesso-sampling-"));
    const configPath = join(dir, "mcp.json");
    const everything = require.resolve("@modelcontextprotocol/server-everything/dist/index.js");
    writeFileSync(configPath, JSON.stringify({ mcpServers: { everything: { command: process.execPath, args: [everything, "stdio"] } } }));
    server = await startServer({
      transport: "http",
      port: 0,
      model: tinyCheckpoint("F32"),
      threads: 2,
      env: {},
      dependencies: {
        createHost: () => {
          host = new Host(loadConfig({ configPath }));
          return host;
        },
      },
    });
    client = new Client({ name: "sampling-test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url!)));
  });

  afterAll(async () => {
    await client?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers trigger-sampling-request with the local model", async () => {
    const toolName = await waitForTool(host, "trigger-sampling-request");
    const prompt = "Dimmi una parola in italiano: è facile?";
    const result = await host.callTool(toolName, { prompt, maxTokens: 8 });
    expect(result.isError).toBeFalsy();
    const text = (result.content as { type: string; text: string }[])[0].text;
    const sampled = JSON.parse(text.replace(/^LLM sampling result: \n/, "")) as { model: string; role: string; stopReason: string; content: { type: string; text: string } };
    expect(sampled).toMatchObject({ model: "nesso-0.4B-agentic", role: "assistant", content: { type: "text" } });
    expect(["maxTokens", "endTurn"]).toContain(sampled.stopReason);

    // The same request through the generate tool gives the same text: same template, sampler and seed.
    const direct = (await client.callTool({
      name: "generate",
      arguments: {
        messages: [
          { role: "system", content: "You are a helpful test server." },
          { role: "user", content: `Resource trigger-sampling-request context: ${prompt}` },
        ],
        max_tokens: 8,
        temperature: 0.7,
      },
    })) as CallToolResult;
    expect((direct.structuredContent as { text: string }).text).toBe(sampled.content.text);
  });

  it("reports the server in nesso://servers", async () => {
    const servers = (await readJsonResource(client, "nesso://servers")) as unknown as { servers: { name: string; state: string; tools: { name: string }[] }[] };
    expect(servers.servers).toHaveLength(1);
    expect(servers.servers[0]).toMatchObject({ name: "everything", state: "ready" });
    expect(servers.servers[0].tools.map((tool) => tool.name)).toContain("trigger-sampling-request");
  });
});

describe("samplingMessages", () => {
  it("puts the system prompt first and joins text blocks", () => {
    const params: CreateMessageRequestParams = {
      systemPrompt: "Sei un assistente.",
      maxTokens: 10,
      messages: [
        { role: "user", content: [{ type: "text", text: "Ciao" }, { type: "text", text: "come va? 😊" }] },
        { role: "assistant", content: { type: "text", text: "Bene." } },
      ],
    };
    expect(samplingMessages(params, "everything")).toEqual([
      { role: "system", content: "Sei un assistente." },
      { role: "user", content: "Ciao\ncome va? 😊" },
      { role: "assistant", content: "Bene." },
    ]);
  });

  it("rejects image content with the reason", () => {
    const params: CreateMessageRequestParams = {
      maxTokens: 10,
      messages: [{ role: "user", content: { type: "image", data: "AAAA", mimeType: "image/png" } }],
    };
    expect(() => samplingMessages(params, "everything")).toThrow(/message 0 has image content, but the local model reads text only/);
  });
});
