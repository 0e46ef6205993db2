#!/usr/bin/env node
// Entry point of the bundled fetch server: `node dist/servers/fetch/main.js [options]` speaks MCP
// over stdin and stdout. Diagnostics go to stderr, because stdout carries the protocol.

import { parseArgs } from "node:util";

import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";

import { createFetchServer, defaultFetchServerOptions } from "./server.js";

const usage = `Usage: node dist/servers/fetch/main.js [options]

An MCP server over stdio with one tool, "fetch": URL to markdown or raw text, in chunks.

Options:
  --max-bytes N      bytes of a response body read at most (default ${defaultFetchServerOptions.maxBytes})
  --timeout-ms N     time limit of one request, in milliseconds (default ${defaultFetchServerOptions.timeoutMs})
  --max-length N     characters per call when the caller gives no max_length (default ${defaultFetchServerOptions.defaultMaxLength})
  --user-agent TEXT  User-Agent header (default "${defaultFetchServerOptions.userAgent}")
  -h, --help         show this help
`;

function positiveInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number <= 0) {
    process.stderr.write(`nesso-mcp-fetch: --${name} must be a positive integer, got "${value}"\n\n${usage}`);
    process.exit(2);
  }
  return number;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        "max-bytes": { type: "string" },
        "timeout-ms": { type: "string" },
        "max-length": { type: "string" },
        "user-agent": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    process.stderr.write(`nesso-mcp-fetch: ${(error as Error).message}\n\n${usage}`);
    process.exit(2);
  }
  if (values.help === true) {
    process.stderr.write(usage);
    return;
  }

  const server = createFetchServer({
    maxBytes: positiveInteger("max-bytes", values["max-bytes"]),
    timeoutMs: positiveInteger("timeout-ms", values["timeout-ms"]),
    defaultMaxLength: positiveInteger("max-length", values["max-length"]),
    userAgent: values["user-agent"],
  });
  await server.connect(new StdioServerTransport());
  process.stderr.write("nesso-mcp-fetch: serving MCP on stdio\n");
}

main().catch((error: unknown) => {
  process.stderr.write(`nesso-mcp-fetch: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
