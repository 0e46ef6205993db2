// The host against real MCP servers from npm over stdio: filesystem, memory and everything, plus
// an entry that goes through `npx -y` like the example mcp.json.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import type { CreateMessageRequestParams } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import type { StdioServerConfig } from "../../src/host/config.js";
import { Host, type HostOptions } from "../../src/host/host.js";
import { everythingEntry, filesystemEntry, groupMembers, isRunning, makeTempDir, memoryEntry, repoRoot, waitFor } from "./helpers/processes.js";

let temp: { path: string; remove: () => void };
const hosts: Host[] = [];

beforeAll(() => {
  temp = makeTempDir("servers");
});

afterEach(async () => {
  await Promise.all(hosts.splice(0).map((host) => host.close()));
});

afterAll(() => temp.remove());

function nodeServer(name: string, entry: string, args: string[] = [], env: Record<string, string> = {}): StdioServerConfig {
  return { name, type: "stdio", command: process.execPath, args: [entry, ...args], env, disabled: false };
}

async function startHost(servers: StdioServerConfig[], options: HostOptions = {}, setup?: (host: Host) => void): Promise<Host> {
  const host = new Host({ servers }, options);
  hosts.push(host);
  setup?.(host);
  const statuses = await host.start();
  for (const status of statuses) expect(status.error).toBeUndefined();
  return host;
}

function textOf(result: { content: unknown }): string {
  return (result.content as Array<{ type: string; text?: string }>).map((part) => part.text ?? "").join("\n");
}

