// `nesso-mcp serve`: nesso-mcp as an MCP server. stdio by default (stdout already guarded by
// main.ts), or Streamable HTTP with --http.

import { createLogger } from "../logger.js";
import { serverDefaults, startServer, tokenEnvironmentVariable } from "../server/index.js";
import { commonOptions, commonOptionsHelp, hostOptions, hostOptionsHelp, integerOption, modelOptions, modelOptionsHelp, parseCommand } from "./options.js";

const log = createLogger("cli");

const help = `Usage: nesso-mcp serve [options]

Serves the local model over MCP with the tools agent, generate and extract, so Claude Desktop,
Claude Code or an IDE can hand work to it. The model loads on the first call that needs it.

  --http                Serve Streamable HTTP instead of stdio
  --port N              HTTP port (default ${serverDefaults.port}; 0 picks a free one)
  --host H              HTTP address to bind (default ${serverDefaults.host})
  --token T             Bearer token HTTP clients must send (default: $${tokenEnvironmentVariable}; none when unset)
  --queue-limit N       Requests that may wait behind the running one (default ${serverDefaults.queueLimit})
  --timeout-ms N        Time limit of one request, queue wait included (default ${serverDefaults.requestTimeoutMs})
  --no-servers          Do not start the servers of mcp.json
${modelOptionsHelp}
${hostOptionsHelp}
${commonOptionsHelp}
`;

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseCommand("serve", argv, {
    ...commonOptions,
    ...modelOptions,
    ...hostOptions,
    http: { type: "boolean" },
    port: { type: "string" },
    host: { type: "string" },
    token: { type: "string" },
    "queue-limit": { type: "string" },
    "timeout-ms": { type: "string" },
    "no-servers": { type: "boolean" },
  });
  if (values.help) {
    // Help is for a person at a terminal, never for the stdio wire, so it goes to stderr.
    process.stderr.write(help);
    return 0;
  }

  if (!values.http) {
    const httpOnly = (["port", "host", "token"] as const).filter((name) => values[name] !== undefined);
    if (httpOnly.length > 0) log.warn(`${httpOnly.map((name) => `--${name}`).join(", ")} apply only with --http; serving stdio`);
  } else if (values.token === undefined && (process.env[tokenEnvironmentVariable] ?? "").trim() === "") {
    log.warn(`serving HTTP without a token: any local process can call the model; set --token or $${tokenEnvironmentVariable}`);
  }

  const server = await startServer({
    transport: values.http ? "http" : "stdio",
    port: integerOption(values.port, "port", 0, 65_535),
    host: values.host,
    token: values.token,
    queueLimit: integerOption(values["queue-limit"], "queue-limit", 0, 10_000),
    requestTimeoutMs: integerOption(values["timeout-ms"], "timeout-ms", 1),
    noServers: values["no-servers"] === true,
    configPath: values.config,
    model: values.model,
    revision: values.revision,
    threads: integerOption(values.threads, "threads", 1, 256),
    contextSize: integerOption(values["context-size"], "context-size", 16),
  });
  if (server.url !== undefined) process.stderr.write(`nesso-mcp serving MCP at ${server.url}\n`);

  const stop = () => {
    log.info("stopping on signal");
    void server.close();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await server.closed;
  process.off("SIGINT", stop);
  process.off("SIGTERM", stop);
  return 0;
}
