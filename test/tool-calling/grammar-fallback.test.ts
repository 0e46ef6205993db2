// Schemas the compiler cannot handle raise a clear error or warning and fall back, so they never
// crash or hang. Unsupported keywords are dropped with a record instead of loosening silently.

import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { LogLevel, getLogLevel, setLogLevel, setLogSink } from "../../src/logger.js";
import { GrammarBuildError } from "../../src/tool-calling/grammar/ir.js";
import { JsonOutputGrammar } from "../../src/tool-calling/grammar/json-output-grammar.js";
import { SchemaCompileError } from "../../src/tool-calling/grammar/json-schema.js";
import { ToolCallGrammar } from "../../src/tool-calling/grammar/tool-call-grammar.js";
import type { Vocabulary } from "../../src/tool-calling/grammar/vocabulary.js";
import { compileValue, matches, nessoVocabulary } from "./grammar-helpers.js";

let vocabulary: Vocabulary;
let restore: (() => void) | null = null;

function captureLogs(level = LogLevel.Warn): string[] {
  const lines: string[] = [];
  const previousSink = setLogSink((line) => lines.push(line));
  const previousLevel = getLogLevel();
  setLogLevel(level);
  restore = () => {
    setLogSink(previousSink);
    setLogLevel(previousLevel);
  };
  return lines;
}

beforeAll(() => {
  vocabulary = nessoVocabulary();
});

afterEach(() => {
  restore?.();
  restore = null;
});

const unusable: Array<{ name: string; schema: unknown; error: RegExp }> = [
  {
    name: "$ref to a missing definition",
    schema: { type: "object", properties: { a: { $ref: "#/$defs/missing" } } },
    error: /\$ref "#\/\$defs\/missing" does not resolve/,
  },
  {
    name: "$ref to another document",
    schema: { $ref: "https://example.com/schema.json" },
    error: /not a local reference/,
  },
  {
    name: "$ref to an anchor",
    schema: { $ref: "#node" },
    error: /anchors are not supported/,
  },
  {
    name: "$ref cycle without structure",
    schema: { $defs: { a: { $ref: "#/$defs/b" }, b: { $ref: "#/$defs/a" } }, $ref: "#/$defs/a" },
    error: /cannot match any input/,
  },
  {
    name: "anyOf that refers to itself first",
    schema: { anyOf: [{ $ref: "#" }, { type: "string" }] },
    error: /left-recursive/,
  },
  {
    name: "allOf cycle",
    schema: { $defs: { a: { allOf: [{ $ref: "#/$defs/a" }] } }, allOf: [{ $ref: "#/$defs/a" }] },
    error: /cycle/,
  },
  {
    name: "unsatisfiable integer range",
    schema: { type: "integer", minimum: 5, maximum: 3 },
    error: /no integer lies between minimum 5 and maximum 3/,
  },
  {
    name: "required property with schema false",
    schema: { type: "object", properties: { a: false }, required: ["a"] },
    error: /required property has the schema `false`/,
  },
  {
    name: "schema false",
    schema: false,
    error: /matches no value/,
  },
  {
    name: "not a schema",
    schema: 42,
    error: /expected a schema object or boolean/,
  },
  {
    name: "unknown type",
    schema: { type: "date" },
    error: /unknown type "date"/,
  },
  {
    name: "object nesting 1,500 levels deep",
    schema: nested(1500),
    error: /nests deeper than 256 levels/,
  },
];

/** Builds an object schema whose property "a" nests `levels` deep. */
function nested(levels: number): unknown {
  let schema: unknown = { type: "string" };
  for (let i = 0; i < levels; i++) schema = { type: "object", properties: { a: schema }, required: ["a"] };
  return schema;
}

