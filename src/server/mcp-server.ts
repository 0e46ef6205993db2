// Builds the MCP server object of one session: the agent, generate and extract tools and the
// nesso:// resources, all backed by the shared runtime.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";

import { registerResources } from "./resources.js";
import type { ServerRuntime } from "./runtime.js";
import { registerAgentTool } from "./tools/agent.js";
import { registerExtractTool } from "./tools/extract.js";
import { registerGenerateTool } from "./tools/generate.js";

const instructions =
  "nesso-mcp runs Nesso-0.4B-agentic, a small bilingual Italian/English model, on this machine with no network. " +
  "Use `agent` to hand it a short task that needs the tools of its own MCP servers (listed in nesso://servers), " +
  "`generate` for plain text, and `extract` for JSON that must match a schema. " +
  "Calls run one at a time; send a progress token to get progress while a call waits or runs.";

/** Creates an MCP server for one client session; every session shares `runtime`. */
export function createNessoServer(runtime: ServerRuntime): McpServer {
  const server = new McpServer(
    { name: "nesso-mcp", title: "Nesso local model", version: packageVersion() },
    { capabilities: { tools: { listChanged: false }, resources: { listChanged: false } }, instructions },
  );
  registerAgentTool(server, runtime);
  registerGenerateTool(server, runtime);
  registerExtractTool(server, runtime);
  registerResources(server, runtime);
  return server;
}

let cachedVersion: string | undefined;

/** The version of nesso-mcp's package.json, found upwards from this file (src/ or dist/src/). */
function packageVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const path = join(dir, "package.json");
    if (existsSync(path)) {
      const json = JSON.parse(readFileSync(path, "utf8")) as { name?: string; version?: string };
      if (json.name === "nesso-mcp" && typeof json.version === "string") return (cachedVersion = json.version);
    }
    const parent = dirname(dir);
    if (parent === dir) return (cachedVersion = "0.0.0");
    dir = parent;
  }
}
