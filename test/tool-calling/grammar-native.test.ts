// The native token-mask engine against the TypeScript reference: over the real Llama-3 vocabulary
// with Nesso's added tokens, the native mask of every tested state must equal
// TokenMasker.computeReference byte for byte. States come from every byte prefix of valid tool
// calls for the filesystem, memory and everything servers, boundary tokens, UTF-8 split across
// tokens, special tokens and seeded random walks. Malformed input must raise clear errors.

import { beforeAll, describe, expect, it } from "vitest";
import type { NativeAddon, NativeGrammarTables } from "../../src/engine/native-api.js";
import { loadNativeAddon } from "../../src/engine/native.js";
import { GrammarBuilder, grammarToJson, literal, ref, type GrammarIR } from "../../src/tool-calling/grammar/ir.js";
import { ByteRecognizer, GrammarRuntime, type State } from "../../src/tool-calling/grammar/recognizer.js";
import { encodeStateStacks, TokenMasker } from "../../src/tool-calling/grammar/token-mask.js";
import { ToolCallGrammar } from "../../src/tool-calling/grammar/tool-call-grammar.js";
import type { Vocabulary } from "../../src/tool-calling/grammar/vocabulary.js";
import { compileValue, listServerTools, nessoVocabulary, seededRandom, type ServerTool } from "./grammar-helpers.js";

let addon: NativeAddon;
let vocabulary: Vocabulary;
let serverTools: Record<string, ServerTool[]>;
const tokenIdByBytes = new Map<string, number>();

/** Returns the id of the ordinary token whose bytes are exactly `text` (UTF-8 or a byte list). */
function tokenId(text: string | number[]): number {
  const key = Buffer.from(typeof text === "string" ? Buffer.from(text, "utf8") : Uint8Array.from(text)).toString("latin1");
  const id = tokenIdByBytes.get(key);
  if (id === undefined) throw new Error(`no single token for ${JSON.stringify(text)}`);
  return id;
}

function added(content: string): number {
  const id = vocabulary.addedTokenId(content);
  if (id === undefined) throw new Error(`vocabulary has no added token ${content}`);
  return id;
}

/** Returns the ids where two masks differ (at most 5), for readable failures. */
function differences(expected: Uint8Array, actual: Uint8Array): number[] {
  const ids: number[] = [];
  for (let id = 0; id < expected.length && ids.length < 5; id++) {
    if (expected[id] !== actual[id]) ids.push(id);
  }
  return ids;
}

/** Asserts that the native mask of `state` equals the reference mask; returns the mask. */
function expectSameMask(masker: TokenMasker, state: State, label: string): Uint8Array {
  const reference = masker.computeReference(state);
  const native = masker.compute(state);
  expect(native.length, label).toBe(vocabulary.size);
  expect(differences(reference, native), label).toEqual([]);
  return native;
}

/** One piece of a tool call: UTF-8 text fed byte by byte, or an added token. */
type Piece = string | { token: string };

/** Feeds the pieces one byte or token at a time and compares the masks at every state reached. */
function comparePrefixes(grammar: ToolCallGrammar, pieces: Piece[], label: string): number {
  const recognizer = new ByteRecognizer(grammar.runtime);
  let compared = 0;
  let consumed = "";
  const check = () => {
    expectSameMask(grammar.masker, recognizer.state, `${label} after ${JSON.stringify(consumed)}`);
    compared++;
  };
  check();
  for (const piece of pieces) {
    if (typeof piece === "string") {
      for (const byte of new TextEncoder().encode(piece)) {
        expect(recognizer.accept(byte), `${label}: byte ${byte} after ${JSON.stringify(consumed)}`).toBe(true);
        consumed += String.fromCharCode(byte);
        check();
      }
    } else {
      expect(recognizer.acceptToken(added(piece.token)), `${label}: ${piece.token}`).toBe(true);
      consumed += piece.token;
      check();
    }
  }
  expect(recognizer.isFinished(), label).toBe(true);
  return compared;
}

