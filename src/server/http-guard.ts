// Checks every HTTP request passes before it reaches the MCP transport: the Host and Origin headers
// (DNS-rebinding protection, 403), the bearer token (401) and the body size (413).

import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

/** A rejection: the HTTP status, a message for the JSON-RPC error body, and extra headers. */
export interface Rejection {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

export interface GuardOptions {
  /** Port the server listens on; Host headers must carry it. */
  port: number;
  /** Address the server binds; accepted as a Host name unless it is a wildcard (0.0.0.0, ::). */
  bindHost: string;
  /** More Host names (without port) to accept, e.g. a LAN name when binding 0.0.0.0. */
  allowedHosts?: string[];
  /** More Origins to accept, e.g. "https://app.example". */
  allowedOrigins?: string[];
  /** Bearer token every request must present; none means no authentication. */
  token?: string;
}

const loopbackNames = ["localhost", "127.0.0.1", "[::1]"];

/** Returns the Host header values (name:port) the server accepts. */
export function allowedHostHeaders(options: GuardOptions): Set<string> {
  const names = new Set(loopbackNames);
  const bind = options.bindHost.includes(":") && !options.bindHost.startsWith("[") ? `[${options.bindHost}]` : options.bindHost;
  if (bind !== "0.0.0.0" && bind !== "[::]") names.add(bind.toLowerCase());
  for (const name of options.allowedHosts ?? []) names.add(name.toLowerCase());
  const headers = new Set<string>();
  for (const name of names) {
    headers.add(`${name}:${options.port}`);
    // Browsers and clients omit the port when it is the scheme's default.
    if (options.port === 80) headers.add(name);
  }
  return headers;
}

/** Creates the request check; it returns a Rejection or undefined when the request may go on. */
export function createRequestGuard(options: GuardOptions): (request: IncomingMessage) => Rejection | undefined {
  const hosts = allowedHostHeaders(options);
  const origins = new Set<string>((options.allowedOrigins ?? []).map((origin) => origin.toLowerCase()));
  for (const host of hosts) {
    origins.add(`http://${host}`);
    origins.add(`https://${host}`);
  }
  const tokenDigest = options.token === undefined ? undefined : digest(options.token);

  return (request) => {
    const host = request.headers.host?.toLowerCase();
    if (host === undefined || !hosts.has(host)) {
      return { status: 403, message: `Forbidden: Host header ${JSON.stringify(request.headers.host ?? null)} is not one this server accepts (DNS-rebinding protection); connect through ${[...hosts][0]}` };
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !origins.has(origin.toLowerCase())) {
      return { status: 403, message: `Forbidden: Origin ${JSON.stringify(origin)} is not allowed (DNS-rebinding protection); only the server's own origin and its configured allowed origins may call it` };
    }
    if (tokenDigest !== undefined) {
      const presented = bearerToken(request.headers.authorization);
      if (presented === undefined || !presentedTokenMatches(presented, tokenDigest)) {
        return {
          status: 401,
          message: presented === undefined ? "Unauthorized: send the server's token as Authorization: Bearer <token>" : "Unauthorized: the bearer token is wrong",
          headers: { "WWW-Authenticate": 'Bearer realm="nesso-mcp"' },
        };
      }
    }
    return undefined;
  };
}

/** Extracts the token of an `Authorization: Bearer <token>` header, or returns undefined. */
function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}

/**
 * Compares a presented token with the configured one. Clients encode a non-ASCII token
 * differently: fetch (undici) sends Latin-1 bytes, while Node's http client sends UTF-8 when the
 * headers go out with a string body. Node decodes header bytes as Latin-1, so both readings are tried.
 */
function presentedTokenMatches(presented: string, expected: Buffer): boolean {
  const asUtf8 = Buffer.from(presented, "latin1").toString("utf8");
  const latin1Match = timingSafeEqual(digest(presented), expected);
  const utf8Match = timingSafeEqual(digest(asUtf8), expected);
  return latin1Match || utf8Match;
}

/** SHA-256 of the token, so the comparison takes the same time whatever the lengths. */
function digest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/**
 * Reads a request body of at most `maxBytes`. A declared Content-Length over the limit is rejected
 * before anything is read; a chunked body is rejected as soon as it passes the limit. After a
 * rejection the rest of the body is discarded, so the caller can still send its 413 response.
 */
export function readBody(request: IncomingMessage, maxBytes: number): Promise<{ tooLarge: true } | { tooLarge: false; text: string }> {
  const declared = Number(request.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) {
    request.resume();
    return Promise.resolve({ tooLarge: true });
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let rejected = false;
    request.on("data", (chunk: Buffer) => {
      if (rejected) return;
      received += chunk.byteLength;
      if (received > maxBytes) {
        rejected = true;
        chunks.length = 0;
        resolve({ tooLarge: true });
        return;
      }
      chunks.push(chunk);
    });
    request.once("end", () => {
      // Decoding the whole body at once keeps multi-byte UTF-8 characters split across chunks intact.
      if (!rejected) resolve({ tooLarge: false, text: Buffer.concat(chunks).toString("utf8") });
    });
    request.once("error", reject);
  });
}
