// The host against remote servers on 127.0.0.1: server-everything over Streamable HTTP and legacy
// SSE, session loss after a restart, and a spec-conforming SDK server that returns 404 for a
// forgotten session.

import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { connect } from "node:net";

import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, afterEach, describe, expect, it } from "vitest";

import type { HttpServerConfig } from "../../src/host/config.js";
import { Host } from "../../src/host/host.js";
import { everythingEntry, freePort, waitFor } from "./helpers/processes.js";

const hosts: Host[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  await Promise.all(hosts.splice(0).map((host) => host.close()));
});

afterAll(async () => {
  await Promise.all(children.map(stopChild));
});

/** Starts server-everything in an HTTP mode on `port` and waits until it accepts connections. */
async function startEverything(mode: "streamableHttp" | "sse", port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [everythingEntry, mode], { env: { ...process.env, PORT: String(port) }, stdio: ["ignore", "ignore", "pipe"] });
  children.push(child);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const listening = await waitForPort(port, 15_000);
  if (!listening) throw new Error(`server-everything ${mode} did not listen on port ${port}: ${stderr}`);
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

async function waitForPort(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

function remote(name: string, url: string, extra: Partial<HttpServerConfig> = {}): HttpServerConfig {
  return { name, type: "http", url, headers: {}, sseFallback: true, disabled: false, ...extra };
}

async function startHost(servers: HttpServerConfig[]): Promise<Host> {
  const host = new Host({ servers });
  hosts.push(host);
  await host.start();
  return host;
}

function textOf(result: { content: unknown }): string {
  return (result.content as Array<{ type: string; text?: string }>).map((part) => part.text ?? "").join("\n");
}

describe("everything server over Streamable HTTP", () => {
  it("calls tools with progress and structured content", async () => {
    const port = await freePort();
    await startEverything("streamableHttp", port);
    const host = await startHost([remote("everything", `http://127.0.0.1:${port}/mcp`)]);

    const [status] = host.servers();
    expect(status.state).toBe("ready");
    expect(status.transport).toBe("http");
    expect(textOf(await host.callTool("echo", { message: "Buongiorno ☀️" }))).toBe("Echo: Buongiorno ☀️");
    expect(textOf(await host.callTool("get-sum", { a: 2, b: 40 }))).toContain("42");

    const structured = await host.callTool("get-structured-content", { location: "New York" });
    expect(structured.structuredContent).toMatchObject({ temperature: expect.any(Number), conditions: expect.any(String) });

    const updates: number[] = [];
    const result = await host.callTool("trigger-long-running-operation", { duration: 1, steps: 4 }, { onProgress: (update) => updates.push(update.progress) });
    expect(textOf(result)).toContain("Long running operation completed");
    expect(updates.slice(0, 3)).toEqual([1, 2, 3]);
  });

  it("initializes again after the server restarts", async () => {
    const port = await freePort();
    const first = await startEverything("streamableHttp", port);
    const host = await startHost([remote("everything", `http://127.0.0.1:${port}/mcp`, { type: "http", sseFallback: false })]);
    expect(textOf(await host.callTool("echo", { message: "prima" }))).toBe("Echo: prima");

    await stopChild(first);
    await startEverything("streamableHttp", port);

    expect(textOf(await host.callTool("echo", { message: "dopo" }))).toBe("Echo: dopo");
    expect(host.servers()[0].state).toBe("ready");
  });
});

describe("legacy SSE", () => {
  it("falls back to SSE when the entry has no type", async () => {
    const port = await freePort();
    await startEverything("sse", port);
    const host = await startHost([remote("legacy", `http://127.0.0.1:${port}/sse`)]);

    const [status] = host.servers();
    expect(status.state).toBe("ready");
    expect(status.transport).toBe("sse");
    expect(textOf(await host.callTool("echo", { message: "vecchio stile" }))).toBe("Echo: vecchio stile");
  });

  it("uses SSE directly for type sse", async () => {
    const port = await freePort();
    await startEverything("sse", port);
    const host = await startHost([remote("legacy", `http://127.0.0.1:${port}/sse`, { type: "sse", sseFallback: false })]);

    expect(host.servers()[0].transport).toBe("sse");
    expect(textOf(await host.callTool("get-sum", { a: 1, b: 1 }))).toContain("2");
  });

  it("does not fall back for type http", async () => {
    const port = await freePort();
    await startEverything("sse", port);
    const host = await startHost([remote("strict", `http://127.0.0.1:${port}/sse`, { type: "http", sseFallback: false })]);

    const [status] = host.servers();
    expect(status.state).toBe("failed");
    expect(status.error).toContain('server "strict" failed to start: HTTP 404');
  });
});

describe("remote failures", () => {
  it("reports a server that is not listening", async () => {
    const port = await freePort();
    const host = await startHost([remote("offline", `http://127.0.0.1:${port}/mcp`)]);

    const [status] = host.servers();
    expect(status.state).toBe("failed");
    expect(status.error).toContain('server "offline" failed to start');
    expect(status.error).toContain("ECONNREFUSED");
  });
});

describe("session loss", () => {
  let http: HttpServer | undefined;

  afterEach(async () => {
    http?.closeAllConnections();
    await new Promise<void>((resolve) => (http === undefined ? resolve() : http.close(() => resolve())));
    http = undefined;
  });

  it("initializes again when the server answers 404 for the session", async () => {
    // A spec-conforming server: one SDK transport per session, 404 for an unknown session id.
    const sessions = new Map<string, StreamableHTTPServerTransport>();
    let initializations = 0;
    http = createHttpServer(async (request, response) => {
      const sessionId = request.headers["mcp-session-id"];
      if (typeof sessionId === "string") {
        const transport = sessions.get(sessionId);
        if (transport === undefined) {
          response.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null }));
          return;
        }
        await transport.handleRequest(request, response);
        return;
      }
      initializations++;
      const server = new Server({ name: "forgetful", version: "1.0.0" }, { capabilities: { tools: {} } });
      server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [{ name: "saluta", inputSchema: { type: "object", properties: { nome: { type: "string" } } } }] }));
      server.setRequestHandler(CallToolRequestSchema, (call) => ({ content: [{ type: "text", text: `Ciao, ${String(call.params.arguments?.nome)}!` }] }));
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void sessions.set(id, transport),
      });
      await server.connect(transport);
      await transport.handleRequest(request, response);
    });
    const port = await freePort();
    await new Promise<void>((resolve) => http!.listen(port, "127.0.0.1", resolve));

    const host = await startHost([remote("forgetful", `http://127.0.0.1:${port}/mcp`, { type: "http", sseFallback: false })]);
    expect(textOf(await host.callTool("saluta", { nome: "Luca" }))).toBe("Ciao, Luca!");
    expect(initializations).toBe(1);

    for (const transport of sessions.values()) await transport.close();
    sessions.clear();

    expect(textOf(await host.callTool("saluta", { nome: "Martina" }))).toBe("Ciao, Martina!");
    expect(initializations).toBe(2);
    expect(await waitFor(() => sessions.size === 1)).toBe(true);
  });
});
