// The Streamable HTTP front end: one endpoint (/mcp) on 127.0.0.1 by default, requests checked by
// the guard (Host, Origin, token, body size), and one MCP session per client as the SDK's
// transport implements them.

import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";

import { NessoError } from "../errors.js";
import { createLogger } from "../logger.js";
import { createRequestGuard, readBody } from "./http-guard.js";
import { createNessoServer } from "./mcp-server.js";
import { serverDefaults } from "./options.js";
import type { ServerRuntime } from "./runtime.js";

const log = createLogger("server");

/** Path of the MCP endpoint. */
export const mcpPath = "/mcp";

export interface HttpOptions {
  /** TCP port; 0 picks a free one (default 6377). */
  port?: number;
  /** Address to bind (default 127.0.0.1). Binding anything but loopback exposes the model to the network. */
  host?: string;
  /** Bearer token required on every request; none means no authentication. */
  token?: string;
  /** Largest request body in bytes (default 1 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** Most sessions open at once (default 64); beyond it the least recently used idle session is closed. */
  maxSessions?: number;
  /** More Host names to accept besides loopback and the bound address. */
  allowedHosts?: string[];
  /** More Origins to accept besides the server's own. */
  allowedOrigins?: string[];
}

export interface HttpFrontEnd {
  /** The MCP endpoint, e.g. http://127.0.0.1:6377/mcp. */
  readonly url: string;
  /** Sessions open now. */
  sessionCount(): number;
  /** Closes every session and stops listening. Safe to call twice. */
  close(): Promise<void>;
}

interface Session {
  server: McpServer;
  transport: StreamableHTTPServerTransport;
  lastUsed: number;
  /**
   * POST requests of this session still open. The GET stream a client keeps open for
   * server-initiated messages does not count, so a session that only listens is idle.
   */
  openRequests: number;
}