function toolCall(name: string, args: unknown): Piece[] {
  return [{ token: "<tool_call>" }, `\n${JSON.stringify({ name, arguments: args })}\n`, { token: "</tool_call>" }, { token: "<|im_end|>" }];
}

function toolGrammar(server: string, engine: "native" | "ts" = "native"): ToolCallGrammar {
  return ToolCallGrammar.compile({ tools: serverTools[server], vocabulary, engine });
}

function tablesOf(grammar: GrammarIR): NativeGrammarTables {
  const { ruleAltStart, altElementStart, elementKind, elementValue, elementMin, elementMax, byteSets, root } = grammar;
  return { ruleAltStart, altElementStart, elementKind, elementValue, elementMin, elementMax, byteSets, root };
}

function nativeVocabularyOf(): ReturnType<NativeAddon["createGrammarVocabulary"]> {
  const trie = vocabulary.trie;
  return addon.createGrammarVocabulary({ size: vocabulary.size, maxTokenBytes: vocabulary.maxTokenBytes, ...trie });
}

beforeAll(async () => {
  addon = loadNativeAddon();
  vocabulary = nessoVocabulary();
  for (let id = 0; id < vocabulary.size; id++) {
    const bytes = vocabulary.tokenBytes(id);
    if (bytes) tokenIdByBytes.set(Buffer.from(bytes).toString("latin1"), id);
  }
  serverTools = await listServerTools();
}, 60_000);

describe("native token masks equal the reference", () => {
  it("on every prefix of filesystem tool calls", () => {
    const grammar = toolGrammar("filesystem");
    expect(grammar.masker.engine).toBe("native");
    let compared = 0;
    compared += comparePrefixes(grammar, toolCall("read_text_file", { path: "note/perché.txt", head: 10 }), "read_text_file");
    compared += comparePrefixes(
      grammar,
      toolCall("write_file", { path: "città.md", content: "Ciao! Così va 👍\n\"citato\" \\ fine" }),
      "write_file",
    );
    compared += comparePrefixes(
      grammar,
      toolCall("edit_file", { path: "a.txt", edits: [{ oldText: "però", newText: "🙂 sì" }], dryRun: true }),
      "edit_file",
    );
    expect(compared).toBeGreaterThan(250);
  });

  it("on every prefix of memory and everything tool calls", () => {
    const memory = toolGrammar("memory");
    comparePrefixes(
      memory,
      toolCall("create_entities", { entities: [{ name: "Zoë", entityType: "persona", observations: ["vive a Forlì"] }] }),
      "create_entities",
    );
    const everything = toolGrammar("everything");
    comparePrefixes(everything, toolCall("get-sum", { a: -1.5, b: 2e3 }), "get-sum");
    comparePrefixes(everything, toolCall("echo", { message: "ünïcødé 😀" }), "echo");
  });

  it("on two calls in one turn", () => {
    const grammar = toolGrammar("filesystem");
    const pieces: Piece[] = [
      { token: "<tool_call>" },
      '{"name": "list_directory", "arguments": {"path": "."}}',
      { token: "</tool_call>" },
      "\n",
      ...toolCall("get_file_info", { path: "è.txt" }),
    ];
    comparePrefixes(grammar, pieces, "two calls");
  });

  it("along seeded random token walks", () => {
    const grammar = toolGrammar("filesystem");
    const random = seededRandom(6_2026);
    let steps = 0;
    for (let walk = 0; walk < 4; walk++) {
      const recognizer = new ByteRecognizer(grammar.runtime);
      for (let step = 0; step < 40 && !recognizer.isFinished(); step++) {
        const mask = expectSameMask(grammar.masker, recognizer.state, `walk ${walk} step ${step}`);
        const allowed: number[] = [];
        for (let id = 0; id < mask.length; id++) if (mask[id]) allowed.push(id);
        expect(allowed.length, `walk ${walk} step ${step}`).toBeGreaterThan(0);
        const id = allowed[Math.floor(random() * allowed.length)];
        const bytes = vocabulary.tokenBytes(id);
        expect(bytes === null ? recognizer.acceptToken(id) : recognizer.acceptBytes(bytes)).toBe(true);
        steps++;
      }
    }
    expect(steps).toBeGreaterThan(40);
  });
});

