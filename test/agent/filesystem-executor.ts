// A ToolExecutor over the real @modelcontextprotocol/server-filesystem, spawned with the SDK's
// stdio client, so budget and selection tests see the server's real 14 tool schemas.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

import type { CallToolOptions, RegisteredTool, ToolExecutor } from "../../src/host/types.js";

const serverEntry = fileURLToPath(
  new URL("../../node_modules/@modelcontextprotocol/server-filesystem/dist/index.js", import.meta.url),
);

export interface FilesystemExecutor extends ToolExecutor {
  /** The temporary directory the server may access. */
  readonly root: string;
  readonly calls: Array<{ name: string; args: Record<string, unknown> }>;
  close(): Promise<void>;
}

/** Starts the filesystem server on a fresh temporary directory. */
export async function startFilesystemExecutor(): Promise<FilesystemExecutor> {
  const root = mkdtempSync(join(tmpdir(), "nesso-agent-fs-"));
  const client = new Client({ name: "nesso-mcp-agent-test", version: "0.0.0" });
  const transport = new StdioClientTransport({ command: process.execPath, args: [serverEntry, root], stderr: "pipe" });
  await client.connect(transport);

  const listed = await client.listTools();
  const tools: RegisteredTool[] = listed.tools.map((tool) => ({
    name: tool.name,
    server: "filesystem",
    originalName: tool.name,
    title: tool.title,
    description: tool.description,
    inputSchema: tool.inputSchema as Record<string, unknown>,
    outputSchema: tool.outputSchema as Record<string, unknown> | undefined,
    annotations: tool.annotations,
  }));
  const calls: Array<{ name: string; args: Record<string, unknown> }> = [];
  let closed = false;

  return {
    root,
    calls,
    listTools: () => tools,
    async callTool(name: string, args: Record<string, unknown>, options: CallToolOptions = {}): Promise<CallToolResult> {
      calls.push({ name, args });
      const result = await client.callTool({ name, arguments: args }, undefined, { signal: options.signal });
      return result as CallToolResult;
    },
    async close() {
      if (closed) return;
      closed = true;
      await client.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
