// The tool-call constraint in its three modes, with Nesso's vocabulary (the tags are added tokens)
// and with the plain Llama-3 vocabulary (the tags are spelled with ordinary tokens).

import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { setLogSink } from "../../src/logger.js";
import {
  ToolCallGrammar,
  createToolCallConstraintFactory,
  type ToolCallConstraint,
} from "../../src/tool-calling/grammar/tool-call-grammar.js";
import type { Vocabulary } from "../../src/tool-calling/grammar/vocabulary.js";
import { createAjv2020, llama3Vocabulary, nessoVocabulary, seededRandom } from "./grammar-helpers.js";

const tools = [
  {
    name: "read_file",
    inputSchema: {
      type: "object",
      properties: { path: { type: "string" }, head: { type: "integer", minimum: 1 } },
      required: ["path"],
      additionalProperties: false,
    },
  },
  {
    name: "read_multiple_files",
    inputSchema: { type: "object", properties: { paths: { type: "array", items: { type: "string" }, minItems: 1 } }, required: ["paths"] },
  },
  {
    name: "get_weather",
    inputSchema: { type: "object", properties: { città: { type: "string", enum: ["Roma", "Milano", "Napoli"] } }, required: ["città"] },
  },
  { name: "list_allowed_directories", inputSchema: { type: "object", properties: {} } },
];

let nesso: Vocabulary;
let llama: Vocabulary;

/** Splits text into tokens by longest match over the vocabulary trie (not BPE, but valid ids). */
function greedyTokens(vocabulary: Vocabulary, text: string): number[] {
  const bytes = new TextEncoder().encode(text);
  const { nodeByte, subtreeEnd, tokenStart, tokenIds } = vocabulary.trie;
  const ids: number[] = [];
  let at = 0;
  while (at < bytes.length) {
    let node = 0;
    let best = -1;
    let bestLength = 0;
    for (let i = at; i < bytes.length; i++) {
      let child = node + 1;
      while (child < subtreeEnd[node] && nodeByte[child] !== bytes[i]) child = subtreeEnd[child];
      if (child >= subtreeEnd[node]) break;
      node = child;
      if (tokenStart[node + 1] > tokenStart[node]) {
        best = tokenIds[tokenStart[node]];
        bestLength = i - at + 1;
      }
    }
    ids.push(best);
    at += bestLength;
  }
  return ids;
}

/** Feeds the tokens one by one, checking that each one was allowed by the mask before it. */
function feedAllowed(constraint: ToolCallConstraint, ids: number[]): void {
  for (const id of ids) {
    const mask = constraint.mask();
    if (mask !== null) expect(mask[id], `token ${id} should be allowed`).toBe(1);
    constraint.accept(id);
    expect(constraint.failure).toBeNull();
  }
}

let restoreSink: ((line: string) => void) | null = null;
function captureLogs(): string[] {
  const lines: string[] = [];
  restoreSink = setLogSink((line) => lines.push(line));
  return lines;
}

afterEach(() => {
  if (restoreSink) setLogSink(restoreSink);
  restoreSink = null;
});

beforeAll(() => {
  nesso = nessoVocabulary();
  llama = llama3Vocabulary();
});

