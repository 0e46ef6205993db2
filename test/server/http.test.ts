// The Streamable HTTP front end in-process: sessions through the SDK client, the Host, Origin,
// token and body-size checks with raw requests, and the bounded FIFO under ten concurrent calls.
// A scripted stand-in provides the model's text; http-serve.test.ts repeats the path with the
// real engine in a subprocess.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";

import { startServer, type RunningServer, type StartServerOptions } from "../../src/server/index.js";
import type { LoadedModel } from "../../src/server/model-slot.js";
import { initializeBody, postHeaders, rawRequest } from "./http-client.js";
import { scriptedModel, type ScriptedModel } from "./scripted-model.js";

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function loaded(model: ScriptedModel): LoadedModel {
  return {
    chatModel: model,
    info: { path: "/models/scripted", config: {}, quantization: "none", contextSize: model.contextSize, threads: 1 },
    dispose: () => undefined,
  };
}

async function serve(options: StartServerOptions & { scripted?: ScriptedModel } = {}): Promise<RunningServer & { url: string }> {
  const model = options.scripted ?? scriptedModel({ reply: () => "pronto" });
  const server = await startServer({
    transport: "http",
    port: 0,
    queueHeartbeatMs: 0,
    env: {},
    ...options,
    dependencies: { loadModel: async () => loaded(model), createHost: () => undefined, runAgent: undefined },
  });
  cleanups.push(() => server.close());
  return server as RunningServer & { url: string };
}

async function connectClient(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: "http-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  cleanups.push(() => client.close());
  return client;
}

function textOf(result: CallToolResult): string {
  return result.content.map((block) => (block.type === "text" ? block.text : "")).join("");
}