describe("filesystem server", () => {
  it("lists, reads and writes in an allowed directory", async () => {
    const dir = join(temp.path, "files");
    await import("node:fs/promises").then((fs) => fs.mkdir(dir, { recursive: true }));
    writeFileSync(join(dir, "caffè.txt"), "Perché no? Un caffè ☕ e un cornetto 🥐\n");
    // Without `roots: false` the host's roots (the working directory) would replace the argument.
    const host = await startHost([{ ...nodeServer("filesystem", filesystemEntry, [dir]), roots: false }]);

    expect(host.listTools().map((tool) => tool.name)).toEqual(
      expect.arrayContaining(["read_text_file", "write_file", "list_directory", "list_allowed_directories"]),
    );

    const listing = await host.callTool("list_directory", { path: dir });
    expect(textOf(listing)).toContain("[FILE] caffè.txt");

    const read = await host.callTool("read_text_file", { path: join(dir, "caffè.txt") });
    expect(read.isError).toBeFalsy();
    expect(textOf(read)).toContain("Perché no? Un caffè ☕ e un cornetto 🥐");

    const written = await host.callTool("write_file", { path: join(dir, "città.md"), content: "# Città\nNapoli è bella 😀\n" });
    expect(written.isError).toBeFalsy();
    expect(readFileSync(join(dir, "città.md"), "utf8")).toBe("# Città\nNapoli è bella 😀\n");
  });

  it("takes its allowed directory from the host's roots", async () => {
    const dir = join(temp.path, "rooted");
    await import("node:fs/promises").then((fs) => fs.mkdir(dir, { recursive: true }));
    const host = await startHost([nodeServer("filesystem", filesystemEntry)], { roots: [dir] });

    // The server requests roots after initialize, so the list may arrive a moment later.
    let allowed = "";
    for (let attempt = 0; attempt < 100 && !allowed.includes(dir); attempt++) {
      allowed = textOf(await host.callTool("list_allowed_directories", {}));
      if (!allowed.includes(dir)) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(allowed).toContain(dir);
  });

  it("reports tool errors as isError results", async () => {
    const dir = join(temp.path, "denied");
    await import("node:fs/promises").then((fs) => fs.mkdir(dir, { recursive: true }));
    const host = await startHost([{ ...nodeServer("filesystem", filesystemEntry), roots: [dir] }]);

    const result = await host.callTool("read_text_file", { path: "/etc/passwd" });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain("Access denied");
  });
});

describe("memory server", () => {
  it("stores entities in MEMORY_FILE_PATH", async () => {
    const memoryFile = join(temp.path, "memory.jsonl");
    const host = await startHost([nodeServer("memory", memoryEntry, [], { MEMORY_FILE_PATH: memoryFile })]);

    const created = await host.callTool("create_entities", {
      entities: [{ name: "Giulia", entityType: "persona", observations: ["vive a Torino", "ama il caffè ☕"] }],
    });
    expect(created.isError).toBeFalsy();

    const found = await host.callTool("search_nodes", { query: "Giulia" });
    expect(textOf(found)).toContain("ama il caffè ☕");
    expect(existsSync(memoryFile)).toBe(true);
    expect(readFileSync(memoryFile, "utf8")).toContain("vive a Torino");
  });
});

describe("everything server over stdio", () => {
  it("calls echo, get-sum and structured content", async () => {
    const host = await startHost([nodeServer("everything", everythingEntry, ["stdio"])]);

    expect(textOf(await host.callTool("echo", { message: "Ciao, mondo! 🌍" }))).toBe("Echo: Ciao, mondo! 🌍");
    expect(textOf(await host.callTool("get-sum", { a: 19, b: 23 }))).toContain("42");

    const structured = await host.callTool("get-structured-content", { location: "Chicago" });
    expect(structured.structuredContent).toMatchObject({ temperature: expect.any(Number), conditions: expect.any(String), humidity: expect.any(Number) });
    const schema = host.listTools().find((tool) => tool.name === "get-structured-content")?.outputSchema;
    expect(schema).toMatchObject({ type: "object", required: expect.arrayContaining(["temperature", "conditions", "humidity"]) });
  });

  it("forwards progress of a long-running operation", async () => {
    const host = await startHost([nodeServer("everything", everythingEntry, ["stdio"])]);
    const updates: Array<{ progress: number; total?: number }> = [];

    const result = await host.callTool("trigger-long-running-operation", { duration: 1, steps: 4 }, { onProgress: (update) => updates.push(update) });

    expect(textOf(result)).toContain("Long running operation completed");
    // The last notification can arrive after the result over stdio (SDK 1.32.2), so only the first ones are checked.
    expect(updates.length).toBeGreaterThanOrEqual(3);
    expect(updates.slice(0, 3)).toEqual([
      { progress: 1, total: 4, message: undefined },
      { progress: 2, total: 4, message: undefined },
      { progress: 3, total: 4, message: undefined },
    ]);
  });

  it("answers sampling requests through the handler", async () => {
    const requests: CreateMessageRequestParams[] = [];
    const host = await startHost([nodeServer("everything", everythingEntry, ["stdio"])], {}, (created) => {
      created.setSamplingHandler(async (params, context) => {
        requests.push(params);
        expect(context.server).toBe("everything");
        return { role: "assistant", model: "nesso-0.4b-test", content: { type: "text", text: "Risposta locale: sì 👍" } };
      });
    });

    // Tools that depend on client capabilities appear after initialize, through list_changed.
    expect(await waitFor(() => host.listTools().some((tool) => tool.name === "trigger-sampling-request"), 5000)).toBe(true);
    const result = await host.callTool("trigger-sampling-request", { prompt: "Dimmi ciao", maxTokens: 20 });

    expect(textOf(result)).toContain("Risposta locale: sì 👍");
    expect(requests).toHaveLength(1);
    expect(JSON.stringify(requests[0].messages)).toContain("Dimmi ciao");
  });

  it("declares the working directory as a root", async () => {
    const host = await startHost([nodeServer("everything", everythingEntry, ["stdio"])], { roots: [temp.path] });

    expect(await waitFor(() => host.listTools().some((tool) => tool.name === "get-roots-list"), 5000)).toBe(true);
    expect(host.listTools().some((tool) => tool.name === "trigger-sampling-request")).toBe(false);
    const result = await host.callTool("get-roots-list", {});
    expect(textOf(result)).toContain(`file://${temp.path}`);
  });
});

describe("npx command resolution", () => {
  it("starts a server through npx -y and ends its process group", async () => {
    const memoryFile = join(temp.path, "npx-memory.jsonl");
    const config: StdioServerConfig = {
      name: "memory",
      type: "stdio",
      command: "npx",
      args: ["-y", "@modelcontextprotocol/server-memory"],
      env: { MEMORY_FILE_PATH: memoryFile },
      cwd: repoRoot,
      disabled: false,
    };
    const host = await startHost([config]);
    const pgid = host.servers()[0].pid!;
    const members = groupMembers(pgid);

    // npx runs the server as a child in the same process group.
    expect(members.length).toBeGreaterThanOrEqual(2);
    expect(host.listTools().map((tool) => tool.name)).toContain("read_graph");
    expect((await host.callTool("read_graph", {})).isError).toBeFalsy();

    await host.close();
    for (const pid of members) expect(isRunning(pid)).toBe(false);
    expect(groupMembers(pgid)).toEqual([]);
  });
});
