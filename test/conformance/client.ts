// The client program that `conformance client --command` starts: it connects nesso-mcp's host to the
// conformance test server at argv[2] and does what the scenario in MCP_CONFORMANCE_SCENARIO
// expects. Exit code 0 means the client side finished; the conformance CLI judges the checks.

import { Host, parseConfig } from "../../src/host/index.js";

const url = process.argv[2];
const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? "";
if (url === undefined) {
  process.stderr.write("usage: client.ts <server url> (with MCP_CONFORMANCE_SCENARIO set)\n");
  process.exit(2);
}

const config = parseConfig(JSON.stringify({ mcpServers: { conformance: { type: "http", url } } }), { env: {} });
const host = new Host(config, { roots: [], startTimeoutMs: 20_000, callTimeoutMs: 20_000 });
// Accept every form with no values of our own, so the SDK fills in the schema's defaults.
host.setElicitationHandler(async () => ({ action: "accept", content: {} }));

/** Calls the tool the conformance server registered under `originalName`. */
async function callTool(originalName: string, args: Record<string, unknown>): Promise<void> {
  const tool = host.listTools().find((candidate) => candidate.originalName === originalName);
  if (tool === undefined) throw new Error(`the conformance server offers no tool ${originalName}; it offers ${host.listTools().map((candidate) => candidate.originalName).join(", ") || "none"}`);
  const result = await host.callTool(tool.name, args);
  process.stderr.write(`${originalName}: ${JSON.stringify(result)}\n`);
}

try {
  const [status] = await host.start();
  if (status?.state !== "ready") throw new Error(`connecting to ${url} failed: ${status?.error ?? "no status"}`);

  switch (scenario) {
    case "initialize":
      break;
    case "tools_call":
      await callTool("add_numbers", { a: 2, b: 3 });
      break;
    case "sse-retry":
      await callTool("test_reconnection", {});
      break;
    case "elicitation-sep1034-client-defaults":
      await callTool("test_client_elicitation_defaults", {});
      break;
    default:
      throw new Error(`scenario "${scenario}" is not handled by this client`);
  }
} catch (error) {
  process.stderr.write(`conformance client: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
} finally {
  await host.close();
}