describe("serve --http", () => {
  it("binds 127.0.0.1 and serves a session", async () => {
    const server = await serve();
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const client = await connectClient(server.url);
    expect((await client.listTools()).tools).toHaveLength(3);
    const result = (await client.callTool({ name: "generate", arguments: { prompt: "ciao" } })) as CallToolResult;
    expect(result.structuredContent).toMatchObject({ text: "pronto" });
  });

  it("rejects a foreign Host with 403", async () => {
    const server = await serve();
    const port = new URL(server.url).port;
    for (const host of ["evil.example.com", `evil.example.com:${port}`, "127.0.0.1:1", `192.168.1.20:${port}`]) {
      const response = await rawRequest(server.url, { headers: { ...postHeaders, Host: host }, body: initializeBody() });
      expect(response.status, host).toBe(403);
      expect(JSON.parse(response.body).error.message).toMatch(/Host header .* is not one this server accepts/);
    }
    const accepted = await rawRequest(server.url, { headers: { ...postHeaders, Host: `localhost:${port}` }, body: initializeBody() });
    expect(accepted.status).toBe(200);
  });

  it("rejects a foreign Origin with 403", async () => {
    const server = await serve();
    const port = new URL(server.url).port;
    const rejected = await rawRequest(server.url, { headers: { ...postHeaders, Origin: "http://evil.example.com" }, body: initializeBody() });
    expect(rejected.status).toBe(403);
    expect(JSON.parse(rejected.body).error.message).toMatch(/Origin "http:\/\/evil.example.com" is not allowed/);
    const rebound = await rawRequest(server.url, { headers: { ...postHeaders, Origin: `http://127.0.0.1.evil.example.com:${port}` }, body: initializeBody() });
    expect(rebound.status).toBe(403);
    const own = await rawRequest(server.url, { headers: { ...postHeaders, Origin: `http://127.0.0.1:${port}` }, body: initializeBody() });
    expect(own.status).toBe(200);
  });

  it("accepts an Origin from allowedOrigins", async () => {
    const server = await serve({ allowedOrigins: ["https://app.example"] });
    const response = await rawRequest(server.url, { headers: { ...postHeaders, Origin: "https://app.example" }, body: initializeBody() });
    expect(response.status).toBe(200);
  });

  it("requires the bearer token", async () => {
    const server = await serve({ token: "s3cret-tøken" });
    const missing = await rawRequest(server.url, { headers: { ...postHeaders }, body: initializeBody() });
    expect(missing.status).toBe(401);
    expect(missing.headers["www-authenticate"]).toBe('Bearer realm="nesso-mcp"');
    const wrong = await rawRequest(server.url, { headers: { ...postHeaders, Authorization: "Bearer wrong" }, body: initializeBody() });
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.body).error.message).toBe("Unauthorized: the bearer token is wrong");

    const client = await connectClient(server.url, { Authorization: "Bearer s3cret-tøken" });
    expect((await client.listTools()).tools).toHaveLength(3);
  });

  it("reads the token from NESSO_MCP_TOKEN", async () => {
    const server = await serve({ env: { NESSO_MCP_TOKEN: "from-env" } });
    const missing = await rawRequest(server.url, { headers: { ...postHeaders }, body: initializeBody() });
    expect(missing.status).toBe(401);
    const right = await rawRequest(server.url, { headers: { ...postHeaders, Authorization: "Bearer from-env" }, body: initializeBody() });
    expect(right.status).toBe(200);
  });

  it("rejects an oversized body with 413 and keeps serving", async () => {
    const server = await serve({ maxBodyBytes: 64 * 1024 });
    const client = await connectClient(server.url);
    const big = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: { padding: "è".repeat(40_000) } });
    const declared = await rawRequest(server.url, { headers: { ...postHeaders }, body: big });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body).error.message).toMatch(/must not exceed 65536 bytes/);

    const chunks = Array.from({ length: 20 }, () => Buffer.alloc(8 * 1024, "a"));
    const chunked = await rawRequest(server.url, { headers: { ...postHeaders, "Transfer-Encoding": "chunked" }, body: chunks });
    expect(chunked.status).toBe(413);

    const result = (await client.callTool({ name: "generate", arguments: { prompt: "ancora vivo?" } })) as CallToolResult;
    expect(result.structuredContent).toMatchObject({ text: "pronto" });
  });

  it("answers unknown sessions, paths and methods", async () => {
    const server = await serve();
    const unknownSession = await rawRequest(server.url, {
      headers: { ...postHeaders, "Mcp-Session-Id": "no-such-session", "Mcp-Protocol-Version": "2025-11-25" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }),
    });
    expect(unknownSession.status).toBe(404);
    const noSession = await rawRequest(server.url, { headers: { ...postHeaders }, body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }) });
    expect(noSession.status).toBe(400);
    const badJson = await rawRequest(server.url, { headers: { ...postHeaders }, body: "{not json" });
    expect(badJson.status).toBe(400);
    expect(JSON.parse(badJson.body).error.code).toBe(-32700);
    const otherPath = await rawRequest(server.url.replace("/mcp", "/other"), { headers: { ...postHeaders }, body: initializeBody() });
    expect(otherPath.status).toBe(404);
    const put = await rawRequest(server.url, { method: "PUT", headers: { ...postHeaders }, body: initializeBody() });
    expect(put.status).toBe(405);
    expect(put.headers.allow).toBe("POST, GET, DELETE");
  });

  it("closes the least recently used idle session when full", async () => {
    const server = await serve({ maxSessions: 2 });
    const first = await connectClient(server.url);
    await connectClient(server.url);
    const third = await connectClient(server.url);
    expect((await third.listTools()).tools).toHaveLength(3);
    await expect(first.listTools()).rejects.toThrow(/Session not found|404/);
  });

  it("completes ten concurrent calls in order and rejects the eleventh", async () => {
    const model = scriptedModel({
      reply: (prompt) => {
        const index = /richiesta (\d+)/.exec(prompt)?.[1];
        return `risposta ${index}`.padEnd(index === "0" ? 400 : 60, ".");
      },
      tokenDelayMs: 2,
    });
    const server = await serve({ scripted: model, queueLimit: 9, progressEveryTokens: 4 });
    const client = await connectClient(server.url);
    await client.callTool({ name: "generate", arguments: { prompt: "riscaldamento" } });

    const finished: number[] = [];
    const calls: Promise<CallToolResult>[] = [];
    for (let index = 0; index < 10; index++) {
      // Each call is sent once the server has reported progress for the previous one (so it arrived),
      // which makes the arrival order known. The first call is long enough for all others to queue.
      let markArrived!: () => void;
      const arrived = new Promise<void>((resolve) => (markArrived = resolve));
      const call = client.callTool({ name: "generate", arguments: { prompt: `richiesta ${index}` } }, undefined, {
        onprogress: () => markArrived(),
      }) as Promise<CallToolResult>;
      calls.push(call.then((result) => (finished.push(index), result)));
      await arrived;
    }

    const eleventh = (await client.callTool({ name: "generate", arguments: { prompt: "richiesta 10" } })) as CallToolResult;
    expect(eleventh.isError).toBe(true);
    expect(textOf(eleventh)).toMatch(/\[BUSY\].*1 request running and 9 waiting, the queue limit is 9/);

    const results = await Promise.all(calls);
    expect(finished).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    results.forEach((result, index) => expect(textOf(result)).toMatch(new RegExp(`^risposta ${index}\\.`)));
  });
});
