import { describe, expect, it } from "vitest";

import {
  ToolCallStreamParser,
  collectParserEvents,
  parseToolCallOutput,
  type ParsedOutput,
  type ParserEvent,
} from "../../src/tool-calling/parser.js";

interface ParserCase {
  name: string;
  output: string;
  /** Expected prose, compared after trim(). */
  text: string;
  calls: Array<{ name: string; arguments: Record<string, unknown> }>;
  /** Expected number of parse errors, and a fragment each message must contain. */
  errors?: string[];
  truncated?: boolean;
}

const readNote = '{"name": "read_text_file", "arguments": {"path": "note.txt"}}';

const cases: ParserCase[] = [
  { name: "prose only", output: "Ciao! Come posso aiutarti oggi?", text: "Ciao! Come posso aiutarti oggi?", calls: [] },
  { name: "empty output", output: "", text: "", calls: [] },
  {
    name: "well-formed call",
    output: `<tool_call>\n${readNote}\n</tool_call>`,
    text: "",
    calls: [{ name: "read_text_file", arguments: { path: "note.txt" } }],
  },
  {
    name: "leading newline before the call",
    output: `\n\n<tool_call>\n${readNote}\n</tool_call>\n`,
    text: "",
    calls: [{ name: "read_text_file", arguments: { path: "note.txt" } }],
  },
  {
    name: "prose then call",
    output: `Leggo il file.\n<tool_call>\n${readNote}\n</tool_call>`,
    text: "Leggo il file.",
    calls: [{ name: "read_text_file", arguments: { path: "note.txt" } }],
  },
  {
    name: "call then prose",
    output: `<tool_call>\n${readNote}\n</tool_call>\nFatto, ecco il contenuto.`,
    text: "Fatto, ecco il contenuto.",
    calls: [{ name: "read_text_file", arguments: { path: "note.txt" } }],
  },
  {
    name: "two blocks",
    output: `<tool_call>\n${readNote}\n</tool_call>\n<tool_call>\n{"name": "list_directory", "arguments": {"path": "."}}\n</tool_call>`,
    text: "",
    calls: [
      { name: "read_text_file", arguments: { path: "note.txt" } },
      { name: "list_directory", arguments: { path: "." } },
    ],
  },
  {
    name: "several calls as a JSON array",
    output: `<tool_call>\n[{"name": "get_weather", "arguments": {"city": "Roma"}}, {"name": "get_weather", "arguments": {"city": "Milano"}}]\n</tool_call>`,
    text: "",
    calls: [
      { name: "get_weather", arguments: { city: "Roma" } },
      { name: "get_weather", arguments: { city: "Milano" } },
    ],
  },
  {
    name: "several objects one after another in a block",
    output: `<tool_call>\n{"name": "a", "arguments": {}}\n{"name": "b", "arguments": {"n": 2}}\n</tool_call>`,
    text: "",
    calls: [
      { name: "a", arguments: {} },
      { name: "b", arguments: { n: 2 } },
    ],
  },
  {
    name: "Italian accents and emoji in arguments",
    output: `Perché no? 😀\n<tool_call>\n{"name": "write_file", "arguments": {"path": "città/perché.txt", "content": "È così: caffè ☕, pizza 🍕, bandiera 🇮🇹, l'ultimo"}}\n</tool_call>`,
    text: "Perché no? 😀",
    calls: [
      {
        name: "write_file",
        arguments: { path: "città/perché.txt", content: "È così: caffè ☕, pizza 🍕, bandiera 🇮🇹, l'ultimo" },
      },
    ],
  },
  {
    name: "unicode escapes with a surrogate pair",
    output: '<tool_call>{"name": "echo", "arguments": {"message": "caff\\u00e8 \\ud83d\\ude00"}}</tool_call>',
    text: "",
    calls: [{ name: "echo", arguments: { message: "caffè 😀" } }],
  },
  {
    name: "code fence inside the block",
    output: `<tool_call>\n\`\`\`json\n${readNote}\n\`\`\`\n</tool_call>`,
    text: "",
    calls: [{ name: "read_text_file", arguments: { path: "note.txt" } }],
  },
  {
    name: "bare code fence inside the block",
    output: `<tool_call>\n\`\`\`\n${readNote}\n\`\`\`\n</tool_call>`,
    text: "",
    calls: [{ name: "read_text_file", arguments: { path: "note.txt" } }],
  },
  {
    name: "code fence around the whole block",
    output: `Ecco:\n\`\`\`json\n<tool_call>\n${readNote}\n</tool_call>\n\`\`\`\nAttendo il risultato.`,
    text: "Ecco:\n\nAttendo il risultato.",
    calls: [{ name: "read_text_file", arguments: { path: "note.txt" } }],
  },
  {
    name: "prose code fence with no call",
    output: "Esempio:\n```python\nprint('ciao')\n```\nFine.",
    text: "Esempio:\n```python\nprint('ciao')\n```\nFine.",
    calls: [],
  },
  {
    name: "parameters instead of arguments",
    output: '<tool_call>{"name": "search_files", "parameters": {"path": ".", "pattern": "*.md"}}</tool_call>',
    text: "",
    calls: [{ name: "search_files", arguments: { path: ".", pattern: "*.md" } }],
  },
  {
    name: "args instead of arguments",
    output: '<tool_call>{"name": "search_files", "args": {"path": "."}}</tool_call>',
    text: "",
    calls: [{ name: "search_files", arguments: { path: "." } }],
  },
  {
    name: "arguments as a JSON string",
    output: '<tool_call>{"name": "read_text_file", "arguments": "{\\"path\\": \\"perché.txt\\"}"}</tool_call>',
    text: "",
    calls: [{ name: "read_text_file", arguments: { path: "perché.txt" } }],
  },
  {
    name: "arguments string with a trailing comma",
    output: '<tool_call>{"name": "read_text_file", "arguments": "{\\"path\\": \\"a.txt\\",}"}</tool_call>',
    text: "",
    calls: [{ name: "read_text_file", arguments: { path: "a.txt" } }],
  },
  {
    name: "trailing commas in objects",
    output: '<tool_call>\n{"name": "read_text_file", "arguments": {"path": "a.txt", "head": 5,},}\n</tool_call>',
    text: "",
    calls: [{ name: "read_text_file", arguments: { path: "a.txt", head: 5 } }],
  },
  {
    name: "trailing comma in an array of calls",
    output: '<tool_call>[{"name": "a", "arguments": {"x": [1, 2,],}}, {"name": "b", "arguments": {}},]</tool_call>',
    text: "",
    calls: [
      { name: "a", arguments: { x: [1, 2] } },
      { name: "b", arguments: {} },
    ],
  },
  {
    name: "missing closing tag at the end",
    output: `Un momento.\n<tool_call>\n${readNote}\n`,
    text: "Un momento.",
    calls: [{ name: "read_text_file", arguments: { path: "note.txt" } }],
  },
  {
    name: "missing closing brace and tag at the end",
    output: '<tool_call>\n{"name": "read_text_file", "arguments": {"path": "note.txt"}',
    text: "",
    calls: [{ name: "read_text_file", arguments: { path: "note.txt" } }],
  },
  {
    name: "truncated output inside a call",
    output: '<tool_call>\n{"name": "write_file", "arguments": {"path": "a.txt", "content": "Lorem ipsum dolor',
    text: "",
    calls: [],
    errors: ["token limit"],
    truncated: true,
  },
  {
    name: "truncated output after a complete call",
    output: `<tool_call>\n${readNote}\n`,
    text: "",
    calls: [{ name: "read_text_file", arguments: { path: "note.txt" } }],
    truncated: true,
  },
  {
    name: "output cut inside a string",
    output: '<tool_call>\n{"name": "write_file", "arguments": {"content": "ciao',
    text: "",
    calls: [],
    errors: ["not terminated"],
  },
  {
    name: "OpenAI function wrapper",
    output: '<tool_call>{"type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Torino\\"}"}}</tool_call>',
    text: "",
    calls: [{ name: "get_weather", arguments: { city: "Torino" } }],
  },
  {
    name: "arguments beside the name",
    output: '<tool_call>{"name": "read_text_file", "path": "note.txt"}</tool_call>',
    text: "",
    calls: [{ name: "read_text_file", arguments: { path: "note.txt" } }],
  },
  {
    name: "single quotes and Python literals",
    output: "<tool_call>{'name': 'set_flag', 'arguments': {'on': True, 'off': False, 'value': None}}</tool_call>",
    text: "",
    calls: [{ name: "set_flag", arguments: { on: true, off: false, value: null } }],
  },
  {
    name: "unquoted keys",
    output: '<tool_call>{name: "read_text_file", arguments: {path: "a.txt"}}</tool_call>',
    text: "",
    calls: [{ name: "read_text_file", arguments: { path: "a.txt" } }],
  },
  {
    name: "no arguments key",
    output: '<tool_call>{"name": "list_allowed_directories"}</tool_call>',
    text: "",
    calls: [{ name: "list_allowed_directories", arguments: {} }],
  },
  {
    name: "null arguments",
    output: '<tool_call>{"name": "list_allowed_directories", "arguments": null}</tool_call>',
    text: "",
    calls: [{ name: "list_allowed_directories", arguments: {} }],
  },
  {
    name: "closing tag inside a string argument",
    output: '<tool_call>{"name": "write_file", "arguments": {"path": "doc.md", "content": "End a call with </tool_call> and open with <tool_call>."}}</tool_call>Scritto.',
    text: "Scritto.",
    calls: [
      { name: "write_file", arguments: { path: "doc.md", content: "End a call with </tool_call> and open with <tool_call>." } },
    ],
  },
  {
    name: "new call opens before the previous closed",
    output: `<tool_call>\n{"name": "a", "arguments": {}}\n<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call>`,
    text: "",
    calls: [
      { name: "a", arguments: {} },
      { name: "b", arguments: {} },
    ],
  },
  {
    name: "angle brackets in prose",
    output: "Se 3 < 4 allora <toolbox> non è <tool_cal un tag.",
    text: "Se 3 < 4 allora <toolbox> non è <tool_cal un tag.",
    calls: [],
  },
  { name: "empty block", output: "<tool_call>\n</tool_call>", text: "", calls: [], errors: ["empty"] },
  {
    name: "prose inside a block",
    output: "<tool_call>\nleggi il file note.txt\n</tool_call>",
    text: "",
    calls: [],
    errors: ["not valid JSON"],
  },
  {
    name: "call without a name",
    output: '<tool_call>{"arguments": {"path": "a.txt"}}</tool_call>',
    text: "",
    calls: [],
    errors: ['no "name"'],
  },
  {
    name: "arguments that are an array",
    output: '<tool_call>{"name": "a", "arguments": [1, 2]}</tool_call>',
    text: "",
    calls: [],
    errors: ["must be a JSON object"],
  },
  {
    name: "one good and one bad element",
    output: '<tool_call>[{"name": "a", "arguments": {}}, 42]</tool_call>',
    text: "",
    calls: [{ name: "a", arguments: {} }],
    errors: ["must be a JSON object"],
  },
  {
    name: "unterminated string then prose",
    output: '<tool_call>{"name": "a", "arguments": {"x": "b}}</tool_call>\nDopo.',
    text: "Dopo.",
    calls: [],
    errors: ["not terminated"],
  },
];

