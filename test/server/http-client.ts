// Raw HTTP requests for the server's security tests: node:http lets a test set any Host header and
// stream a chunked body, which fetch does not.

import { request as httpRequest } from "node:http";

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface RawRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A string is sent with Content-Length; an array of chunks is sent chunked. */
  body?: string | Buffer[];
}

/**
 * Sends one request and resolves with the status, headers and body; a connection reset rejects.
 * Header values go out as Latin-1, the way Node writes them when the body is a Buffer.
 */
export function rawRequest(url: string, options: RawRequestOptions = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const request = httpRequest(
      { hostname: target.hostname, port: target.port, path: target.pathname, method: options.method ?? "POST", headers: options.headers, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") }));
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    if (Array.isArray(options.body)) {
      for (const chunk of options.body) request.write(chunk);
      request.end();
    } else {
      request.end(options.body === undefined ? undefined : Buffer.from(options.body, "utf8"));
    }
  });
}

/** Returns an initialize request body, as a client sends it first. */
export function initializeBody(id = 1): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    id,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw-test", version: "1.0.0" } },
  });
}

/** Headers a Streamable HTTP client sends with a POST. */
export const postHeaders = { "Content-Type": "application/json", Accept: "application/json, text/event-stream" } as const;
