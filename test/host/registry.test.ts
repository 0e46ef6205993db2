// Tool naming across servers and the include/exclude filters.

import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";

import { buildRegistry, maxToolNameLength, sanitizeToolName } from "../../src/host/registry.js";
import { filterTools } from "../../src/host/tool-filter.js";

function tool(name: string, extra: Partial<Tool> = {}): Tool {
  return { name, inputSchema: { type: "object" }, ...extra };
}

const validName = /^[A-Za-z0-9_.-]{1,64}$/;

describe("registry naming", () => {
  it("keeps unique names", () => {
    const tools = buildRegistry([
      { server: "files", tools: [tool("read_file"), tool("write_file")] },
      { server: "web", tools: [tool("fetch")] },
    ]);

    expect(tools.map((entry) => entry.name)).toEqual(["read_file", "write_file", "fetch"]);
    expect(tools.map((entry) => entry.server)).toEqual(["files", "files", "web"]);
  });

  it("prefixes every colliding name with its server", () => {
    const tools = buildRegistry([
      { server: "files", tools: [tool("search"), tool("read_file")] },
      { server: "web", tools: [tool("search")] },
      { server: "memory", tools: [tool("search")] },
    ]);

    expect(tools.map((entry) => entry.name)).toEqual(["files__search", "read_file", "web__search", "memory__search"]);
    expect(tools.map((entry) => entry.originalName)).toEqual(["search", "read_file", "search", "search"]);
  });

  it("sanitizes names to the allowed characters", () => {
    expect(sanitizeToolName("read file")).toBe("read_file");
    expect(sanitizeToolName("caffè/ordina")).toBe("caffe_ordina");
    expect(sanitizeToolName("città:più")).toBe("citta_piu");
    expect(sanitizeToolName("emoji😀tool")).toBe("emoji_tool");
    expect(sanitizeToolName("ok.name-1_2")).toBe("ok.name-1_2");
    expect(sanitizeToolName("")).toBe("tool");
  });

  it("sanitizes server names in prefixes", () => {
    const tools = buildRegistry([
      { server: "my server", tools: [tool("get")] },
      { server: "Caffè", tools: [tool("get")] },
    ]);

    expect(tools.map((entry) => entry.name)).toEqual(["my_server__get", "Caffe__get"]);
  });

  it("shortens long names with a stable hash", () => {
    const long = `${"a".repeat(40)}_${"b".repeat(40)}`;
    const first = sanitizeToolName(long);
    const second = sanitizeToolName(`${long}_other`);

    expect(first).toHaveLength(maxToolNameLength);
    expect(first).toMatch(validName);
    expect(first.startsWith("a".repeat(40))).toBe(true);
    expect(sanitizeToolName(long)).toBe(first);
    expect(second).not.toBe(first);
  });

  it("keeps names unique after sanitizing", () => {
    const tools = buildRegistry([{ server: "s", tools: [tool("a b"), tool("a_b"), tool("a/b")] }]);
    const names = tools.map((entry) => entry.name);

    expect(new Set(names).size).toBe(3);
    for (const name of names) expect(name).toMatch(validName);
    expect(names).toEqual(["s__a_b", "s__a_b_2", "s__a_b_3"]);
  });

  it("keeps every name valid for long server and tool names", () => {
    const server = "a-server-with-a-very-long-name-that-goes-on-and-on";
    const tools = buildRegistry([
      { server, tools: [tool("list_directory_with_sizes_and_more")] },
      { server: `${server}-2`, tools: [tool("list_directory_with_sizes_and_more")] },
    ]);

    expect(tools).toHaveLength(2);
    expect(tools[0].name).not.toBe(tools[1].name);
    for (const entry of tools) expect(entry.name).toMatch(validName);
  });

  it("copies tool metadata", () => {
    const [entry] = buildRegistry([
      {
        server: "files",
        approval: "auto",
        tools: [
          tool("read_text_file", {
            title: "Read",
            description: "Legge un file",
            outputSchema: { type: "object", properties: { content: { type: "string" } } },
            annotations: { readOnlyHint: true },
          }),
        ],
      },
    ]);

    expect(entry).toEqual({
      name: "read_text_file",
      server: "files",
      originalName: "read_text_file",
      title: "Read",
      description: "Legge un file",
      inputSchema: { type: "object" },
      outputSchema: { type: "object", properties: { content: { type: "string" } } },
      annotations: { readOnlyHint: true },
      approval: "auto",
    });
  });
});

describe("tool filters", () => {
  const tools = ["read_file", "read_text_file", "read_media_file", "write_file", "list_directory", "search.files"].map((name) => ({ name }));
  const names = (list: Array<{ name: string }>) => list.map((entry) => entry.name);

  it("keeps everything without filters", () => {
    expect(names(filterTools(tools))).toEqual(names(tools));
  });

  it("includes exact names and patterns", () => {
    expect(names(filterTools(tools, ["read_*", "list_directory"]))).toEqual(["read_file", "read_text_file", "read_media_file", "list_directory"]);
  });

  it("excludes after including", () => {
    expect(names(filterTools(tools, ["read_*"], ["read_media_file"]))).toEqual(["read_file", "read_text_file"]);
  });

  it("treats regex characters literally", () => {
    expect(names(filterTools(tools, ["search.files"]))).toEqual(["search.files"]);
    expect(names(filterTools(tools, ["search?files"]))).toEqual([]);
  });
});
