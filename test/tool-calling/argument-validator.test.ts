import { describe, expect, it } from "vitest";

import { ArgumentValidator, describeParameters } from "../../src/tool-calling/argument-validator.js";
import type { RegisteredTool } from "../../src/host/types.js";

function tool(inputSchema: Record<string, unknown>): RegisteredTool {
  return { name: "read_text_file", server: "filesystem", originalName: "read_text_file", inputSchema };
}

// The shape the filesystem server publishes (draft-07, from zod).
const draft07 = tool({
  type: "object",
  properties: {
    path: { type: "string" },
    head: { type: "number", description: "First N lines" },
    mode: { type: "string", enum: ["text", "binary"] },
  },
  required: ["path"],
  additionalProperties: false,
  $schema: "http://json-schema.org/draft-07/schema#",
});

describe("ArgumentValidator", () => {
  it("accepts valid arguments", () => {
    const validator = new ArgumentValidator();
    expect(validator.validate(draft07, { path: "città/perché.txt", head: 3 })).toEqual({ ok: true });
  });

  it("reports every violation for the model", () => {
    const result = new ArgumentValidator().validate(draft07, { head: "3", mode: "zip", extra: true });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.message).toContain('missing required property "path"');
    expect(result.message).toContain('"head" must be number');
    expect(result.message).toContain('"mode" must be one of ["text","binary"]');
    expect(result.message).toContain('unknown property "extra" in arguments');
    expect(result.message).toContain("Expected parameters: path (string, required), head (number), mode (one of [\"text\",\"binary\"])");
    expect(result.message).toContain("call read_text_file again");
  });

  it("validates 2020-12 schemas", () => {
    const schema = tool({
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      properties: { pair: { type: "array", prefixItems: [{ type: "string" }, { type: "integer" }] } },
    });
    const validator = new ArgumentValidator();
    expect(validator.validate(schema, { pair: ["a", 1] }).ok).toBe(true);
    expect(validator.validate(schema, { pair: ["a", "b"] }).ok).toBe(false);
  });

  it("treats a schema without $schema as 2020-12", () => {
    const schema = tool({ type: "object", properties: { n: { type: "integer", minimum: 1 } }, $defs: { unused: { type: "string" } } });
    expect(new ArgumentValidator().validate(schema, { n: 0 }).ok).toBe(false);
  });

  it("ignores unknown keywords and formats", () => {
    const schema = tool({ type: "object", properties: { url: { type: "string", format: "uri", "x-custom": 1 } } });
    expect(new ArgumentValidator().validate(schema, { url: "non un url" }).ok).toBe(true);
  });

  it("lets calls through when the schema does not compile", () => {
    const broken = tool({ type: "object", properties: { a: { $ref: "#/nowhere" } } });
    const result = new ArgumentValidator().validate(broken, { a: 1 });
    expect(result.ok).toBe(true);
    expect(result.ok && result.unchecked).toContain("ajv could not compile the input schema of read_text_file");
  });

  it("compiles tools that share an $id", () => {
    const validator = new ArgumentValidator();
    const first = tool({ $id: "urn:same", type: "object", properties: { a: { type: "string" } } });
    const second = tool({ $id: "urn:same", type: "object", properties: { a: { type: "number" } } });
    expect(validator.validate(first, { a: "x" }).ok).toBe(true);
    expect(validator.validate(second, { a: 1 }).ok).toBe(true);
    expect(validator.validate(second, { a: "x" }).ok).toBe(false);
  });
});

describe("describeParameters", () => {
  it("lists arrays and alternatives", () => {
    expect(
      describeParameters({
        type: "object",
        properties: { paths: { type: "array", items: { type: "string" } }, n: { type: ["number", "null"] }, x: {} },
        required: ["paths"],
      }),
    ).toBe("paths (array of string, required), n (number or null), x (any)");
  });
});
