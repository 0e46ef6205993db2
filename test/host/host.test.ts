// Host behaviour against the scripted stdio server: paging, list changes, filters, naming across
// servers, wire encoding, progress and timeouts, and the lifecycle rules of the Host object.

import { join } from "node:path";

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { DisposedError, NessoError } from "../../src/errors.js";
import type { ServerConfig, StdioServerConfig } from "../../src/host/config.js";
import { Host, type HostOptions } from "../../src/host/host.js";
import type { RegisteredTool } from "../../src/host/types.js";
import { makeTempDir, readLog } from "./helpers/processes.js";
import { writeScriptedServer } from "./helpers/scripted-server.js";

let temp: { path: string; remove: () => void };
let script: string;
let counter = 0;
const hosts: Host[] = [];

beforeAll(() => {
  temp = makeTempDir("host");
  script = writeScriptedServer(temp.path);
});

afterEach(async () => {
  await Promise.all(hosts.splice(0).map((host) => host.close()));
});

afterAll(() => temp.remove());

function scripted(name: string, extra: Partial<StdioServerConfig> = {}, env: Record<string, string> = {}): StdioServerConfig & { log: string } {
  const log = join(temp.path, `${name}-${++counter}.log`);
  return {
    name,
    type: "stdio",
    command: process.execPath,
    args: [script, "serve"],
    env: { SCRIPTED_LOG: log, ...env },
    disabled: false,
    ...extra,
    log,
  };
}

async function startHost(servers: ServerConfig[], options: HostOptions = {}): Promise<Host> {
  const host = new Host({ servers }, { stdinGraceMs: 500, termGraceMs: 500, ...options });
  hosts.push(host);
  await host.start();
  return host;
}

function textOf(result: { content: unknown }): string {
  const [first] = result.content as Array<{ type: string; text?: string }>;
  return first.text ?? "";
}

describe("tool lists", () => {
  it("follows tools/list pagination", async () => {
    const server = scripted("paged", {}, { PAGE_SIZE: "2" });
    const host = await startHost([server]);

    expect(host.listTools().map((tool) => tool.name)).toEqual(["echo", "raw_line", "sleep", "crash", "add_tool", "progress", "split_utf8", "fail_rpc", "reply_after_exit"]);
    const pages = readLog(server.log).filter((event) => event.event === "received" && event.method === "tools/list");
    expect(pages).toHaveLength(5);
    expect(pages.map((page) => (page.params as { cursor?: string } | undefined)?.cursor)).toEqual([undefined, "2", "4", "6", "8"]);
  });

  it("replaces the list on tools/list_changed", async () => {
    const host = await startHost([scripted("growing")]);
    const changes: RegisteredTool[][] = [];
    const changed = new Promise<void>((resolve) => {
      host.onToolsChanged((tools) => {
        changes.push(tools);
        resolve();
      });
    });

    await host.callTool("add_tool", { name: "nuovo_strumento" });
    await changed;

    expect(changes).toHaveLength(1);
    expect(changes[0].map((tool) => tool.name)).toContain("nuovo_strumento");
    expect(host.listTools()).toHaveLength(10);
    expect(host.servers()[0].toolCount).toBe(10);
  });

  it("applies includeTools and excludeTools", async () => {
    const host = await startHost([scripted("filtered", { includeTools: ["e*", "s*"], excludeTools: ["split_*"] })]);

    expect(host.listTools().map((tool) => tool.name)).toEqual(["echo", "sleep"]);
    await expect(host.callTool("crash", {})).rejects.toThrow('unknown tool "crash"');
  });

  it("prefixes colliding names with the server", async () => {
    const host = await startHost([scripted("alpha", { includeTools: ["echo", "sleep"] }), scripted("beta", { includeTools: ["echo"] })]);

    const names = host.listTools().map((tool) => tool.name);
    expect(names).toEqual(["alpha__echo", "sleep", "beta__echo"]);
    const beta = host.listTools().find((tool) => tool.name === "beta__echo");
    expect(beta?.server).toBe("beta");
    expect(beta?.originalName).toBe("echo");
    expect(textOf(await host.callTool("beta__echo", { text: "da beta" }))).toBe("echo: da beta");
  });

  it("carries the approval policy to registered tools", async () => {
    const host = await startHost([scripted("careful", { includeTools: ["echo"], approval: "ask" })]);

    expect(host.listTools()[0].approval).toBe("ask");
  });
});

