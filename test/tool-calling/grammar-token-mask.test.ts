// Token masks over the real Llama-3 vocabulary plus Nesso's added tokens. Masks must agree with
// checking every token one by one and handle tokens that span grammar elements or split a UTF-8
// character. Special tokens appear only where the grammar puts them, and random token walks under
// the mask must produce JSON that validates.

import { beforeAll, describe, expect, it } from "vitest";
import { JsonOutputGrammar } from "../../src/tool-calling/grammar/json-output-grammar.js";
import { ByteRecognizer, GrammarRuntime } from "../../src/tool-calling/grammar/recognizer.js";
import { TokenMasker } from "../../src/tool-calling/grammar/token-mask.js";
import type { Vocabulary } from "../../src/tool-calling/grammar/vocabulary.js";
import { GrammarBuilder, grammarFromJson, grammarToJson } from "../../src/tool-calling/grammar/ir.js";
import { JsonSchemaCompiler } from "../../src/tool-calling/grammar/json-schema.js";
import { compileValue, createAjv2020, nessoVocabulary, seededRandom } from "./grammar-helpers.js";

let vocabulary: Vocabulary;
const tokenIdByBytes = new Map<string, number>();

/** Returns the id of the ordinary token whose bytes are exactly `text` (UTF-8 or a byte list). */
function tokenId(text: string | number[]): number {
  const key = Buffer.from(typeof text === "string" ? Buffer.from(text, "utf8") : Uint8Array.from(text)).toString("latin1");
  const id = tokenIdByBytes.get(key);
  if (id === undefined) throw new Error(`no single token for ${JSON.stringify(text)}`);
  return id;
}

function maskerFor(schema: unknown): { masker: TokenMasker; recognizer: ByteRecognizer } {
  const { runtime } = compileValue(schema);
  return { masker: new TokenMasker(vocabulary, runtime), recognizer: new ByteRecognizer(runtime) };
}

function allowed(masker: TokenMasker, recognizer: ByteRecognizer, text: string | number[]): boolean {
  return masker.mask(recognizer.state)[tokenId(text)] === 1;
}

beforeAll(() => {
  vocabulary = nessoVocabulary();
  for (let id = 0; id < vocabulary.size; id++) {
    const bytes = vocabulary.tokenBytes(id);
    if (bytes) tokenIdByBytes.set(Buffer.from(bytes).toString("latin1"), id);
  }
});

describe("vocabulary", () => {
  it("decodes byte-level BPE tokens to bytes", () => {
    expect(vocabulary.size).toBe(128262);
    expect(vocabulary.maxTokenBytes).toBe(128);
    expect(new TextDecoder().decode(vocabulary.tokenBytes(tokenId(" \""))!)).toBe(' "');
    expect(Array.from(vocabulary.tokenBytes(tokenId("è"))!)).toEqual([0xc3, 0xa8]);
    expect(vocabulary.tokenBytes(128256)).toBeNull();
    expect(vocabulary.addedTokenId("<tool_call>")).toBe(128260);
  });

  it("builds a trie that holds every ordinary token once", () => {
    const { tokenIds, nodeCount } = vocabulary.trie;
    expect(tokenIds.length).toBe(128000);
    expect(new Set(tokenIds).size).toBe(128000);
    expect(nodeCount).toBeGreaterThan(128000);
  });
});

