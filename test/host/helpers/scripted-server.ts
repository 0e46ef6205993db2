// A throwaway stdio MCP server written as plain JSON-RPC (no SDK), so tests can make it misbehave
// on purpose. The mode comes from argv[2]; events are appended as JSON lines to $SCRIPTED_LOG.
//
// Modes:
//   serve         handles initialize, tools/list (paged by $PAGE_SIZE) and tools/call
//   silent        reads stdin and never writes
//   garbage       writes non-JSON lines to stdout and never responds
//   exit-on-start writes to stderr and exits with code 2 before responding (so does any mode while
//                 the file named by $FAIL_FLAG exists)
//   grandchild    like serve, but first spawns a grandchild process (pid logged) that keeps running
//   stubborn      like grandchild, but server and grandchild ignore stdin EOF and SIGTERM
//
// Tools in serve modes: echo {text}, raw_line (returns the last raw request line as received),
// sleep {ms} (answers late; never when ms < 0), crash (stderr line, then exit 3), add_tool {name}
// (adds a tool and sends tools/list_changed), progress {steps} (progress notifications, then result),
// split_utf8 {text} (the response is written one byte at a time), fail_rpc (a JSON-RPC error),
// reply_after_exit (exits with code 0; a grandchild writes the answer 50 ms later).

import { writeFileSync } from "node:fs";
import { join } from "node:path";

const source = String.raw`
import { appendFileSync, existsSync } from "node:fs";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const mode = process.argv[2] ?? "serve";
const logFile = process.env.SCRIPTED_LOG;
const pageSize = Number(process.env.PAGE_SIZE ?? "100");
const log = (event) => { if (logFile) appendFileSync(logFile, JSON.stringify({ pid: process.pid, time: Date.now(), ...event }) + "\n"); };
const send = (message) => process.stdout.write(JSON.stringify(message) + "\n");

log({ event: "start", mode });

if (mode === "exit-on-start" || (process.env.FAIL_FLAG && existsSync(process.env.FAIL_FLAG))) {
  process.stderr.write("fatal: the scripted server cannot find its configuration\n");
  process.exit(2);
}
if (mode === "garbage") {
  process.stderr.write("garbage mode\n");
  for (let i = 0; i < 50; i++) process.stdout.write("this is not JSON-RPC, line " + i + "\n");
}
if (mode === "grandchild" || mode === "stubborn") {
  const keepAlive = mode === "stubborn" ? "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);" : "setInterval(() => {}, 1000);";
  const child = spawn(process.execPath, ["-e", keepAlive], { stdio: "ignore" });
  log({ event: "grandchild", grandchild: child.pid });
}
if (mode === "stubborn") {
  process.on("SIGTERM", () => log({ event: "ignored SIGTERM" }));
  setInterval(() => {}, 1000);
}

const tools = [
  { name: "echo", description: "Echoes text", inputSchema: { type: "object", properties: { text: { type: "string" } } } },
  { name: "raw_line", description: "Returns the raw request line", inputSchema: { type: "object" } },
  { name: "sleep", description: "Answers after ms", inputSchema: { type: "object", properties: { ms: { type: "number" } } } },
  { name: "crash", description: "Exits during the call", inputSchema: { type: "object" } },
  { name: "add_tool", description: "Adds a tool", inputSchema: { type: "object", properties: { name: { type: "string" } } } },
  { name: "progress", description: "Reports progress", inputSchema: { type: "object", properties: { steps: { type: "number" } } } },
  { name: "split_utf8", description: "Answers byte by byte", inputSchema: { type: "object", properties: { text: { type: "string" } } } },
  { name: "fail_rpc", description: "Answers with a JSON-RPC error", inputSchema: { type: "object" } },
  { name: "reply_after_exit", description: "Exits; a grandchild answers 50 ms later", inputSchema: { type: "object" } },
];
const text = (value) => ({ content: [{ type: "text", text: value }] });

let lastLine = "";
const lines = createInterface({ input: process.stdin });
lines.on("close", () => {
  log({ event: "stdin closed" });
  if (mode !== "stubborn") process.exit(0);
});
lines.on("line", (line) => {
  lastLine = line;
  const message = JSON.parse(line);
  log({ event: "received", method: message.method, id: message.id, params: message.params });
  if (mode === "silent" || mode === "garbage") return;
  if (message.method === "notifications/cancelled") return log({ event: "cancelled", requestId: message.params.requestId });
  if (message.id === undefined) return;

  const reply = (result) => send({ jsonrpc: "2.0", id: message.id, result });
  switch (message.method) {
    case "initialize":
      return reply({ protocolVersion: message.params.protocolVersion, capabilities: { tools: { listChanged: true } }, serverInfo: { name: "scripted", version: "1.0.0" } });
    case "ping":
      return reply({});
    case "tools/list": {
      const start = Number(message.params?.cursor ?? "0");
      const page = tools.slice(start, start + pageSize);
      const next = start + pageSize < tools.length ? String(start + pageSize) : undefined;
      return reply(next === undefined ? { tools: page } : { tools: page, nextCursor: next });
    }
    case "tools/call": {
      const { name, arguments: args = {} } = message.params;
      if (name === "echo") return reply(text("echo: " + args.text));
      if (name === "fail_rpc") return send({ jsonrpc: "2.0", id: message.id, error: { code: -32602, message: "Invalid params: the scripted server rejects every call" } });
      if (name === "raw_line") return reply(text(lastLine));
      if (name === "sleep") { if (args.ms >= 0) setTimeout(() => reply(text("slept")), args.ms); return; }
      if (name === "reply_after_exit") {
        // A grandchild that shares stdout writes the reply after this process has exited.
        const line = JSON.stringify({ jsonrpc: "2.0", id: message.id, result: text("last words") }) + "\n";
        spawn("sh", ["-c", 'sleep 0.05; printf "%s" "$REPLY_LINE"'], { stdio: ["ignore", "inherit", "ignore"], env: { ...process.env, REPLY_LINE: line } });
        process.exit(0);
      }
      if (name === "crash") { process.stderr.write("about to crash: simulated failure\n"); process.exit(3); }
      if (name === "add_tool") {
        tools.push({ name: args.name, description: "added", inputSchema: { type: "object" } });
        reply(text("added"));
        return send({ jsonrpc: "2.0", method: "notifications/tools/list_changed" });
      }
      if (name === "progress") {
        const token = message.params._meta?.progressToken;
        let step = 0;
        const timer = setInterval(() => {
          step++;
          if (token !== undefined) send({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: token, progress: step, total: args.steps } });
          if (step === args.steps) { clearInterval(timer); setTimeout(() => reply(text("done")), 20); }
        }, args.interval ?? 50);
        return;
      }
      if (name === "split_utf8") {
        const bytes = Buffer.from(JSON.stringify({ jsonrpc: "2.0", id: message.id, result: text(args.text) }) + "\n");
        let index = 0;
        const timer = setInterval(() => {
          process.stdout.write(bytes.subarray(index, index + 1));
          index++;
          if (index === bytes.length) clearInterval(timer);
        }, 1);
        return;
      }
      return send({ jsonrpc: "2.0", id: message.id, error: { code: -32602, message: "Unknown tool: " + name } });
    }
    default:
      return send({ jsonrpc: "2.0", id: message.id, error: { code: -32601, message: "Method not found" } });
  }
});
`;

/** Writes the scripted server into `dir` and returns its path. */
export function writeScriptedServer(dir: string): string {
  const path = join(dir, "scripted-server.mjs");
  writeFileSync(path, source);
  return path;
}
