import { describe, expect, it } from "vitest";

import { parseLenientJson } from "../../src/tool-calling/lenient-json.js";

function values(text: string, closeUnterminated = false): unknown[] {
  const result = parseLenientJson(text, { closeUnterminated });
  if (!result.ok) throw new Error(`expected ${JSON.stringify(text)} to parse, got: ${result.message}`);
  return result.values;
}

function failure(text: string, closeUnterminated = false): string {
  const result = parseLenientJson(text, { closeUnterminated });
  if (result.ok) throw new Error(`expected ${JSON.stringify(text)} to fail, got ${JSON.stringify(result.values)}`);
  return result.message;
}

describe("lenient JSON", () => {
  it("reads strict JSON unchanged", () => {
    expect(values('{"a": [1, 2.5, -3e2], "b": "è 😀", "c": null}')).toEqual([{ a: [1, 2.5, -300], b: "è 😀", c: null }]);
  });

  it("accepts trailing commas", () => {
    expect(values('{"a": [1, 2,], "b": {"c": 1,},}')).toEqual([{ a: [1, 2], b: { c: 1 } }]);
  });

  it("accepts single quotes and unquoted keys", () => {
    expect(values("{path: 'città.txt', 'mode': \"r\"}")).toEqual([{ path: "città.txt", mode: "r" }]);
  });

  it("accepts Python literals", () => {
    expect(values("[True, False, None]")).toEqual([[true, false, null]]);
  });

  it("accepts raw newlines inside strings", () => {
    expect(values('{"content": "riga uno\nriga due\ttab"}')).toEqual([{ content: "riga uno\nriga due\ttab" }]);
  });

  it("reads several top-level values", () => {
    expect(values('{"a": 1}\n{"b": 2}, [3]')).toEqual([{ a: 1 }, { b: 2 }, [3]]);
  });

  it("joins escaped surrogate pairs", () => {
    expect(values('"\\ud83c\\uddee\\ud83c\\uddf9"')).toEqual(["🇮🇹"]);
  });

  it("keeps a __proto__ key as data", () => {
    const [value] = values('{"__proto__": {"polluted": true},}') as [Record<string, unknown>];
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("closes brackets left open after a complete value", () => {
    expect(values('{"name": "a", "arguments": {"x": [1, 2', true)).toEqual([{ name: "a", arguments: { x: [1, 2] } }]);
  });

  it("rejects missing brackets unless asked to close them", () => {
    expect(failure('{"a": 1')).toContain('expected "," or "}" but the text ended');
  });

  it("rejects a string cut off even when closing brackets", () => {
    expect(failure('{"content": "ciao', true)).toContain("not terminated");
  });

  it("rejects a value missing after a colon", () => {
    expect(failure('{"a": ', true)).toContain("expected a value");
  });

  it("names line and column in errors", () => {
    expect(failure('{\n  "a": 1\n  "b": 2\n}')).toMatch(/expected "," or "}" after the value of "a" at line 3, column 3/);
  });

  it("rejects bare words", () => {
    expect(failure("{path: leggi}")).toContain('unexpected word "leggi"');
  });

  it("rejects empty text", () => {
    expect(failure("   ")).toContain("empty");
  });

  it("rejects invalid unicode escapes", () => {
    expect(failure('"\\u12G4"')).toContain("invalid \\u escape");
  });
});
