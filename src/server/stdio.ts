// The stdio front end: one MCP session over stdin/stdout. Messages go out through the stdout
// guard's wire, so nothing else can reach stdout; the session ends when stdin closes.

import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";

import { createLogger } from "../logger.js";
import { createNessoServer } from "./mcp-server.js";
import type { ServerRuntime } from "./runtime.js";
import { guardStdout } from "./stdout-guard.js";

const log = createLogger("server");

export interface StdioFrontEnd {
  /** Resolves when the session ended: stdin closed or close() was called. */
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

export async function startStdio(runtime: ServerRuntime): Promise<StdioFrontEnd> {
  const guard = guardStdout();
  const server = createNessoServer(runtime);
  const transport = new StdioServerTransport(process.stdin, guard.wire);

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      process.stdin.off("end", onEnd);
      await server.close().catch((error: unknown) => log.warn("closing the stdio session failed", error));
      resolveClosed();
    })();
    return closing;
  };
  // The SDK's transport does not watch for end of input; an MCP client closes stdin to stop the server.
  const onEnd = () => {
    log.info("stdin closed; stopping the stdio server");
    void close();
  };
  process.stdin.once("end", onEnd);
  transport.onerror = (error) => log.warn(`stdio transport: ${error.message}`);

  await server.connect(transport);
  server.server.onclose = () => void close();
  log.info("serving MCP over stdio");
  return { closed, close };
}