export async function startHttp(runtime: ServerRuntime, options: HttpOptions = {}): Promise<HttpFrontEnd> {
  const bindHost = options.host ?? serverDefaults.host;
  const maxBodyBytes = options.maxBodyBytes ?? serverDefaults.maxBodyBytes;
  const maxSessions = options.maxSessions ?? serverDefaults.maxSessions;
  const sessions = new Map<string, Session>();
  let guard: ReturnType<typeof createRequestGuard> | undefined;

  const httpServer = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      log.error(`HTTP ${request.method} ${request.url} failed`, error);
      if (!response.headersSent) sendError(response, 500, -32603, "Internal error");
      else response.end();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    const rejection = guard!(request);
    if (rejection !== undefined) {
      log.warn(`rejected HTTP ${request.method} ${path} from ${request.socket.remoteAddress}: ${rejection.status} ${rejection.message}`);
      request.resume();
      sendError(response, rejection.status, -32000, rejection.message, rejection.headers);
      return;
    }
    if (path !== mcpPath) {
      request.resume();
      sendError(response, 404, -32000, `Not Found: the MCP endpoint is ${mcpPath}`);
      return;
    }
    if (request.method !== "POST" && request.method !== "GET" && request.method !== "DELETE") {
      request.resume();
      sendError(response, 405, -32000, `Method Not Allowed: ${mcpPath} accepts POST, GET and DELETE`, { Allow: "POST, GET, DELETE" });
      return;
    }

    let body: unknown;
    if (request.method === "POST") {
      const read = await readBody(request, maxBodyBytes);
      if (read.tooLarge) {
        log.warn(`rejected HTTP POST ${path} from ${request.socket.remoteAddress}: body larger than ${maxBodyBytes} bytes`);
        // The rest of the body is not read, so the connection cannot carry another request.
        sendError(response, 413, -32000, `Payload Too Large: the request body must not exceed ${maxBodyBytes} bytes`, { Connection: "close" });
        return;
      }
      try {
        body = JSON.parse(read.text);
      } catch {
        sendError(response, 400, -32700, "Parse error: the request body is not valid JSON");
        return;
      }
    }

    const sessionId = request.headers["mcp-session-id"];
    let session: Session | undefined;
    if (typeof sessionId === "string") {
      session = sessions.get(sessionId);
      if (session === undefined) {
        sendError(response, 404, -32001, "Session not found: it ended or the server restarted; send initialize again");
        return;
      }
    } else if (request.method === "POST" && containsInitialize(body)) {
      session = await openSession();
      if (session === undefined) {
        sendError(response, 503, -32000, `Service Unavailable: ${maxSessions} sessions are open and all are busy; retry later`, { "Retry-After": "5" });
        return;
      }
    } else {
      sendError(response, 400, -32000, "Bad Request: send the Mcp-Session-Id header of your session, or initialize first");
      return;
    }

    session.lastUsed = Date.now();
    if (request.method === "POST") {
      session.openRequests++;
      const current = session;
      response.once("close", () => {
        current.openRequests--;
        current.lastUsed = Date.now();
      });
    }
    await session.transport.handleRequest(request, response, body);
  }

  /** Creates a session for an initialize request, closing the least recently used idle one when full. */
  async function openSession(): Promise<Session | undefined> {
    if (sessions.size >= maxSessions) {
      const idle = [...sessions.entries()].filter(([, session]) => session.openRequests === 0).sort(([, a], [, b]) => a.lastUsed - b.lastUsed)[0];
      if (idle === undefined) return undefined;
      log.info(`closing idle session ${idle[0]} to make room (${maxSessions} sessions open)`);
      await closeSession(idle[0]);
    }
    const server = createNessoServer(runtime);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, session);
        log.info(`session ${id} started (${sessions.size} open)`);
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
        log.info(`session ${id} ended by the client`);
      },
    });
    const session: Session = { server, transport, lastUsed: Date.now(), openRequests: 0 };
    transport.onerror = (error) => log.debug(`HTTP transport: ${error.message}`);
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id !== undefined && sessions.get(id) === session) sessions.delete(id);
    };
    await server.connect(transport);
    return session;
  }

  async function closeSession(id: string): Promise<void> {
    const session = sessions.get(id);
    sessions.delete(id);
    await session?.server.close().catch((error: unknown) => log.warn(`closing session ${id} failed`, error));
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const port = options.port ?? serverDefaults.port;
      reject(
        new NessoError(
          "SERVER",
          `serve --http: listening on ${bindHost}:${port} failed (${error.code ?? error.message}); ${error.code === "EADDRINUSE" ? "choose another --port or stop the process using it" : "check --host and --port"}`,
          { cause: error },
        ),
      );
    };
    httpServer.once("error", onError);
    httpServer.listen(options.port ?? serverDefaults.port, bindHost, () => {
      httpServer.off("error", onError);
      resolve();
    });
  });
  const port = (httpServer.address() as AddressInfo).port;
  guard = createRequestGuard({ port, bindHost, token: options.token, allowedHosts: options.allowedHosts, allowedOrigins: options.allowedOrigins });
  const urlHost = bindHost === "0.0.0.0" || bindHost === "::" ? "127.0.0.1" : bindHost.includes(":") ? `[${bindHost}]` : bindHost;
  const url = `http://${urlHost}:${port}${mcpPath}`;
  log.info(`serving MCP over Streamable HTTP at ${url}${options.token === undefined ? "" : " (bearer token required)"}`);

  let closing: Promise<void> | undefined;
  return {
    url,
    sessionCount: () => sessions.size,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => httpServer.close(() => resolve()));
        await Promise.all([...sessions.keys()].map((id) => closeSession(id)));
        httpServer.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}

function containsInitialize(body: unknown): boolean {
  return Array.isArray(body) ? body.some((message) => isInitializeRequest(message)) : isInitializeRequest(body);
}

/** Sends a JSON-RPC error body with no id, as the SDK's transport does for HTTP-level errors. */
function sendError(response: ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null });
  response.writeHead(status, { "Content-Type": "application/json", ...headers });
  response.end(body);
}

/** Hosts that keep the server on this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127(\.\d{1,3}){3}$/.test(host);
}