describe("native masks at hard positions", () => {
  it("allows tokens that span grammar elements", () => {
    const { runtime } = compileValue({
      type: "object",
      properties: {
        a: { type: "object", properties: { b: { type: "string" } }, required: ["b"], additionalProperties: false },
        c: { type: "string" },
      },
      required: ["a", "c"],
      additionalProperties: false,
    });
    const masker = new TokenMasker(vocabulary, runtime, { engine: "native" });
    const recognizer = new ByteRecognizer(runtime);
    recognizer.acceptBytes('{"a": {"b": "x');
    const inString = expectSameMask(masker, recognizer.state, "inside b");
    expect(inString[tokenId('"}')]).toBe(1);
    expect(inString[tokenId('"},"')]).toBe(1);
    expect(inString[tokenId('","')]).toBe(0);
    recognizer.acceptBytes('"');
    const afterString = expectSameMask(masker, recognizer.state, "after b");
    expect(afterString[tokenId('},"')]).toBe(1);
    expect(afterString[tokenId('"}')]).toBe(0);
  });

  it("handles UTF-8 characters split across tokens", () => {
    const { runtime } = compileValue({ type: "string" });
    const masker = new TokenMasker(vocabulary, runtime, { engine: "native" });
    const recognizer = new ByteRecognizer(runtime);
    recognizer.acceptBytes('"perch');
    recognizer.accept(0xc3);
    const afterLead = expectSameMask(masker, recognizer.state, "after 0xC3");
    expect(afterLead[tokenId([0xa9])]).toBe(1);
    expect(afterLead[tokenId("é")]).toBe(0);
    expect(afterLead[tokenId('"')]).toBe(0);
    expect(afterLead[tokenId("a")]).toBe(0);

    // 😀 is F0 9F 98 80; after its first two bytes only continuation bytes may follow.
    recognizer.accept(0xa9);
    recognizer.acceptBytes(Uint8Array.from([0xf0, 0x9f]));
    const insideEmoji = expectSameMask(masker, recognizer.state, "inside an emoji");
    expect(insideEmoji[tokenId([0x98])]).toBe(1);
    expect(insideEmoji[tokenId([0xf0])]).toBe(0);
    expect(insideEmoji[tokenId('"')]).toBe(0);
  });

  it("respects repetition bounds near the cut", () => {
    const { runtime } = compileValue({
      type: "object",
      properties: {
        code: { type: "string", minLength: 3, maxLength: 6 },
        tags: { type: "array", items: { type: "string", maxLength: 2 }, minItems: 2, maxItems: 3 },
      },
      required: ["code", "tags"],
      additionalProperties: false,
    });
    const masker = new TokenMasker(vocabulary, runtime, { engine: "native" });
    const recognizer = new ByteRecognizer(runtime);
    let consumed = "";
    for (const byte of new TextEncoder().encode('{"code": "àbcde", "tags": ["x", "yz", "ü"]}')) {
      expectSameMask(masker, recognizer.state, `after ${JSON.stringify(consumed)}`);
      expect(recognizer.accept(byte)).toBe(true);
      consumed += String.fromCharCode(byte);
    }
    expect(recognizer.isAccepting()).toBe(true);
  });

  it("handles ambiguous stacks with different frames below", () => {
    // Both anyOf branches match the same strings for a while, so the state has stacks of two
    // string rules whose continuations differ.
    const { runtime } = compileValue({
      type: "object",
      properties: { v: { anyOf: [{ type: "string", maxLength: 4 }, { type: "string", pattern: "^[a-z]+$", minLength: 2 }] } },
      required: ["v"],
      additionalProperties: false,
    });
    const masker = new TokenMasker(vocabulary, runtime, { engine: "native" });
    const recognizer = new ByteRecognizer(runtime);
    let consumed = "";
    let ambiguous = 0;
    for (const byte of new TextEncoder().encode('{"v": "abcdefg"}')) {
      expectSameMask(masker, recognizer.state, `after ${JSON.stringify(consumed)}`);
      if (recognizer.state.tops.length > 1) ambiguous++;
      expect(recognizer.accept(byte)).toBe(true);
      consumed += String.fromCharCode(byte);
    }
    expect(ambiguous).toBeGreaterThan(3);
  });

  it("allows special tokens only where the grammar puts them", () => {
    const grammar = toolGrammar("filesystem");
    const imEnd = added("<|im_end|>");
    const open = added("<tool_call>");
    const close = added("</tool_call>");
    const eot = added("<|eot_id|>");
    const recognizer = new ByteRecognizer(grammar.runtime);
    const start = expectSameMask(grammar.masker, recognizer.state, "start");
    expect([start[open], start[close], start[imEnd], start[eot]]).toEqual([1, 0, 0, 0]);

    recognizer.acceptToken(open);
    recognizer.acceptBytes('{"name": "read_file", "arguments": {"path": "a');
    const inString = expectSameMask(grammar.masker, recognizer.state, "inside a string");
    expect([inString[open], inString[close], inString[imEnd], inString[eot]]).toEqual([0, 0, 0, 0]);

    recognizer.acceptBytes('"}}\n');
    const beforeClose = expectSameMask(grammar.masker, recognizer.state, "before </tool_call>");
    expect([beforeClose[open], beforeClose[close], beforeClose[imEnd]]).toEqual([0, 1, 0]);

    recognizer.acceptToken(close);
    const afterCall = expectSameMask(grammar.masker, recognizer.state, "after the call");
    expect([afterCall[open], afterCall[close], afterCall[imEnd], afterCall[eot]]).toEqual([1, 0, 1, 0]);

    recognizer.acceptToken(imEnd);
    const finished = expectSameMask(grammar.masker, recognizer.state, "finished");
    expect(finished.reduce((sum, x) => sum + x, 0)).toBe(0);
  });

  it("constrains auto mode only after <tool_call>", () => {
    const grammar = toolGrammar("filesystem");
    const constraint = grammar.createConstraint("auto");
    for (const text of ["Hello", " world", "."]) {
      expect(constraint.mask()).toBeNull();
      constraint.accept(tokenId(text));
    }
    constraint.accept(added("<tool_call>"));
    const recognizer = grammar.recognizerAfterOpen();
    const mask = constraint.mask();
    expect(mask).not.toBeNull();
    expect(differences(grammar.masker.computeReference(recognizer.state), mask!)).toEqual([]);
    expect(mask![tokenId("{")]).toBe(1);
    expect(mask![tokenId("Hello")]).toBe(0);
  });
});

