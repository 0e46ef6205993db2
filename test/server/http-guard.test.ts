import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";

import { allowedHostHeaders, createRequestGuard } from "../../src/server/http-guard.js";

/** Builds a request with only the headers the guard reads, as Node's parser delivers them (Latin-1 strings). */
function request(headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}

describe("request guard", () => {
  const guard = createRequestGuard({ port: 6377, bindHost: "127.0.0.1", token: "tøken" });

  it("accepts a non-ASCII token in either encoding", () => {
    const latin1 = "Bearer tøken";
    const utf8 = Buffer.from("Bearer tøken", "utf8").toString("latin1");
    expect(guard(request({ host: "127.0.0.1:6377", authorization: latin1 }))).toBeUndefined();
    expect(guard(request({ host: "127.0.0.1:6377", authorization: utf8 }))).toBeUndefined();
    expect(guard(request({ host: "127.0.0.1:6377", authorization: "Bearer token" }))?.status).toBe(401);
  });

  it("rejects a missing Host header", () => {
    expect(guard(request({ authorization: "Bearer tøken" }))?.status).toBe(403);
  });

  it("checks the Host before the token", () => {
    expect(guard(request({ host: "evil.example.com:6377" }))?.status).toBe(403);
  });

  it("lists loopback names and the bound address", () => {
    expect([...allowedHostHeaders({ port: 8080, bindHost: "10.0.0.5" })].sort()).toEqual(["10.0.0.5:8080", "127.0.0.1:8080", "[::1]:8080", "localhost:8080"]);
    expect([...allowedHostHeaders({ port: 8080, bindHost: "0.0.0.0", allowedHosts: ["Nesso.Local"] })].sort()).toEqual([
      "127.0.0.1:8080",
      "[::1]:8080",
      "localhost:8080",
      "nesso.local:8080",
    ]);
    expect(allowedHostHeaders({ port: 80, bindHost: "::1" }).has("localhost")).toBe(true);
  });
});