describe("wire encoding", () => {
  it("escapes non-ASCII characters sent to servers", async () => {
    const host = await startHost([scripted("ascii")]);
    await host.callTool("echo", { text: "perché il caffè 😀" });

    const raw = textOf(await host.callTool("raw_line", { text: "perché il caffè 😀" }));
    expect(raw).toMatch(/^[\x20-\x7e]+$/);
    expect(raw).toContain("perch\\u00e9 il caff\\u00e8 \\ud83d\\ude00");
  });

  it("round-trips Italian text and emoji", async () => {
    const host = await startHost([scripted("roundtrip")]);

    expect(textOf(await host.callTool("echo", { text: "Città più bella: Napoli 🍕" }))).toBe("echo: Città più bella: Napoli 🍕");
  });

  it("decodes UTF-8 split across stdout chunks", async () => {
    const host = await startHost([scripted("trickle")]);

    const result = await host.callTool("split_utf8", { text: "Perché 😀 città è così" });
    expect(textOf(result)).toBe("Perché 😀 città è così");
  });
});

describe("progress and timeouts", () => {
  it("reports progress and resets the timeout", async () => {
    const host = await startHost([scripted("steady")]);
    const updates: number[] = [];

    // 6 steps of 100 ms take 600 ms, longer than the 250 ms timeout that progress keeps resetting.
    const result = await host.callTool("progress", { steps: 6, interval: 100 }, { timeoutMs: 250, onProgress: (update) => updates.push(update.progress) });

    expect(textOf(result)).toBe("done");
    expect(updates.slice(0, 5)).toEqual([1, 2, 3, 4, 5]);
  });

  it("enforces the hard limit despite progress", async () => {
    const host = await startHost([scripted("endless")], { maxCallMs: 400 });

    const error = await host.callTool("progress", { steps: 50, interval: 50 }, { timeoutMs: 200 }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(NessoError);
    expect((error as NessoError).code).toBe("TIMEOUT");
    expect((error as NessoError).message).toContain("hard limit of 400 ms");
  });

  it("returns JSON-RPC errors as isError results", async () => {
    const host = await startHost([scripted("strict")]);

    const result = await host.callTool("fail_rpc", {});
    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe('tools/call "fail_rpc" on server "strict" failed: MCP error -32602: Invalid params: the scripted server rejects every call');
  });
});

describe("host lifecycle", () => {
  it("rejects unknown tool names", async () => {
    const host = await startHost([scripted("known", { includeTools: ["echo"] })]);

    const error = await host.callTool("missing_tool", {}).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(NessoError);
    expect((error as NessoError).code).toBe("INVALID_ARGUMENT");
    expect((error as NessoError).message).toBe('tools/call: unknown tool "missing_tool" (available tools: echo)');
  });

  it("does not start disabled servers", async () => {
    const disabled = scripted("sleeping", { disabled: true });
    const host = await startHost([disabled, scripted("awake", { includeTools: ["echo"] })]);

    const [sleeping, awake] = host.servers();
    expect(sleeping.state).toBe("disabled");
    expect(sleeping.toolCount).toBe(0);
    expect(awake.state).toBe("ready");
    expect(readLog(disabled.log)).toEqual([]);
  });

  it("rejects a second start", async () => {
    const host = await startHost([scripted("once", { includeTools: ["echo"] })]);

    await expect(host.start()).rejects.toThrow("Host.start() was called twice");
  });

  it("rejects calls after close", async () => {
    const host = await startHost([scripted("closing", { includeTools: ["echo"] })]);
    await host.close();
    await host.close();

    await expect(host.callTool("echo", { text: "x" })).rejects.toBeInstanceOf(DisposedError);
    expect(host.servers()[0].state).toBe("closed");
    expect(host.listTools()).toEqual([]);
  });

  it("rejects a sampling handler added after start", async () => {
    const host = await startHost([scripted("late", { includeTools: ["echo"] })]);

    expect(() => host.setSamplingHandler(async () => ({ role: "assistant", model: "x", content: { type: "text", text: "" } }))).toThrow(
      "set the handler before start()",
    );
  });

  it("stops starting when aborted", async () => {
    const host = new Host({ servers: [scripted("aborted")] });
    hosts.push(host);
    const controller = new AbortController();
    controller.abort(new NessoError("ABORTED", "start cancelled by the test"));

    await expect(host.start({ signal: controller.signal })).rejects.toThrow("start cancelled by the test");
  });
});
