// Misbehaving stdio servers: each failure must produce a clear error and leave no process behind.

import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { NessoError } from "../../src/errors.js";
import { setLogSink } from "../../src/logger.js";
import type { StdioServerConfig } from "../../src/host/config.js";
import { Host, type HostOptions } from "../../src/host/host.js";
import { groupMembers, isRunning, makeTempDir, readLog, waitFor } from "./helpers/processes.js";
import { writeScriptedServer } from "./helpers/scripted-server.js";

let temp: { path: string; remove: () => void };
let script: string;
let counter = 0;
const hosts: Host[] = [];

beforeAll(() => {
  temp = makeTempDir("failures");
  script = writeScriptedServer(temp.path);
});

afterEach(async () => {
  await Promise.all(hosts.splice(0).map((host) => host.close()));
});

afterAll(() => temp.remove());

/** Creates a config for the scripted server in `mode`, with its own event log. */
function scripted(name: string, mode: string, env: Record<string, string> = {}): { config: StdioServerConfig; log: string } {
  const log = join(temp.path, `${name}-${++counter}.log`);
  const config: StdioServerConfig = {
    name,
    type: "stdio",
    command: process.execPath,
    args: [script, mode],
    env: { SCRIPTED_LOG: log, ...env },
    disabled: false,
  };
  return { config, log };
}

function makeHost(servers: StdioServerConfig[], options: HostOptions = {}): Host {
  const host = new Host({ servers }, { stdinGraceMs: 500, termGraceMs: 500, ...options });
  hosts.push(host);
  return host;
}

function startPids(log: string): number[] {
  return readLog(log).filter((event) => event.event === "start").map((event) => event.pid);
}

function grandchildPids(log: string): number[] {
  return readLog(log).filter((event) => event.event === "grandchild").map((event) => event.grandchild as number);
}

async function expectRejection(promise: Promise<unknown>): Promise<NessoError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(NessoError);
  return error as NessoError;
}

