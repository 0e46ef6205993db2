// For each supported JSON Schema keyword: texts the byte recognizer must accept and texts it must
// reject. Every accepted text is also checked with ajv, so the grammar never accepts an invalid value.

import { describe, expect, it } from "vitest";
import { ByteRecognizer, GrammarRuntime } from "../../src/tool-calling/grammar/recognizer.js";
import { compileValue, createAjv2020, matches } from "./grammar-helpers.js";

interface KeywordCase {
  name: string;
  schema: Record<string, unknown> | boolean;
  accept: string[];
  reject: Array<string | Uint8Array>;
  options?: Parameters<typeof compileValue>[1];
}

const cases: KeywordCase[] = [
  {
    name: "object with required and optional properties in key order",
    schema: {
      type: "object",
      properties: { path: { type: "string" }, head: { type: "integer" }, recursive: { type: "boolean" } },
      required: ["path", "recursive"],
    },
    accept: [
      '{"path":"a","recursive":true}',
      '{"path": "a", "head": 3, "recursive": false}',
      '{ "path" : "a" , "recursive" : true }',
      '{\n  "path": "perché",\n  "recursive": true\n}',
    ],
    reject: [
      '{"recursive":true,"path":"a"}',
      '{"path":"a"}',
      '{"path":"a","head":1,"head":2,"recursive":true}',
      '{"path":"a","recursive":true,"extra":1}',
      '{"path":"a","recursive":true,}',
      '{,"path":"a","recursive":true}',
      '{"path":"a" "recursive":true}',
    ],
  },
  {
    name: "object with only optional properties",
    schema: { type: "object", properties: { a: { type: "integer" }, b: { type: "integer" } } },
    accept: ["{}", '{"a":1}', '{"b":2}', '{"a":1,"b":2}', "{ }"],
    reject: ['{"b":2,"a":1}', '{"a":1,}', '{"c":3}'],
  },
  {
    name: "additionalProperties true",
    schema: { type: "object", properties: { a: { type: "integer" } }, additionalProperties: true },
    accept: ['{"a":1}', '{"a":1,"zz":[1,{"q":null}]}', '{"città":"Roma"}', '{"ab":1}', '{"":0}'],
    reject: ['{"a":1,"a":2}', '{"a":"x"}', '{"\\u0061":2}', '{"zz":1,"a":1}'],
  },
  {
    name: "additionalProperties false",
    schema: { type: "object", properties: { a: { type: "integer" } }, additionalProperties: false },
    accept: ['{"a":1}', "{}"],
    reject: ['{"a":1,"b":2}', '{"b":2}'],
  },
  {
    name: "additionalProperties schema",
    schema: { type: "object", additionalProperties: { type: "integer" } },
    accept: ["{}", '{"x":5}', '{"x":5,"y":-2}'],
    reject: ['{"x":"s"}', '{"x":5,"y":true}'],
  },
  {
    name: "required key without a declared property",
    schema: { type: "object", properties: { a: { type: "integer" } }, required: ["b"], additionalProperties: { type: "string" } },
    accept: ['{"b":"x"}', '{"a":1,"b":"x"}'],
    reject: ["{}", '{"a":1}', '{"b":1}'],
  },
  {
    name: "string enum",
    schema: { type: "string", enum: ["rosso", "verde", "perché"] },
    accept: ['"rosso"', '"verde"', '"perché"'],
    reject: ['"ross"', '"blu"', '"rosso "', "rosso"],
  },
  {
    name: "mixed enum",
    schema: { enum: ["a", 1, null, { k: [true] }] },
    accept: ['"a"', "1", "null", '{"k":[true]}'],
    reject: ['"b"', "2", "true"],
  },
  {
    name: "const",
    schema: { const: "Roma" },
    accept: ['"Roma"'],
    reject: ['"roma"', '"Roma2"', '"Rom"'],
  },
  {
    name: "minLength and maxLength in characters",
    schema: { type: "string", minLength: 2, maxLength: 3 },
    accept: ['"ab"', '"abc"', '"èé"', '"😀😀"', '"a\\n"', '"\\u00e8\\u00e9"', '"a\\"b"'],
    reject: ['"a"', '"abcd"', '"😀"', '""', '"èéàù"'],
  },
  {
    name: "string characters and escapes",
    schema: { type: "string" },
    accept: ['""', '"perché 😀 città"', '"tab\\tnew\\nline\\\\ \\/ \\" \\b\\f\\r"', '"\\u0041\\uFFFD"'],
    reject: [
      '"raw\nnewline"',
      '"control \u0001"',
      '"bad \\x escape"',
      '"\\ud83d\\ude00"',
      '"unterminated',
      Uint8Array.from([0x22, 0xc0, 0x80, 0x22]), // overlong encoding of U+0000
      Uint8Array.from([0x22, 0x80, 0x22]), // lone continuation byte
      Uint8Array.from([0x22, 0xed, 0xa0, 0x80, 0x22]), // UTF-8 encoded surrogate
      Uint8Array.from([0x22, 0xf4, 0x90, 0x80, 0x80, 0x22]), // above U+10FFFF
      Uint8Array.from([0x22, 0xe8, 0x22]), // truncated multi-byte character
    ],
  },
  {
    name: "pattern anchored",
    schema: { type: "string", pattern: "^[a-z]+-\\d{2}$" },
    accept: ['"abc-12"', '"z-00"'],
    reject: ['"abc-1"', '"ABC-12"', '"abc-123"', '"-12"'],
  },
  {
    name: "pattern unanchored",
    schema: { type: "string", pattern: "ab|cd" },
    accept: ['"ab"', '"xxabyy"', '"cd"', '"è cd è"'],
    reject: ['"ba"', '"a b"', '""'],
  },
  {
    name: "pattern with escapes that JSON must escape",
    schema: { type: "string", pattern: '^"[^"\\\\]*"$' },
    accept: ['"\\"quoted\\""', '"\\"\\""'],
    reject: ['"quoted"', '"\\"a\\\\b\\""'],
  },
  {
    name: "format date",
    schema: { type: "string", format: "date" },
    accept: ['"2024-02-28"', '"1999-12-31"', '"2025-04-30"'],
    reject: ['"2024-13-01"', '"2024-02-30"', '"2024-04-31"', '"24-01-01"', '"2024-1-01"'],
  },
  {
    name: "format date-time",
    schema: { type: "string", format: "date-time" },
    accept: ['"2024-05-06T10:20:30Z"', '"2024-05-06T23:59:59.123+02:00"'],
    reject: ['"2024-05-06 10:20:30Z"', '"2024-05-06T24:00:00Z"', '"2024-05-06T10:20:30"'],
  },
  {
    name: "format time",
    schema: { type: "string", format: "time" },
    accept: ['"10:20:30Z"', '"00:00:00-05:30"'],
    reject: ['"10:20"', '"10:60:00Z"'],
  },
  {
    name: "format uri",
    schema: { type: "string", format: "uri" },
    accept: ['"https://example.com/a/b?c=d&e=%20#frag"', '"file:///tmp/x.txt"', '"http://127.0.0.1:8080/"'],
    reject: ['"not a uri"', '"://missing-scheme"', '"http://exa mple.com"', '"http://a/%zz"'],
  },
  {
    name: "format email",
    schema: { type: "string", format: "email" },
    accept: ['"mario.rossi@example.it"', '"a+b@sub.example.com"'],
    reject: ['"mario@"', '"@example.com"', '"mario rossi@example.it"', '"mario@example"'],
  },
  {
    name: "format uuid and ipv4",
    schema: { anyOf: [{ type: "string", format: "uuid" }, { type: "string", format: "ipv4" }] },
    accept: ['"123e4567-e89b-12d3-a456-426614174000"', '"192.168.0.255"'],
    reject: ['"123e4567-e89b-12d3-a456"', '"256.1.1.1"', '"1.2.3"'],
  },
  {
    name: "number",
    schema: { type: "number" },
    accept: ["0", "-1.5", "3e10", "1E-2", "12.25e+3", "-0"],
    reject: ["01", "1.", ".5", "+1", "-", "NaN", "1e", "0x10", "1e100"],
  },
  {
    name: "integer with minimum and maximum",
    schema: { type: "integer", minimum: -5, maximum: 120 },
    accept: ["-5", "-1", "0", "7", "99", "100", "120"],
    reject: ["-6", "121", "1000", "1.5", "-50", "007"],
  },
  {
    name: "integer with exclusive bounds",
    schema: { type: "integer", exclusiveMinimum: 0, exclusiveMaximum: 10 },
    accept: ["1", "9"],
    reject: ["0", "10", "-1"],
  },
  {
    name: "integer with only a lower bound",
    schema: { type: "integer", minimum: 17 },
    accept: ["17", "99", "100", "123456789"],
    reject: ["16", "0", "-17", "9"],
  },
  {
    name: "number with bounds",
    schema: { type: "number", minimum: 1, maximum: 10 },
    accept: ["1", "5.5", "9.99", "10"],
    reject: ["0", "0.5", "10.5", "11", "-1", "1e1"],
  },
  {
    name: "negative number range",
    schema: { type: "number", minimum: -2.5, maximum: -1 },
    accept: ["-1", "-2", "-1.75"],
    reject: ["0", "-3", "1", "-0.5"],
  },
  {
    name: "boolean and null",
    schema: { type: ["boolean", "null"] },
    accept: ["true", "false", "null"],
    reject: ["True", "1", '"null"', "nul"],
  },
  {
    name: "nullable",
    schema: { type: "integer", nullable: true },
    accept: ["3", "null"],
    reject: ['"3"', "true"],
  },
  {
    name: "type array",
    schema: { type: ["string", "integer"] },
    accept: ['"a"', "42"],
    reject: ["4.2", "null", "[]"],
  },
  {
    name: "array items",
    schema: { type: "array", items: { type: "integer" } },
    accept: ["[]", "[1, 2,3]", "[ 1 ]", "[\n1\n]"],
    reject: ["[1,]", "[,1]", '["a"]', "[1 2]", "["],
  },
  {
    name: "minItems and maxItems",
    schema: { type: "array", items: { type: "string" }, minItems: 1, maxItems: 2 },
    accept: ['["a"]', '["a", "b"]'],
    reject: ["[]", '["a","b","c"]'],
  },
  {
    name: "prefixItems without further items",
    schema: { type: "array", prefixItems: [{ type: "string" }, { type: "integer" }], items: false },
    accept: ['["a", 1]', '["a"]', "[]"],
    reject: ['[1, "a"]', '["a", 1, 2]', '["a", "b"]'],
  },
  {
    name: "prefixItems with items and minItems",
    schema: { type: "array", prefixItems: [{ type: "string" }], items: { type: "boolean" }, minItems: 2 },
    accept: ['["a", true]', '["a", true, false]'],
    reject: ['["a"]', '["a", 1]', "[true, true]"],
  },
  {
    name: "anyOf",
    schema: { anyOf: [{ type: "string", maxLength: 2 }, { type: "integer", minimum: 0 }] },
    accept: ['"x"', "5", '""'],
    reject: ["-1", "true", '"xyz"'],
  },
  {
    name: "oneOf",
    schema: { oneOf: [{ type: "boolean" }, { type: "object", properties: { k: { const: 1 } }, required: ["k"] }] },
    accept: ["true", '{"k":1}'],
    reject: ['{"k":2}', "{}", "null"],
  },
  {
    name: "anyOf beside other keywords",
    schema: { type: "object", properties: { a: { type: "integer" }, b: { type: "string" } }, anyOf: [{ required: ["a"] }, { required: ["b"] }] },
    accept: ['{"a":1}', '{"b":"x"}', '{"a":1,"b":"x"}'],
    reject: ["{}"],
  },
  {
    name: "allOf of objects",
    schema: {
      allOf: [
        { type: "object", properties: { a: { type: "string" } }, required: ["a"] },
        { properties: { b: { type: "integer", maximum: 3 } }, required: ["b"] },
      ],
    },
    accept: ['{"a":"x","b":1}', '{"a":"x","b":3}'],
    reject: ['{"a":"x"}', '{"b":1}', '{"a":"x","b":4}'],
  },
  {
    name: "$ref and recursive $defs",
    schema: {
      $defs: {
        node: {
          type: "object",
          properties: { value: { type: "integer" }, children: { type: "array", items: { $ref: "#/$defs/node" } } },
          required: ["value"],
        },
      },
      $ref: "#/$defs/node",
    },
    accept: ['{"value":1}', '{"value":1,"children":[{"value":2,"children":[{"value":3}]},{"value":4}]}'],
    reject: ['{"value":1,"children":[{"children":[]}]}', '{"value":"1"}'],
  },
  {
    name: "recursive root reference",
    schema: { type: "object", properties: { name: { type: "string" }, next: { $ref: "#" } }, required: ["name"] },
    accept: ['{"name":"a","next":{"name":"b","next":{"name":"c"}}}'],
    reject: ['{"name":"a","next":{}}'],
  },
  {
    name: "empty schema is any JSON value",
    schema: {},
    accept: ['{"x":[1,"y",null,{"z":-2.5e3}]}', '"s"', "true", "[]"],
    reject: ["{x:1}", "[1,]", "undefined", "'s'"],
  },
  {
    name: "bounded whitespace",
    schema: { type: "object", properties: { a: { type: "integer" } }, required: ["a"] },
    options: { maxWhitespace: 4 },
    accept: ['{    "a": 1}', '{"a":    1    }'],
    reject: ['{     "a": 1}', '{"a":     1}'],
  },
  {
    name: "string cap without maxLength",
    schema: { type: "string" },
    options: { maxStringLength: 8 },
    accept: ['"12345678"', '"èèèèèèèè"'],
    reject: ['"123456789"'],
  },
  {
    name: "array cap without maxItems",
    schema: { type: "array", items: { type: "integer" } },
    options: { maxArrayItems: 3 },
    accept: ["[1,2,3]"],
    reject: ["[1,2,3,4]"],
  },
];

