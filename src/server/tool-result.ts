// Tool results of the server's tools. Failures are data: an `isError` result whose text the calling
// model can read and act on.

import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { RequestId } from "@modelcontextprotocol/sdk/types.js";
import { NessoError } from "../errors.js";
import { createLogger } from "../logger.js";

const log = createLogger("server");

/** Builds a successful result with `structuredContent` and the same data as text. */
export function structuredResult(data: Record<string, unknown>, text?: string): CallToolResult {
  return {
    content: [{ type: "text", text: text ?? JSON.stringify(data) }],
    structuredContent: data,
  };
}

/** Builds an `isError` result and logs it; `error` may be an exception or a message. */
export function errorResult(tool: string, error: unknown, requestId?: RequestId): CallToolResult {
  const text = `${tool} failed: ${describeError(error)}`;
  log.warn(requestId === undefined ? text : `request ${String(requestId)}: ${text}`);
  return {
    content: [{ type: "text", text }],
    isError: true,
  };
}

/** Formats the message of an error, with its NessoError code when it has one (e.g. `[BUSY] …`). */
export function describeError(error: unknown): string {
  if (error instanceof NessoError) return `[${error.code}] ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