describe("native token-mask engine input checks", () => {
  function smallGrammar(): GrammarIR {
    const builder = new GrammarBuilder();
    const item = builder.add("item", [literal("ab")]);
    return builder.build(builder.add("root", [[...literal("["), ref(item, 0, 3), ...literal("]")]]));
  }

  it("rejects malformed grammar tables", () => {
    const native = nativeVocabularyOf();
    const good = tablesOf(smallGrammar());
    const cases: Array<[Partial<NativeGrammarTables>, RegExp]> = [
      [{ elementKind: good.elementKind.map((k, i) => (i === 0 ? 7 : k)) }, /element 0 has unknown kind 7/],
      [{ elementValue: good.elementValue.map((v, i) => (good.elementKind[i] === 2 ? 999 : v)) }, /refers to rule 999/],
      [{ byteSets: good.byteSets.subarray(0, 31) }, /byteSets length 31 is not a multiple of 32/],
      [{ root: 99 }, /root 99 is not a rule index below 2/],
      [{ elementMin: good.elementMin.subarray(1) }, /elementMin .* entries but elementKind has/],
      [{ elementKind: good.elementKind.map(() => 1) }, /has no End element/],
    ];
    for (const [change, message] of cases) {
      expect(() => addon.createTokenMasker({ ...good, ...change }, native), String(message)).toThrow(message);
    }
    const wrongType = { ...good, ruleAltStart: Array.from(good.ruleAltStart) } as unknown as NativeGrammarTables;
    expect(() => addon.createTokenMasker(wrongType, native)).toThrow(/ruleAltStart/);
    expect(() => addon.createTokenMasker(good, {} as never)).toThrow(/vocabulary must be a GrammarVocabulary/);
  });

  it("rejects a malformed vocabulary trie", () => {
    const trie = vocabulary.trie;
    const base = { size: vocabulary.size, maxTokenBytes: vocabulary.maxTokenBytes, ...trie };
    expect(() => addon.createGrammarVocabulary({ ...base, size: 10 })).toThrow(/is not below the vocabulary size 10/);
    const subtreeEnd = trie.subtreeEnd.slice();
    subtreeEnd[1] = 0;
    expect(() => addon.createGrammarVocabulary({ ...base, subtreeEnd })).toThrow(/subtreeEnd\[1\] = 0 is not nested/);
    expect(() => addon.createGrammarVocabulary({ ...base, maxTokenBytes: 3 })).toThrow(/deeper than maxTokenBytes 3/);
  });

  it("rejects malformed state encodings and masks", () => {
    const grammar = smallGrammar();
    const masker = addon.createTokenMasker(tablesOf(grammar), nativeVocabularyOf());
    const mask = new Uint8Array(vocabulary.size);
    const initial = encodeStateStacks(new GrammarRuntime(grammar).initial);
    expect(() => masker.computeMask(initial, false, mask)).not.toThrow();
    expect(() => masker.computeMask(initial, false, new Uint8Array(10))).toThrow(/the mask has 10 entries/);
    expect(() => masker.computeMask(Uint32Array.of(1, 1, 9999, 0), false, mask)).toThrow(/position 9999/);
    expect(() => masker.computeMask(Uint32Array.of(1, 1, grammar.elementKind.indexOf(2), 0), false, mask)).toThrow(
      /a top frame must be a Bytes or Token element/,
    );
    expect(() => masker.computeMask(Uint32Array.of(2, 1, 0, 0), false, mask)).toThrow(/ends before stack 1/);
    expect(() => masker.computeMask(Uint32Array.of(1, 5, 0, 0), false, mask)).toThrow(/longer than the encoding/);
    expect(() => masker.computeMask(Uint32Array.of(), false, mask)).toThrow(/encoding is empty/);
  });

  it("raises on a left-recursive grammar instead of crashing", () => {
    // rule 0 ::= rule 0 "a" | "a" and rule 1 ::= "x" rule 0, which GrammarBuilder would reject,
    // written as raw tables. Stepping over "x" expands rule 0 into itself without end.
    const tables: NativeGrammarTables = {
      ruleAltStart: Uint32Array.of(0, 2, 3),
      altElementStart: Uint32Array.of(0, 3, 5),
      elementKind: Uint8Array.of(2, 1, 0, 1, 0, 1, 2, 0),
      elementValue: Uint32Array.of(0, 0, 0, 0, 0, 0, 0, 0),
      elementMin: Uint32Array.of(1, 1, 1, 1, 1, 1, 1, 1),
      elementMax: Uint32Array.of(1, 1, 1, 1, 1, 1, 1, 1),
      byteSets: new Uint8Array(32).fill(255),
      root: 1,
    };
    const masker = addon.createTokenMasker(tables, nativeVocabularyOf());
    const stacks = Uint32Array.of(1, 1, 5, 0);
    expect(() => masker.computeMask(stacks, false, new Uint8Array(vocabulary.size))).toThrow(/exceeded 10000 nested rules/);
    // The masker stays usable after the error.
    expect(() => masker.computeMask(stacks, false, new Uint8Array(vocabulary.size))).toThrow(/exceeded 10000 nested rules/);
  });

  it("keeps masks right when the state limit drops its tables", () => {
    const { runtime } = compileValue({ type: "object", properties: { note: { type: "string" } } });
    const tables = tablesOf(runtime.grammar);
    const masker = addon.createTokenMasker(tables, nativeVocabularyOf(), { stateLimit: 4 });
    const reference = new TokenMasker(vocabulary, runtime, { engine: "ts" });
    const recognizer = new ByteRecognizer(runtime);
    const mask = new Uint8Array(vocabulary.size);
    for (const byte of new TextEncoder().encode('{"note": "à bientôt"}')) {
      masker.computeMask(encodeStateStacks(recognizer.state), recognizer.state.accepting, mask);
      expect(differences(reference.computeReference(recognizer.state), mask)).toEqual([]);
      expect(recognizer.accept(byte)).toBe(true);
    }
    // One walk inside a string interns a few hundred states, so the count stays far below the 275,000 trie nodes.
    expect(masker.stateCount).toBeLessThan(5_000);
  });

  it("throws DISPOSED after dispose and disposes twice", () => {
    const masker = addon.createTokenMasker(tablesOf(smallGrammar()), nativeVocabularyOf());
    masker.dispose();
    masker.dispose();
    expect(() => masker.computeMask(Uint32Array.of(0), true, new Uint8Array(vocabulary.size))).toThrow("TokenMasker.computeMask() was used after dispose()");
  });

  it("selects the engine from NESSO_MCP_GRAMMAR", () => {
    const { runtime } = compileValue({ type: "boolean" });
    const previous = process.env.NESSO_MCP_GRAMMAR;
    try {
      process.env.NESSO_MCP_GRAMMAR = "ts";
      expect(new TokenMasker(vocabulary, runtime).engine).toBe("ts");
      process.env.NESSO_MCP_GRAMMAR = "native";
      expect(new TokenMasker(vocabulary, runtime).engine).toBe("native");
      process.env.NESSO_MCP_GRAMMAR = "fast";
      expect(() => new TokenMasker(vocabulary, runtime)).toThrow(/NESSO_MCP_GRAMMAR is "fast"/);
    } finally {
      if (previous === undefined) delete process.env.NESSO_MCP_GRAMMAR;
      else process.env.NESSO_MCP_GRAMMAR = previous;
    }
  });
});

