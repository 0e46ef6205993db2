// The grammar compiler on the real tool schemas of the filesystem, memory, everything and fetch-mcp
// servers, listed live: every schema compiles without fallback, and random walks through each
// grammar produce arguments that JSON.parse and ajv accept.

import { beforeAll, describe, expect, it } from "vitest";
import { GrammarBuilder } from "../../src/tool-calling/grammar/ir.js";
import { JsonSchemaCompiler } from "../../src/tool-calling/grammar/json-schema.js";
import { ByteRecognizer } from "../../src/tool-calling/grammar/recognizer.js";
import { ToolCallGrammar } from "../../src/tool-calling/grammar/tool-call-grammar.js";
import { compileValue, createAjvDraft07, listServerTools, nessoVocabulary, randomWalk, seededRandom, type ServerTool } from "./grammar-helpers.js";

let serverTools: Record<string, ServerTool[]>;

beforeAll(async () => {
  serverTools = await listServerTools();
});

describe("grammars of real MCP server tools", () => {
  it("lists the expected servers and tools", () => {
    expect(serverTools.filesystem.length).toBe(14);
    expect(serverTools.memory.map((t) => t.name)).toContain("create_entities");
    expect(serverTools.everything.map((t) => t.name)).toContain("get-sum");
    expect(serverTools.fetch.map((t) => t.name)).toContain("fetch_url");
  });

  it("compiles every schema without dropping a keyword", () => {
    for (const [server, tools] of Object.entries(serverTools)) {
      for (const tool of tools) {
        const { compiler } = compileValue(tool.inputSchema);
        expect(compiler.dropped, `${server}/${tool.name}`).toEqual([]);
      }
    }
  });

  it("random walks produce arguments that validate", () => {
    const ajv = createAjvDraft07();
    const random = seededRandom(20_260_101);
    let walks = 0;
    for (const [server, tools] of Object.entries(serverTools)) {
      for (const tool of tools) {
        const validate = ajv.compile(tool.inputSchema);
        // Small caps keep the free-form parts short; the keyword tests cover the default caps.
        const { runtime } = compileValue(tool.inputSchema, { maxStringLength: 24, maxArrayItems: 4, maxObjectMembers: 4 });
        for (let i = 0; i < 25; i++) {
          const bytes = randomWalk(new ByteRecognizer(runtime), random);
          const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
          const value: unknown = JSON.parse(text);
          expect(validate(value), `${server}/${tool.name}: ${text} → ${ajv.errorsText(validate.errors)}`).toBe(true);
          walks++;
        }
      }
    }
    expect(walks).toBe(25 * Object.values(serverTools).flat().length);
  });

  it("walks with default caps stay valid UTF-8 JSON", () => {
    const ajv = createAjvDraft07();
    const random = seededRandom(7);
    const tool = serverTools.memory.find((t) => t.name === "create_entities")!;
    const validate = ajv.compile(tool.inputSchema);
    const { runtime } = compileValue(tool.inputSchema);
    for (let i = 0; i < 10; i++) {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(randomWalk(new ByteRecognizer(runtime), random, 200_000, 0.05));
      expect(validate(JSON.parse(text)), text).toBe(true);
    }
  });

  it("compiles the tool-call grammar of all 14 filesystem tools", () => {
    const vocabulary = nessoVocabulary();
    const started = performance.now();
    const grammar = ToolCallGrammar.compile({ tools: serverTools.filesystem, vocabulary });
    const elapsedMs = performance.now() - started;
    // Timing is reported, not asserted (the suite runs on shared cores).
    console.info(`tool-call grammar for 14 filesystem tools: ${elapsedMs.toFixed(1)} ms, ${grammar.runtime.grammar.ruleNames.length} rules`);
    expect(grammar.fallbacks).toEqual([]);
    expect(grammar.dropped).toEqual([]);
  });

  it("shares rules between tools in one builder", () => {
    const builder = new GrammarBuilder();
    const compiler = new JsonSchemaCompiler(builder);
    for (const tool of serverTools.filesystem) compiler.compile(tool.inputSchema);
    const shared = builder.ruleCount;
    let separate = 0;
    for (const tool of serverTools.filesystem) {
      const own = new GrammarBuilder();
      new JsonSchemaCompiler(own).compile(tool.inputSchema);
      separate += own.ruleCount;
    }
    expect(shared).toBeLessThan(separate);
  });
});