describe("tool-call constraint with added tag tokens", () => {
  const open = 128260;
  const close = 128261;
  const imEnd = 128256;

  it("requires a call at the start in required mode", () => {
    const constraint = ToolCallGrammar.compile({ tools, vocabulary: nesso }).createConstraint("required");
    const mask = constraint.mask()!;
    expect(mask[open]).toBe(1);
    expect(mask[greedyTokens(nesso, "\n")[0]]).toBe(1);
    expect(mask[greedyTokens(nesso, "Hello")[0]]).toBe(0);
    expect(mask[imEnd]).toBe(0);
    expect(mask[close]).toBe(0);

    feedAllowed(constraint, [open, ...greedyTokens(nesso, '\n{"name": "read_file", "arguments": {"path": "note.txt"}}\n'), close]);
    expect(constraint.isComplete()).toBe(false);
    const after = constraint.mask()!;
    expect(after[imEnd]).toBe(1);
    expect(after[open]).toBe(1);
    feedAllowed(constraint, greedyTokens(nesso, "\n"));
    feedAllowed(constraint, [imEnd]);
    expect(constraint.isComplete()).toBe(true);
  });

  it("allows only offered tool names", () => {
    const constraint = ToolCallGrammar.compile({ tools, vocabulary: nesso }).createConstraint("required");
    feedAllowed(constraint, [open, ...greedyTokens(nesso, '\n{"name": "')]);
    const mask = constraint.mask()!;
    expect(mask[greedyTokens(nesso, "read")[0]]).toBe(1);
    expect(mask[greedyTokens(nesso, "get")[0]]).toBe(1);
    expect(mask[greedyTokens(nesso, "list")[0]]).toBe(1);
    expect(mask[greedyTokens(nesso, "delete")[0]]).toBe(0);
    expect(mask[greedyTokens(nesso, "write")[0]]).toBe(0);
  });

  it("constrains the arguments to the named tool's schema", () => {
    const constraint = ToolCallGrammar.compile({ tools, vocabulary: nesso }).createConstraint("required");
    feedAllowed(constraint, [open, ...greedyTokens(nesso, '\n{"name": "get_weather", "arguments": {"città": "')]);
    const mask = constraint.mask()!;
    expect(mask[greedyTokens(nesso, "Roma")[0]]).toBe(1);
    expect(mask[greedyTokens(nesso, "Mil")[0]]).toBe(1);
    expect(mask[greedyTokens(nesso, "Torino")[0]]).toBe(0);
  });

  it("stays free until the tag in auto mode", () => {
    const constraint = ToolCallGrammar.compile({ tools, vocabulary: nesso }).createConstraint("auto");
    expect(constraint.mask()).toBeNull();
    for (const id of greedyTokens(nesso, "Leggo il file richiesto.\n")) constraint.accept(id);
    expect(constraint.mask()).toBeNull();
    expect(constraint.isActive).toBe(false);
    constraint.accept(open);
    expect(constraint.isActive).toBe(true);
    feedAllowed(constraint, greedyTokens(nesso, '\n{"name": "list_allowed_directories", "arguments": {}}\n'));
    feedAllowed(constraint, [close, imEnd]);
    expect(constraint.isComplete()).toBe(true);
  });

  it("constrains nothing in none mode", () => {
    const constraint = ToolCallGrammar.compile({ tools, vocabulary: nesso }).createConstraint("none");
    constraint.accept(open);
    expect(constraint.mask()).toBeNull();
    expect(constraint.isComplete()).toBe(false);
  });

  it("starts after the tag and text already in the prompt", () => {
    const factory = createToolCallConstraintFactory({ vocabulary: nesso });
    const definitions = tools.map((t) => ({ type: "function" as const, function: { name: t.name, parameters: t.inputSchema } }));
    const constraint = factory({ tools: definitions, textAfterOpenTag: '\n{"name": "read_f' })!;
    expect(constraint.isActive).toBe(true);
    const mask = constraint.mask()!;
    expect(mask[greedyTokens(nesso, "ile")[0]]).toBe(1);
    expect(mask[greedyTokens(nesso, "oo")[0]]).toBe(0);

    const lines = captureLogs();
    const broken = factory({ tools: definitions, textAfterOpenTag: '\n{"nome": ' })!;
    expect(broken.mask()).toBeNull();
    expect(broken.failure).toMatch(/cannot start a tool call/);
    expect(lines.some((line) => line.includes("warn") && line.includes('{\\"nome\\"'))).toBe(true);
  });

  it("turns itself off after a token the mask excluded", () => {
    const lines = captureLogs();
    const constraint = ToolCallGrammar.compile({ tools, vocabulary: nesso }).createConstraint("required");
    constraint.accept(greedyTokens(nesso, "Hello")[0]);
    expect(constraint.failure).toMatch(/"Hello" is not allowed/);
    expect(constraint.mask()).toBeNull();
    expect(lines.some((line) => line.includes("grammar constraint turned off"))).toBe(true);
  });

  it("random token walks in required mode give calls that validate", () => {
    const ajv = createAjv2020();
    const validators = new Map(tools.map((t) => [t.name, ajv.compile(t.inputSchema)]));
    const grammar = ToolCallGrammar.compile({ tools, vocabulary: nesso, maxStringLength: 16, maxArrayItems: 3, maxWhitespace: 1, maxCalls: 2 });
    const random = seededRandom(99);
    const tagNames = new Map([
      [open, "<tool_call>"],
      [close, "</tool_call>"],
      [imEnd, "<|im_end|>"],
    ]);
    for (let walk = 0; walk < 6; walk++) {
      const constraint = grammar.createConstraint("required");
      const pieces: string[] = [];
      const bytes: number[] = [];
      const flush = () => {
        pieces.push(new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes)));
        bytes.length = 0;
      };
      for (let step = 0; step < 600 && !constraint.isComplete(); step++) {
        const mask = constraint.mask()!;
        const choices: number[] = [];
        for (let id = 0; id < mask.length; id++) if (mask[id]) choices.push(id);
        const id = choices[Math.floor(random() * choices.length)];
        constraint.accept(id);
        const tokenBytes = nesso.tokenBytes(id);
        if (tokenBytes) bytes.push(...tokenBytes);
        else {
          flush();
          pieces.push(tagNames.get(id) ?? `<${id}>`);
        }
      }
      flush();
      expect(constraint.isComplete()).toBe(true);
      const text = pieces.join("");
      expect(text.endsWith("<|im_end|>"), text).toBe(true);
      const calls = [...text.matchAll(/<tool_call>([\s\S]*?)<\/tool_call>/g)].map((m) => JSON.parse(m[1]));
      expect(calls.length).toBeGreaterThanOrEqual(1);
      for (const call of calls) {
        expect(Object.keys(call)).toEqual(["name", "arguments"]);
        const validate = validators.get(call.name);
        expect(validate, `unknown tool ${call.name}`).toBeDefined();
        expect(validate!(call.arguments), `${text}: ${ajv.errorsText(validate!.errors)}`).toBe(true);
      }
    }
  });
});