describe("JSON Schema keywords on the byte recognizer", () => {
  const ajv = createAjv2020();

  for (const testCase of cases) {
    it(testCase.name, () => {
      const { runtime } = compileValue(testCase.schema, testCase.options);
      const validate = ajv.compile(testCase.schema as object);
      for (const text of testCase.accept) {
        expect(matches(runtime, text), `should accept ${text}`).toBe(true);
        expect(validate(JSON.parse(text)), `ajv should accept ${text}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      }
      for (const text of testCase.reject) {
        const description = typeof text === "string" ? text : `bytes ${Buffer.from(text).toString("hex")}`;
        expect(matches(runtime, text), `should reject ${description}`).toBe(false);
      }
    });
  }
});

describe("ByteRecognizer", () => {
  const { runtime } = compileValue({ type: "object", properties: { k: { type: "string", enum: ["sì", "no"] } }, required: ["k"] });

  it("lists the allowed bytes", () => {
    const recognizer = new ByteRecognizer(runtime);
    expect(recognizer.acceptBytes('{"k":"')).toBe(true);
    const allowed = recognizer.allowedBytes();
    const bytes = [...allowed.keys()].filter((b) => allowed[b] === 1);
    expect(bytes).toEqual(["n".charCodeAt(0), "s".charCodeAt(0)]);
  });

  it("keeps clones independent", () => {
    const recognizer = new ByteRecognizer(runtime);
    recognizer.acceptBytes('{"k":"');
    const copy = recognizer.clone();
    expect(copy.acceptBytes('no"}')).toBe(true);
    expect(copy.isAccepting()).toBe(true);
    expect(recognizer.isAccepting()).toBe(false);
    expect(recognizer.acceptBytes('sì"}')).toBe(true);
    expect(recognizer.isAccepting()).toBe(true);
  });

  it("leaves the state unchanged on a rejected byte", () => {
    const recognizer = new ByteRecognizer(runtime);
    recognizer.acceptBytes("{");
    const before = recognizer.state;
    expect(recognizer.accept("x".charCodeAt(0))).toBe(false);
    expect(recognizer.state).toBe(before);
    expect(recognizer.acceptBytes('"k":"nope"')).toBe(false);
    expect(recognizer.state).toBe(before);
  });

  it("keeps working after dropping its state tables", () => {
    const small = new GrammarRuntime(runtime.grammar, { stateLimit: 4 });
    for (const text of ['{"k":"sì"}', '{ "k" : "no" }', '{"k":"sì"}']) {
      const recognizer = new ByteRecognizer(small);
      expect(recognizer.acceptBytes(text), text).toBe(true);
      expect(recognizer.isAccepting(), text).toBe(true);
    }
    expect(small.stateCount).toBeLessThanOrEqual(4);
    expect(matches(small, '{"k":"si"}')).toBe(false);
  });

  it("accepts a multi-byte character split across calls", () => {
    const recognizer = new ByteRecognizer(runtime);
    const text = new TextEncoder().encode('{"k":"sì"}');
    const split = text.indexOf(0xc3) + 1; // between the two bytes of "ì"
    expect(recognizer.acceptBytes(text.subarray(0, split))).toBe(true);
    expect(recognizer.isAccepting()).toBe(false);
    expect(recognizer.acceptBytes(text.subarray(split))).toBe(true);
    expect(recognizer.isAccepting()).toBe(true);
  });
});
