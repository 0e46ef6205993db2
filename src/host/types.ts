// Types the host layer shares with the agent loop and the server front end.

import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

/** A tool of a connected server under the name the model sees. */
export interface RegisteredTool {
  /** Name shown to the model: the server's name when unique, else `server__tool`; always [A-Za-z0-9_.-]{1,64}. */
  name: string;
  server: string;
  /** The tool's name on its server. */
  originalName: string;
  title?: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: {
    title?: string;
    readOnlyHint?: boolean;
    destructiveHint?: boolean;
    idempotentHint?: boolean;
    openWorldHint?: boolean;
  };
  /** The server's `approval` entry in mcp.json, when it has one. */
  approval?: "auto" | "ask" | "deny";
}

export interface CallToolOptions {
  signal?: AbortSignal;
  /** Called for each progress notification of the call. */
  onProgress?: (progress: { progress: number; total?: number; message?: string }) => void;
  /** Overrides the server's per-call timeout. */
  timeoutMs?: number;
}

/** What the agent loop needs from the host: the tool list and a way to call a tool. */
export interface ToolExecutor {
  listTools(): RegisteredTool[];
  /**
   * Calls a tool by its registered name. A failure the server reports (an `isError` result or a
   * JSON-RPC error) resolves as an `isError` result. The promise rejects with a NessoError only
   * when the call could not complete: unknown tool (INVALID_ARGUMENT), server crashed or
   * unreachable (SERVER), timeout (TIMEOUT) or abort (the signal's reason, or ABORTED).
   */
  callTool(name: string, args: Record<string, unknown>, options?: CallToolOptions): Promise<CallToolResult>;
}