describe("stdio server failures", () => {
  it("reports a server that exits during a call", async () => {
    const { config, log } = scripted("crashy", "grandchild");
    const host = makeHost([config], { restart: { initialDelayMs: 60_000 } });
    await host.start();
    const [serverPid] = startPids(log);
    const [grandchildPid] = grandchildPids(log);
    expect(isRunning(grandchildPid)).toBe(true);

    const pending = host.callTool("sleep", { ms: -1 });
    const error = await expectRejection(host.callTool("crash", {}));
    expect(error.code).toBe("SERVER");
    expect(error.message).toContain('stopped during tools/call "crash" on server "crashy"');
    expect(error.message).toContain("exited with code 3");
    expect(error.message).toContain("about to crash: simulated failure");

    const inFlight = await expectRejection(pending);
    expect(inFlight.code).toBe("SERVER");
    expect(inFlight.message).toContain('tools/call "sleep"');

    expect(host.servers()[0].state).toBe("restarting");
    expect(await waitFor(() => !isRunning(serverPid) && !isRunning(grandchildPid))).toBe(true);
  });

  it("delivers a reply written after the exit", async () => {
    const { config, log } = scripted("brief", "serve");
    const host = makeHost([config], { restart: { initialDelayMs: 50 } });
    await host.start();

    const result = await host.callTool("reply_after_exit", {});
    expect(result.content).toEqual([{ type: "text", text: "last words" }]);
    expect(await waitFor(() => startPids(log).length === 2 && host.servers()[0].state === "ready")).toBe(true);
  });

  it("restarts a crashed server with backoff", async () => {
    const { config, log } = scripted("phoenix", "serve");
    const host = makeHost([config], { restart: { initialDelayMs: 200, maxAttempts: 3 } });
    await host.start();
    const crashedAt = Date.now();
    await expectRejection(host.callTool("crash", {}));

    // A call made while the server restarts waits for it.
    const result = await host.callTool("echo", { text: "di nuovo" });
    expect(result.content).toEqual([{ type: "text", text: "echo: di nuovo" }]);

    const status = host.servers()[0];
    expect(status.state).toBe("ready");
    expect(status.restarts).toBe(1);
    const pids = startPids(log);
    expect(pids).toHaveLength(2);
    expect(pids[1]).not.toBe(pids[0]);
    expect(status.pid).toBe(pids[1]);
    expect(Date.now() - crashedAt).toBeGreaterThanOrEqual(200);
  });

  it("gives up after the maximum restart attempts", async () => {
    const flag = join(temp.path, "fail-flag");
    const { config, log } = scripted("doomed", "serve", { FAIL_FLAG: flag });
    const host = makeHost([config], { restart: { initialDelayMs: 100, maxAttempts: 2 } });
    await host.start();
    writeFileSync(flag, "");
    const lines: string[] = [];
    const previousSink = setLogSink((line) => lines.push(line));
    try {
      await expectRejection(host.callTool("crash", {}));
      expect(await waitFor(() => host.servers()[0].state === "failed", 5000)).toBe(true);
    } finally {
      setLogSink(previousSink);
    }
    const status = host.servers()[0];
    expect(status.error).toContain("gave up after 2 restart attempts");
    expect(status.error).toContain("fatal: the scripted server cannot find its configuration");
    expect(startPids(log)).toHaveLength(3);
    expect(host.listTools()).toEqual([]);

    // The delays double: 100 ms before the first restart, 200 ms before the second. The host's
    // log states each delay, and the start times show that it was waited. Process startup adds a
    // varying amount on a loaded machine, so only lower bounds are checked.
    const delays = lines.flatMap((line) => [...line.matchAll(/"doomed" will restart in (\d+) ms/g)].map((match) => Number(match[1])));
    expect(delays).toEqual([100, 200]);
    const starts = readLog(log).filter((event) => event.event === "start");
    const times = starts.map((event) => event.time as number);
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(100);
    expect(times[2] - times[1]).toBeGreaterThanOrEqual(200);
    const error = await expectRejection(host.callTool("echo", { text: "x" }));
    expect(error.message).toContain("unknown tool");
  });

  it("times out a call that never gets an answer", async () => {
    const { config, log } = scripted("sloth", "serve");
    const host = makeHost([config]);
    await host.start();

    const error = await expectRejection(host.callTool("sleep", { ms: -1 }, { timeoutMs: 300 }));
    expect(error.code).toBe("TIMEOUT");
    expect(error.message).toContain('tools/call "sleep" on server "sloth" timed out after 300 ms');
    expect(error.message).toContain('"timeoutMs"');

    const call = readLog(log).find((event) => event.event === "received" && event.method === "tools/call");
    expect(await waitFor(() => readLog(log).some((event) => event.event === "cancelled" && event.requestId === call?.id))).toBe(true);

    const result = await host.callTool("echo", { text: "still alive" });
    expect(result.content).toEqual([{ type: "text", text: "echo: still alive" }]);
  });

  it("times out a server that never answers initialize", async () => {
    const { config, log } = scripted("mute", "silent");
    const host = makeHost([config], { startTimeoutMs: 500 });
    const [status] = await host.start();

    expect(status.state).toBe("failed");
    expect(status.error).toContain('server "mute" did not complete initialize and tools/list within 500 ms');
    const [pid] = startPids(log);
    expect(await waitFor(() => !isRunning(pid))).toBe(true);
  });

  it("fails fast on a server that writes garbage to stdout", async () => {
    const { config, log } = scripted("noisy", "garbage");
    const host = makeHost([config], { startTimeoutMs: 20_000 });
    const started = Date.now();
    const [status] = await host.start();

    expect(Date.now() - started).toBeLessThan(5000);
    expect(status.state).toBe("failed");
    expect(status.error).toContain("stdout lines that are not JSON-RPC messages");
    expect(status.error).toContain('"this is not JSON-RPC, line 0"');
    expect(status.error).toContain("a server must log to stderr");
    const [pid] = startPids(log);
    expect(await waitFor(() => !isRunning(pid))).toBe(true);
  });

  it("reports a command that does not exist and starts the others", async () => {
    const missing: StdioServerConfig = { name: "ghost", type: "stdio", command: "nesso-no-such-command", args: [], env: {}, disabled: false };
    const { config } = scripted("healthy", "serve");
    const host = makeHost([missing, config]);
    const [ghost, healthy] = await host.start();

    expect(ghost.state).toBe("failed");
    expect(ghost.error).toContain('server "ghost": command "nesso-no-such-command" was not found (ENOENT)');
    expect(ghost.error).toContain("PATH=");
    expect(healthy.state).toBe("ready");
    expect(healthy.toolCount).toBe(9);
  });

  it("shows stderr of a server that exits on start", async () => {
    const { config } = scripted("broken", "exit-on-start");
    const host = makeHost([config]);
    const [status] = await host.start();

    expect(status.state).toBe("failed");
    expect(status.error).toContain('server "broken" failed to start');
    expect(status.error).toContain("exited with code 2");
    expect(status.error).toContain("fatal: the scripted server cannot find its configuration");
    expect(status.stderrTail).toContain("fatal: the scripted server cannot find its configuration");
  });

  it("reports a working directory that does not exist", async () => {
    const { config } = scripted("lost", "serve");
    const host = makeHost([{ ...config, cwd: join(temp.path, "no-such-dir") }]);
    const [status] = await host.start();

    expect(status.state).toBe("failed");
    expect(status.error).toContain("no-such-dir does not exist");
    expect(status.error).toContain('"cwd"');
  });
});