describe("schemas that cannot be compiled", () => {
  for (const { name, schema, error } of unusable) {
    it(`raises a clear error for ${name}`, () => {
      let thrown: unknown;
      try {
        compileValue(schema);
      } catch (caught) {
        thrown = caught;
      }
      expect(thrown instanceof SchemaCompileError || thrown instanceof GrammarBuildError, String(thrown)).toBe(true);
      expect((thrown as Error).message).toMatch(error);
      expect((thrown as { code: string }).code).toBe("UNSUPPORTED");
    });
  }

  it("names the schema path in the error", () => {
    expect(() => compileValue({ type: "object", properties: { "a/b": { items: { $ref: "#/nope" } } } })).toThrow(
      /JSON Schema at #\/properties\/a~1b\/items: \$ref "#\/nope"/,
    );
  });

  it("falls back to no grammar for whole-output JSON with a warning", () => {
    const lines = captureLogs();
    const grammar = JsonOutputGrammar.tryCompile({ $ref: "#/definitions/absent" }, { vocabulary });
    expect(grammar).toBeNull();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/warn: JSON output schema cannot be compiled/);
    expect(lines[0]).toMatch(/#\/definitions\/absent/);
  });

  it("falls back to any object for one broken tool", () => {
    const lines = captureLogs();
    const grammar = ToolCallGrammar.compile({
      vocabulary,
      tools: [
        { name: "broken", inputSchema: { type: "object", properties: { x: { $ref: "#/$defs/x" } } } },
        { name: "looping", inputSchema: { $defs: { a: { anyOf: [{ $ref: "#/$defs/a" }] } }, $ref: "#/$defs/a" } },
        { name: "fine", inputSchema: { type: "object", properties: { n: { type: "integer" } }, required: ["n"] } },
      ],
    });
    expect(grammar.fallbacks.map((f) => f.name)).toEqual(["broken", "looping"]);
    expect(lines.filter((line) => line.includes('tool "broken"'))).toHaveLength(1);
    expect(lines.filter((line) => line.includes('tool "looping"'))).toHaveLength(1);

    const accepts = (text: string) => {
      const recognizer = grammar.recognizerAfterOpen();
      return recognizer.acceptBytes(text);
    };
    expect(accepts('\n{"name": "broken", "arguments": {"anything": [1, "x"]}}\n')).toBe(true);
    expect(accepts('\n{"name": "broken", "arguments": "not an object"}')).toBe(false);
    expect(accepts('\n{"name": "fine", "arguments": {"n": 3}}\n')).toBe(true);
    expect(accepts('\n{"name": "fine", "arguments": {"n": "3"}}')).toBe(false);
  });
});

describe("unsupported keywords", () => {
  it("drops them with a debug record and keeps the rest", () => {
    const lines = captureLogs(LogLevel.Debug);
    const { runtime, compiler } = compileValue({
      type: "object",
      properties: {
        code: { type: "string", pattern: "^(a)\\1$", maxLength: 3 },
        tags: { type: "array", items: { type: "string" }, uniqueItems: true },
        when: { type: "string", format: "duration" },
        n: { type: "integer", multipleOf: 5, not: { const: 10 } },
      },
      required: ["code"],
    });
    const dropped = compiler.dropped.map((d) => `${d.path} ${d.keyword}`);
    expect(dropped).toEqual([
      "#/properties/code pattern",
      "#/properties/tags uniqueItems",
      "#/properties/when format",
      "#/properties/n multipleOf",
      "#/properties/n not",
    ]);
    expect(lines.some((line) => line.includes('keyword "uniqueItems" dropped'))).toBe(true);
    // The pattern is gone but maxLength still applies.
    expect(matches(runtime, '{"code":"xyz"}')).toBe(true);
    expect(matches(runtime, '{"code":"wxyz"}')).toBe(false);
    expect(matches(runtime, '{"code":"a","n":"5"}')).toBe(false);
  });

  it("never makes a property unconstrained when its pattern is dropped", () => {
    const { runtime } = compileValue({ type: "object", properties: { s: { type: "string", pattern: "(?=x)" } }, required: ["s"] });
    expect(matches(runtime, '{"s":"any"}')).toBe(true);
    expect(matches(runtime, '{"s":1}')).toBe(false);
  });

  it("compiles a deeply nested schema without overflowing the stack", () => {
    let schema: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 200; i++) schema = { type: "object", properties: { a: schema }, required: ["a"] };
    const { runtime } = compileValue(schema);
    const text = '{"a":'.repeat(200) + '"x"' + "}".repeat(200);
    expect(matches(runtime, text)).toBe(true);
  });
});