describe("token masks", () => {
  const schema = {
    type: "object",
    properties: {
      city: { type: "string" },
      inner: { type: "object", properties: { a: { type: "string" } }, required: ["a"], additionalProperties: false },
      note: { type: "string" },
    },
    required: ["city"],
    additionalProperties: false,
  };

  it("matches checking every token on its own", () => {
    const { masker, recognizer } = maskerFor(schema);
    for (const prefix of ["", "{", '{"city": "Ro', '{"city":"x"', '{"city":"x","inner":{"a":"y"}', '{"city":"caff\u00e8']) {
      const state = recognizer.clone();
      expect(state.acceptBytes(prefix), prefix).toBe(true);
      const mask = masker.compute(state.state);
      const mismatches: number[] = [];
      for (let id = 0; id < vocabulary.size; id++) {
        const bytes = vocabulary.tokenBytes(id);
        const expected = bytes !== null && state.clone().acceptBytes(bytes) ? 1 : 0;
        if (mask[id] !== expected) mismatches.push(id);
      }
      expect(mismatches, `prefix ${JSON.stringify(prefix)}`).toEqual([]);
    }
  });

  it("allows tokens that span grammar elements", () => {
    const { masker, recognizer } = maskerFor(schema);
    recognizer.acceptBytes('{"city":"Roma');
    expect(allowed(masker, recognizer, '"}')).toBe(true); // closes the string and the object
    expect(allowed(masker, recognizer, '","')).toBe(true); // closes the string and opens the next key
    expect(allowed(masker, recognizer, '"},')).toBe(false); // nothing may follow the root object

    const nested = recognizer.clone();
    nested.acceptBytes('","inner":{"a":"x');
    expect(allowed(masker, nested, '"},')).toBe(true);
    expect(allowed(masker, nested, '"}}')).toBe(true);
    const afterInner = nested.clone();
    afterInner.acceptBytes('"');
    expect(allowed(masker, afterInner, '},"')).toBe(true); // "note" may follow
  });

  it("rejects spanning tokens where the next element does not fit", () => {
    const { masker, recognizer } = maskerFor({
      type: "object",
      properties: { inner: { type: "object", properties: { a: { type: "string" } }, required: ["a"], additionalProperties: false } },
      required: ["inner"],
      additionalProperties: false,
    });
    recognizer.acceptBytes('{"inner":{"a":"x"');
    expect(allowed(masker, recognizer, "}}")).toBe(true);
    expect(allowed(masker, recognizer, '},"')).toBe(false); // no property may follow "inner"
    expect(allowed(masker, recognizer, "},{")).toBe(false);
  });

  it("handles a UTF-8 character split across tokens", () => {
    const { masker, recognizer } = maskerFor({ type: "string" });
    recognizer.acceptBytes('"citt');
    expect(allowed(masker, recognizer, [0xc3])).toBe(true); // first byte of "à"
    expect(allowed(masker, recognizer, [0xa0])).toBe(false); // a continuation byte cannot start a character
    expect(recognizer.accept(0xc3)).toBe(true);
    expect(allowed(masker, recognizer, [0xa0])).toBe(true);
    expect(allowed(masker, recognizer, "a")).toBe(false);
    expect(allowed(masker, recognizer, '"')).toBe(false);
    expect(recognizer.accept(0xa0)).toBe(true);
    expect(allowed(masker, recognizer, '"')).toBe(true);

    // An emoji in two tokens: F0 9F, then 98 then 80.
    const emoji = new ByteRecognizer(recognizer.runtime);
    emoji.acceptBytes('"');
    expect(allowed(masker, emoji, [0xf0, 0x9f])).toBe(true);
    emoji.acceptBytes(Uint8Array.from([0xf0, 0x9f]));
    expect(allowed(masker, emoji, [0x98])).toBe(true);
    expect(allowed(masker, emoji, '"')).toBe(false);
    emoji.acceptBytes(Uint8Array.from([0x98, 0x80]));
    expect(allowed(masker, emoji, '"')).toBe(true);
  });

  it("allows an enum value spelled across tokens", () => {
    const { masker, recognizer } = maskerFor({ enum: ["città", "perché"] });
    recognizer.acceptBytes('"');
    expect(allowed(masker, recognizer, "ci")).toBe(true);
    expect(allowed(masker, recognizer, "per")).toBe(true);
    expect(allowed(masker, recognizer, "read")).toBe(false);
    recognizer.acceptBytes("citt");
    expect(allowed(masker, recognizer, "à")).toBe(true);
    expect(allowed(masker, recognizer, "è")).toBe(false);
  });

  it("allows special tokens only at the end of the output", () => {
    const grammar = JsonOutputGrammar.compile({ type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] }, { vocabulary });
    const constraint = grammar.createConstraint();
    const imEnd = vocabulary.addedTokenId("<|im_end|>")!;
    const toolCall = vocabulary.addedTokenId("<tool_call>")!;
    const feed = (text: string) => {
      for (const id of [...new TextEncoder().encode(text)].map((b) => tokenId([b]))) constraint.accept(id);
    };
    let mask = constraint.mask()!;
    expect(mask[imEnd]).toBe(0);
    expect(mask[toolCall]).toBe(0);
    expect(mask[128000]).toBe(0);
    feed('{"ok": true');
    mask = constraint.mask()!;
    expect(mask[imEnd]).toBe(0);
    feed("}");
    mask = constraint.mask()!;
    expect(mask[imEnd]).toBe(1);
    expect(mask[tokenId("\n")]).toBe(1);
    expect(mask[toolCall]).toBe(0);
    expect(mask[tokenId("}")]).toBe(0);
    expect(constraint.isComplete()).toBe(false);
    constraint.accept(imEnd);
    expect(constraint.isComplete()).toBe(true);
  });

  it("random token walks produce JSON that validates", () => {
    const ajv = createAjv2020();
    const random = seededRandom(42);
    const schemas = [
      {
        type: "object",
        properties: {
          città: { type: "string", maxLength: 12 },
          giorni: { type: "integer", minimum: 1, maximum: 31 },
          tags: { type: "array", items: { enum: ["mare", "montagna", "lago"] }, maxItems: 3 },
          meteo: { anyOf: [{ type: "null" }, { type: "number", minimum: -10, maximum: 45 }] },
        },
        required: ["città", "giorni"],
        additionalProperties: false,
      },
      {
        type: "array",
        items: { type: "object", properties: { when: { type: "string", format: "date" }, ok: { type: "boolean" } }, required: ["when"] },
        minItems: 1,
        maxItems: 2,
      },
    ];
    for (const schema of schemas) {
      const grammar = JsonOutputGrammar.compile(schema, { vocabulary, maxWhitespace: 1 });
      const validate = ajv.compile(schema);
      for (let walk = 0; walk < 4; walk++) {
        const constraint = grammar.createConstraint();
        const bytes: number[] = [];
        for (let step = 0; step < 400 && !constraint.isComplete(); step++) {
          const mask = constraint.mask()!;
          const choices: number[] = [];
          for (let id = 0; id < mask.length; id++) if (mask[id]) choices.push(id);
          expect(choices.length, `dead end after ${JSON.stringify(Buffer.from(bytes).toString())}`).toBeGreaterThan(0);
          const id = choices[Math.floor(random() * choices.length)];
          constraint.accept(id);
          expect(constraint.failure).toBeNull();
          bytes.push(...(vocabulary.tokenBytes(id) ?? []));
        }
        expect(constraint.isComplete()).toBe(true);
        const text = new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes));
        expect(validate(JSON.parse(text)), `${text}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      }
    }
  });

  it("reuses cached masks inside a long string", () => {
    const { masker, recognizer } = maskerFor({ type: "object", properties: { text: { type: "string" } }, required: ["text"] });
    recognizer.acceptBytes('{"text": "');
    masker.mask(recognizer.state);
    const walksBefore = masker.walks;
    for (const word of ["Nel ", "mezzo ", "del ", "cammin ", "di ", "nostra ", "vita"]) {
      recognizer.acceptBytes(word);
      masker.mask(recognizer.state);
    }
    expect(masker.walks).toBe(walksBefore);
  });

  it("measures mask time on the Llama-3 vocabulary", () => {
    // Reported, not asserted: the numbers go into the benchmark notes.
    const { runtime } = compileValue({
      type: "object",
      properties: { path: { type: "string" }, content: { type: "string" } },
      required: ["path", "content"],
    });
    const masker = new TokenMasker(vocabulary, runtime);
    const lines: string[] = [];
    for (const [label, prefix] of [
      ["after {", "{"],
      ["at an object key", '{"path": "a", '],
      ["inside a string", '{"path": "a", "content": "Ciao, come st'],
    ] as const) {
      const recognizer = new ByteRecognizer(runtime);
      recognizer.acceptBytes(prefix);
      let started = performance.now();
      masker.compute(recognizer.state);
      const firstMs = performance.now() - started;
      const runs = 5;
      started = performance.now();
      for (let i = 0; i < runs; i++) masker.compute(recognizer.state);
      const warmMs = (performance.now() - started) / runs;
      masker.mask(recognizer.state);
      started = performance.now();
      masker.mask(recognizer.state);
      const cachedMs = performance.now() - started;
      lines.push(`${label}: first ${firstMs.toFixed(2)} ms, uncached ${warmMs.toFixed(2)} ms, cached ${cachedMs.toFixed(3)} ms`);
    }
    console.info(lines.join("\n"));
    expect(lines).toHaveLength(3);
  });
});

describe("grammar IR", () => {
  it("round-trips through JSON", () => {
    const builder = new GrammarBuilder();
    const root = new JsonSchemaCompiler(builder).compile({ type: "object", properties: { n: { type: "integer", maximum: 9 } } });
    const grammar = builder.build(root);
    const copy = grammarFromJson(JSON.parse(JSON.stringify(grammarToJson(grammar))));
    expect(copy).toEqual(grammar);
    const recognizer = new ByteRecognizer(new GrammarRuntime(copy));
    expect(recognizer.acceptBytes('{"n": 9}')).toBe(true);
    expect(recognizer.isAccepting()).toBe(true);
  });

  it("rejects JSON with an out-of-range rule reference", () => {
    const builder = new GrammarBuilder();
    const grammar = builder.build(new JsonSchemaCompiler(builder).compile({ type: "array", items: { type: "boolean" } }));
    const json = grammarToJson(grammar);
    const kinds = json.elementKind as number[];
    const values = json.elementValue as number[];
    const ruleElement = kinds.indexOf(2);
    values[ruleElement] = 999;
    expect(() => grammarFromJson(json)).toThrow(/refers to rule 999/);
  });
});
