import { readFileSync } from "node:fs";

import { Template } from "@huggingface/jinja";
import { describe, expect, it } from "vitest";

import type { RegisteredTool } from "../../src/host/types.js";
import { compactSchema, shortenDescription, toChatToolDefinition } from "../../src/tool-calling/tool-definitions.js";

const registered: RegisteredTool = {
  name: "edit_file",
  server: "filesystem",
  originalName: "edit_file",
  title: "Edit File",
  description: "Make line-based edits to a text file. Each edit replaces exact line sequences. Returns a diff.",
  inputSchema: {
    $schema: "http://json-schema.org/draft-07/schema#",
    type: "object",
    title: "EditArgs",
    properties: {
      path: { type: "string", title: "Path" },
      title: { type: "string", description: "A property that happens to be called title." },
      edits: {
        type: "array",
        items: { type: "object", title: "Edit", properties: { oldText: { type: "string" }, newText: { type: "string" } } },
        examples: [[{ oldText: "a", newText: "b" }]],
      },
      mode: { type: "string", enum: ["title", "x"], default: "title" },
    },
    required: ["path", "edits", "title"],
  },
  outputSchema: { type: "object" },
  annotations: { readOnlyHint: false, destructiveHint: true },
};

describe("tool definitions", () => {
  it("drops schema metadata but keeps properties named title", () => {
    const compact = compactSchema(registered.inputSchema) as Record<string, any>;
    expect(compact.$schema).toBeUndefined();
    expect(compact.title).toBeUndefined();
    expect(compact.properties.path).toEqual({ type: "string" });
    expect(compact.properties.title).toEqual({ type: "string", description: "A property that happens to be called title." });
    expect(compact.properties.edits.items.title).toBeUndefined();
    expect(compact.properties.edits.examples).toBeUndefined();
    expect(compact.properties.mode).toEqual({ type: "string", enum: ["title", "x"], default: "title" });
    expect(compact.required).toEqual(["path", "edits", "title"]);
  });

  it("leaves the registered schema untouched", () => {
    toChatToolDefinition(registered);
    expect(registered.inputSchema.$schema).toBe("http://json-schema.org/draft-07/schema#");
  });

  it("builds the OpenAI function shape", () => {
    const definition = toChatToolDefinition(registered);
    expect(definition.type).toBe("function");
    expect(Object.keys(definition.function)).toEqual(["name", "description", "parameters"]);
    expect(definition.function.name).toBe("edit_file");
    expect(JSON.stringify(definition)).not.toContain("outputSchema");
    expect(JSON.stringify(definition)).not.toContain("destructiveHint");
  });

  it("keeps the full schema when not compacting", () => {
    expect(toChatToolDefinition(registered, { compact: false }).function.parameters).toBe(registered.inputSchema);
  });

  it("falls back to the title as description", () => {
    const definition = toChatToolDefinition({ ...registered, description: undefined });
    expect(definition.function.description).toBe("Edit File");
  });

  it("shortens descriptions to a sentence", () => {
    expect(shortenDescription(registered.description!, 200)).toBe("Make line-based edits to a text file.");
    expect(shortenDescription("Legge il file perché è utile 😀😀😀", 20)).toBe("Legge il file perch…");
    expect(shortenDescription("  whole text. More.  ")).toBe("whole text. More.");
  });

  it("renders through the Nesso chat template", () => {
    const template = new Template(readFileSync(new URL("../fixtures/nesso-chat-template.jinja", import.meta.url), "utf8"));
    const prompt = template.render({
      messages: [{ role: "user", content: "modifica città.txt" }],
      tools: [toChatToolDefinition(registered)],
      add_generation_prompt: true,
      bos_token: "<|begin_of_text|>",
    });
    expect(prompt).toContain('<tools>\n{"type": "function", "function": {"name": "edit_file", "description": "Make line-based edits');
    expect(prompt).toContain("<|im_start|>user\nmodifica città.txt<|im_end|>");
  });
});