describe("native mask timing", () => {
  it("measures a cache miss inside a JSON string", () => {
    // Reported, not asserted: absolute times depend on the machine's load. "first" is the first
    // string mask of a fresh grammar (no context mask yet); "other strings" is the median over
    // strings of other properties, whose full states differ but share the context mask.
    const grammar = toolGrammar("filesystem");
    grammar.masker.compute(new ByteRecognizer(grammar.runtime).state);
    const inside = (prefix: string): State => {
      const recognizer = new ByteRecognizer(grammar.runtime);
      recognizer.acceptToken(added("<tool_call>"));
      expect(recognizer.acceptBytes(prefix), prefix).toBe(true);
      return recognizer.state;
    };
    const first = inside('{"name": "write_file", "arguments": {"path": "appunti/lunedì');
    const others = [
      '{"name": "write_file", "arguments": {"path": "a.txt", "content": "Ciao, come st',
      '{"name": "edit_file", "arguments": {"path": "a.txt", "edits": [{"oldText": "però',
      '{"name": "edit_file", "arguments": {"path": "a.txt", "edits": [{"oldText": "a", "newText": "b',
      '{"name": "move_file", "arguments": {"source": "x',
      '{"name": "move_file", "arguments": {"source": "x", "destination": "y',
    ].map(inside);
    const time = (compute: () => void): number => {
      const started = performance.now();
      compute();
      return performance.now() - started;
    };
    const median = (values: number[]): number => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];

    const nativeFirst = time(() => grammar.masker.compute(first));
    const nativeOthers = median(others.map((state) => time(() => grammar.masker.compute(state))));
    const tsFirst = time(() => grammar.masker.computeReference(others[0]));
    const tsOthers = median(others.map((state) => time(() => grammar.masker.computeReference(state))));
    const nativeWarm = median(others.map((state) => time(() => grammar.masker.compute(state))));
    const format = (ms: number) => `${ms.toFixed(3)} ms`;
    console.info(
      `cache miss inside a string: ts first ${format(tsFirst)}, ts other strings ${format(tsOthers)}; ` +
        `native first ${format(nativeFirst)}, other strings ${format(nativeOthers)}, same state again ${format(nativeWarm)}`,
    );
    expect(nativeOthers).toBeGreaterThan(0);
  });
});
