// `nesso-mcp serve --http` as a subprocess with the real engine on the tiny fixture model: the same
// checks as over stdio, the Host/Origin/token/body-size rejections, and ten concurrent calls against
// the queue bound.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { defineServeChecks, removeConfig, textOf, writeMemoryConfig } from "./acceptance.js";
import { initializeBody, postHeaders, rawRequest } from "./http-client.js";
import { startHttpServe, type HttpServeProcess } from "./serve-process.js";

const token = "tøken-di-prova";

describe("serve over Streamable HTTP", () => {
  let server: HttpServeProcess;
  let client: Client;
  let configDir: string | undefined;

  beforeAll(async () => {
    const { configPath, dir } = writeMemoryConfig();
    configDir = dir;
    server = await startHttpServe(["--model", tinyCheckpoint("F32"), "--config", configPath, "--threads", "2", "--token", token, "--queue-limit", "9"]);
    client = new Client({ name: "http-acceptance", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  });

  afterAll(async () => {
    await client?.close();
    expect(await server?.stop()).toBe(0);
    removeConfig(configDir);
  });

  it("binds 127.0.0.1", () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  });

  defineServeChecks(() => client);

  it("rejects bad requests and keeps serving", async () => {
    const port = new URL(server.url).port;
    const authorized = { ...postHeaders, Authorization: `Bearer ${token}` };

    const foreignOrigin = await rawRequest(server.url, { headers: { ...authorized, Origin: "https://evil.example.com" }, body: initializeBody() });
    expect(foreignOrigin.status).toBe(403);
    const wrongHost = await rawRequest(server.url, { headers: { ...authorized, Host: `evil.example.com:${port}` }, body: initializeBody() });
    expect(wrongHost.status).toBe(403);
    const noToken = await rawRequest(server.url, { headers: { ...postHeaders }, body: initializeBody() });
    expect(noToken.status).toBe(401);
    const wrongToken = await rawRequest(server.url, { headers: { ...postHeaders, Authorization: "Bearer sbagliato" }, body: initializeBody() });
    expect(wrongToken.status).toBe(401);
    const oversized = await rawRequest(server.url, { headers: authorized, body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "ping", params: { pad: "x".repeat(2 * 1024 * 1024) } }) });
    expect(oversized.status).toBe(413);

    const result = (await client.callTool({ name: "generate", arguments: { prompt: "Sei ancora lì?", max_tokens: 3 } })) as CallToolResult;
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(server.stderr()).toMatch(/rejected HTTP POST \/mcp .* 403 Forbidden: Origin/);
  });

  it("completes ten concurrent calls in order and rejects the eleventh", async () => {
    const finished: number[] = [];
    const calls: Promise<CallToolResult>[] = [];
    for (let index = 0; index < 10; index++) {
      // Each call is sent once the server has reported progress for the previous one (so it arrived),
      // which makes the arrival order known. The first call is long enough for all others to queue.
      let markArrived!: () => void;
      const arrived = new Promise<void>((resolve) => (markArrived = resolve));
      const maxTokens = index === 0 ? 300 : 24;
      const call = client.callTool({ name: "generate", arguments: { prompt: `Richiesta numero ${index}`, max_tokens: maxTokens } }, undefined, {
        onprogress: () => markArrived(),
        timeout: 120_000,
      }) as Promise<CallToolResult>;
      calls.push(call.then((result) => (finished.push(index), result)));
      await arrived;
    }

    const eleventh = (await client.callTool({ name: "generate", arguments: { prompt: "Richiesta numero 10", max_tokens: 24 } })) as CallToolResult;
    expect(eleventh.isError).toBe(true);
    expect(textOf(eleventh)).toMatch(/\[BUSY\] generate: the server is busy \(1 request running and 9 waiting, the queue limit is 9\)/);

    const results = await Promise.all(calls);
    for (const result of results) expect(result.isError, textOf(result)).toBeFalsy();
    expect(finished).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