describe("tool-call constraint with tags spelled in ordinary tokens", () => {
  it("activates on a tag split across tokens", () => {
    const grammar = ToolCallGrammar.compile({ tools, vocabulary: llama });
    expect(grammar.openTokenId).toBeUndefined();
    const constraint = grammar.createConstraint("auto");
    for (const id of greedyTokens(llama, "Certo. <tool")) constraint.accept(id);
    expect(constraint.isActive).toBe(false);
    for (const id of greedyTokens(llama, "_call>")) constraint.accept(id);
    expect(constraint.isActive).toBe(true);
    feedAllowed(constraint, greedyTokens(llama, '\n{"name": "read_file", "arguments": {"path": "a"}}\n</tool_call>'));
    const eot = llama.addedTokenId("<|eot_id|>")!;
    expect(constraint.mask()![eot]).toBe(1);
    feedAllowed(constraint, [eot]);
    expect(constraint.isComplete()).toBe(true);
  });

  it("feeds the bytes after the tag inside the same token", () => {
    const grammar = ToolCallGrammar.compile({ tools, vocabulary: llama });
    const constraint = grammar.createConstraint("auto");
    // ">\n" is one Llama-3 token, so the tag ends in the middle of it.
    const ids = greedyTokens(llama, "<tool_call>\n{");
    for (const id of ids) constraint.accept(id);
    expect(constraint.isActive).toBe(true);
    expect(constraint.failure).toBeNull();
    const mask = constraint.mask()!;
    expect(mask[greedyTokens(llama, '"name')[0]]).toBe(1);
  });

  it("requires the spelled tag first in required mode", () => {
    const constraint = ToolCallGrammar.compile({ tools, vocabulary: llama }).createConstraint("required");
    feedAllowed(constraint, greedyTokens(llama, '<tool_call>\n{"name": "get_weather", "arguments": {"città": "Napoli"}}\n</tool_call>\n'));
    const mask = constraint.mask()!;
    expect(mask[greedyTokens(llama, "<")[0]]).toBe(1);
    expect(mask[greedyTokens(llama, "Ok")[0]]).toBe(0);
  });
});