/** A small deterministic generator (mulberry32) so chunkings repeat across runs. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits into random chunks of 1–7 UTF-16 units, so chunks may even split a surrogate pair. */
function randomChunks(text: string, random: () => number): string[] {
  const chunks: string[] = [];
  for (let i = 0; i < text.length; ) {
    const size = 1 + Math.floor(random() * 7);
    chunks.push(text.slice(i, i + size));
    i += size;
  }
  return chunks;
}

function streamChunks(chunks: string[], truncated = false): { result: ParsedOutput; events: ParserEvent[] } {
  const parser = new ToolCallStreamParser();
  const events: ParserEvent[] = [];
  for (const chunk of chunks) events.push(...parser.push(chunk));
  events.push(...parser.end({ truncated }));
  return { result: collectParserEvents(events), events };
}

describe("tool call parser", () => {
  it("has a table of at least 30 outputs", () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  describe.each(cases)("$name", (testCase) => {
    it("parses the whole output", () => {
      const result = parseToolCallOutput(testCase.output, { truncated: testCase.truncated });

      expect(result.text.trim()).toBe(testCase.text);
      expect(result.calls.map(({ name, arguments: args }) => ({ name, arguments: args }))).toEqual(testCase.calls);
      const expectedErrors = testCase.errors ?? [];
      expect(result.errors).toHaveLength(expectedErrors.length);
      expectedErrors.forEach((fragment, index) => expect(result.errors[index].message).toContain(fragment));
    });

    it("gives the same result when streamed in random chunks", () => {
      const whole = parseToolCallOutput(testCase.output, { truncated: testCase.truncated });
      for (let seed = 1; seed <= 25; seed++) {
        const chunks = randomChunks(testCase.output, createRandom(seed));
        const { result } = streamChunks(chunks, testCase.truncated);
        expect(result, `seed ${seed}, chunks ${JSON.stringify(chunks)}`).toEqual(whole);
      }
    });

    it("gives the same result one character at a time", () => {
      const whole = parseToolCallOutput(testCase.output, { truncated: testCase.truncated });
      const { result } = streamChunks(Array.from(testCase.output), testCase.truncated);
      expect(result).toEqual(whole);
    });
  });
});

describe("tool call parser streaming", () => {
  it("reports the open tag before the block ends", () => {
    const parser = new ToolCallStreamParser();

    const first = parser.push("Leggo subito. <tool");
    expect(first).toEqual([{ kind: "text", text: "Leggo subito. " }]);
    expect(parser.insideToolCall).toBe(false);

    const second = parser.push('_call>\n{"name": ');
    expect(second).toEqual([{ kind: "call_open" }]);
    expect(parser.insideToolCall).toBe(true);

    const third = parser.push('"a", "arguments": {}}\n</tool_call>');
    expect(third.map((event) => event.kind)).toEqual(["call"]);
    expect(parser.insideToolCall).toBe(false);
  });

  it("emits prose before the output ends", () => {
    const parser = new ToolCallStreamParser();
    const events = parser.push("Ciao, come stai? 😀");
    expect(collectParserEvents(events).text).toBe("Ciao, come stai? 😀");
  });

  it("numbers call ids with the prefix", () => {
    const result = parseToolCallOutput(
      '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{}</tool_call>',
      { idPrefix: "step2_" },
    );
    expect(result.calls.map((call) => call.id)).toEqual(["step2_1"]);
    expect(result.errors.map((error) => error.id)).toEqual(["step2_2"]);
  });

  it("ignores pushes after end", () => {
    const parser = new ToolCallStreamParser();
    parser.end();
    expect(parser.push("<tool_call>{}")).toEqual([]);
    expect(parser.end()).toEqual([]);
  });

  it("keeps the raw block text for errors", () => {
    const result = parseToolCallOutput("<tool_call>\nnon è JSON\n</tool_call>");
    expect(result.errors[0].raw).toBe("\nnon è JSON\n");
  });
});