describe("stdio server shutdown", () => {
  it("ends the whole process group on close", async () => {
    const { config, log } = scripted("family", "grandchild");
    const host = makeHost([config]);
    const [status] = await host.start();
    const pgid = status.pid!;
    const [grandchildPid] = grandchildPids(log);
    expect(groupMembers(pgid)).toContain(grandchildPid);

    await host.close();
    await host.close();

    expect(isRunning(pgid)).toBe(false);
    expect(isRunning(grandchildPid)).toBe(false);
    expect(groupMembers(pgid)).toEqual([]);
  });

  it("escalates to SIGKILL for a server that ignores SIGTERM", async () => {
    const { config, log } = scripted("stubborn", "stubborn");
    const host = makeHost([config], { stdinGraceMs: 200, termGraceMs: 300 });
    const [status] = await host.start();
    const pgid = status.pid!;
    const [grandchildPid] = grandchildPids(log);

    const started = Date.now();
    await host.close();

    expect(Date.now() - started).toBeLessThan(3000);
    expect(readLog(log).some((event) => event.event === "ignored SIGTERM")).toBe(true);
    expect(isRunning(pgid)).toBe(false);
    expect(isRunning(grandchildPid)).toBe(false);
    expect(groupMembers(pgid)).toEqual([]);
  });

  it("cancels an in-flight call through its AbortSignal", async () => {
    const { config, log } = scripted("patient", "serve");
    const host = makeHost([config]);
    await host.start();

    const controller = new AbortController();
    const pending = host.callTool("sleep", { ms: -1 }, { signal: controller.signal });
    setTimeout(() => controller.abort(new NessoError("ABORTED", "the user pressed Ctrl-C")), 100);
    const error = await expectRejection(pending);

    expect(error.message).toBe("the user pressed Ctrl-C");
    expect(await waitFor(() => readLog(log).some((event) => event.event === "cancelled"))).toBe(true);
  });

  it("ends a server that is still starting when the host closes", async () => {
    const { config, log } = scripted("slowstart", "silent");
    const host = makeHost([config], { startTimeoutMs: 20_000 });
    const starting = host.start();
    expect(await waitFor(() => startPids(log).length === 1)).toBe(true);

    await host.close();
    await expect(starting).rejects.toThrow("Host was used after dispose()");
    const [pid] = startPids(log);
    expect(isRunning(pid)).toBe(false);
  });

  it("fails pending calls when the host closes", async () => {
    const { config } = scripted("interrupted", "serve");
    const host = makeHost([config]);
    await host.start();

    const pending = host.callTool("sleep", { ms: -1 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await host.close();
    const error = await expectRejection(pending);

    expect(error.code).toBe("ABORTED");
    expect(error.message).toContain("host is closing");
  });
});
