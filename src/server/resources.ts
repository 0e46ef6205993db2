// The server's resources: nesso://model (the local model) and nesso://servers (the servers of
// mcp.json and their tools). Both are JSON and reflect the state at the time of the read.

import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { ServerRuntime } from "./runtime.js";

export const modelResourceUri = "nesso://model";
export const serversResourceUri = "nesso://servers";

export function registerResources(server: McpServer, runtime: ServerRuntime): void {
  server.registerResource(
    "model",
    modelResourceUri,
    {
      title: "Local model",
      description: "The local Nesso model: path, configuration summary, quantization, context size, threads, and whether it is loaded.",
      mimeType: "application/json",
    },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: "application/json", text: JSON.stringify(describeModel(runtime), null, 2) }] }),
  );

  server.registerResource(
    "servers",
    serversResourceUri,
    {
      title: "Connected MCP servers",
      description: "The MCP servers configured for the agent tool, their state, and the tools each one offers.",
      mimeType: "application/json",
    },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: "application/json", text: JSON.stringify(describeServers(runtime), null, 2) }] }),
  );
}

/** Builds the content of nesso://model. Before the first call that needs the model, it reports the state only. */
export function describeModel(runtime: ServerRuntime): Record<string, unknown> {
  const { models } = runtime;
  const info = models.info;
  if (info === undefined) {
    return {
      state: models.state,
      ...(models.lastError === undefined ? {} : { error: models.lastError.message }),
      note: "the model loads on the first call of generate, extract or agent",
    };
  }
  return {
    state: models.state,
    path: info.path,
    ...(info.repo === undefined ? {} : { repo: info.repo, commit: info.commit }),
    config: info.config,
    quantization: info.quantization,
    context_size: info.contextSize,
    threads: info.threads,
  };
}

/** Builds the content of nesso://servers. */
export function describeServers(runtime: ServerRuntime): Record<string, unknown> {
  const host = runtime.host;
  if (host === undefined) return { servers: [], note: "no mcp.json was given, so the agent tool has no tools" };
  const tools = host.listTools();
  return {
    servers: host.servers().map((status) => ({
      name: status.name,
      state: status.state,
      transport: status.transport,
      ...(status.serverInfo === undefined ? {} : { server_info: status.serverInfo }),
      ...(status.error === undefined ? {} : { error: status.error }),
      tools: tools
        .filter((tool) => tool.server === status.name)
        .map((tool) => ({ name: tool.name, ...(tool.description === undefined ? {} : { description: tool.description }) })),
    })),
  };
}
