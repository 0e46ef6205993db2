// Constrained decoding end to end: the tiny random-weight checkpoint (whose unconstrained output is
// noise) generates through the native engine with a grammar mask at every step. In `required` mode
// over the live tool lists of the filesystem, memory, everything and fetch-mcp servers, and in
// whole-output JSON mode over ten extraction schemas, every output must parse, name an offered tool
// and validate with ajv (formats included). Sampling runs at temperature 1, so the random model
// wanders through the grammar instead of taking one path.

import type { ErrorObject, ValidateFunction } from "ajv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineChatModel } from "../../src/engine/chat-model.js";
import { Model } from "../../src/engine/model.js";
import type { ChatToolDefinition, FinishRecord, GenerateOptions } from "../../src/engine/types.js";
import type { RegisteredTool } from "../../src/host/types.js";
import type { GrammarConstraint } from "../../src/tool-calling/grammar/constraint.js";
import { JsonOutputGrammar } from "../../src/tool-calling/grammar/json-output-grammar.js";
import type { JsonGrammarOptions } from "../../src/tool-calling/grammar/json-rules.js";
import { loadModelGrammars } from "../../src/tool-calling/grammar/model-grammars.js";
import { ToolCallGrammar } from "../../src/tool-calling/grammar/tool-call-grammar.js";
import type { Vocabulary } from "../../src/tool-calling/grammar/vocabulary.js";
import { parseToolCallOutput } from "../../src/tool-calling/parser.js";
import { toChatToolDefinitions } from "../../src/tool-calling/tool-definitions.js";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { extractCases, schemaFeatures } from "./grammar-generation-schemas.js";
import { createAjv2020, createAjvDraft07, listServerTools, type ServerTool } from "./grammar-helpers.js";

const SERVERS = ["filesystem", "memory", "everything", "fetch"] as const;
const GENERATIONS_PER_SERVER = 250;
const GENERATIONS_PER_SCHEMA = 20;

// A random model inside a JSON string almost never samples a closing quote, and it often takes
// whitespace where the grammar offers it, so free-form parts run to their caps. Small caps keep
// each generation to tens of tokens. The masks of the states the runs revisit stay cached across
// generations (2,048 masks of 128,262 bytes, about 260 MB per grammar).
const GRAMMAR_CAPS: JsonGrammarOptions & { cacheSize: number } = {
  maxStringLength: 12,
  maxArrayItems: 2,
  maxObjectMembers: 2,
  maxWhitespace: 1,
  maxIntegerDigits: 6,
  maxFractionDigits: 4,
  cacheSize: 2048,
};
/**
 * Calls allowed in one turn. Allowing a second call adds about a quarter more tokens per generation,
 * and the unit tests of the tool-call grammar and the parser cover several blocks.
 */
const MAX_CALLS = 1;
/** Far above the longest output the caps allow, so no generation ends by the token limit. */
const MAX_TOKENS = 2000;

const REQUESTS = [
  "Leggi il file appunti.txt e dimmi cosa contiene.",
  "Create an entity for the city of Napoli 🍕 with one observation.",
  "Scarica la pagina https://example.org e riassumila in tre righe.",
  "Add 2 and 3, then echo «perché sì» back to me.",
  "Elenca le cartelle che puoi vedere, per favore.",
];

/**
 * Sessions that generate at the same time. Sampling and mask computation run on the JS thread and
 * evaluation on the native pool, so a second session overlaps the two.
 */
const SESSIONS = 2;

let model: Model;
let chats: EngineChatModel[] = [];
let vocabulary: Vocabulary;
let serverTools: Record<string, ServerTool[]>;
/** Generated tokens per generation, by kind of run. */
const tokenCounts = { required: [] as number[], extract: [] as number[] };
const runStarted = performance.now();

beforeAll(async () => {
  const modelDir = tinyCheckpoint("F32");
  serverTools = await listServerTools();
  model = await Model.load(modelDir);
  chats = Array.from({ length: SESSIONS }, () => new EngineChatModel(model));
  vocabulary = (await loadModelGrammars(modelDir, model.config.vocabSize)).vocabulary;
});

afterAll(() => {
  for (const chat of chats) chat.dispose();
  model?.dispose();
  for (const [kind, counts] of Object.entries(tokenCounts)) {
    if (counts.length > 0) console.info(`grammar generation, ${kind}: ${describeDistribution(counts)}`);
  }
  console.info(`grammar generation: ${((performance.now() - runStarted) / 1000).toFixed(1)} s in total`);
});

interface Generation {
  finish: FinishRecord;
  constraint: GrammarConstraint;
}

/**
 * Runs `count` jobs over the sessions, each session taking every SESSIONS-th index, and returns the
 * results in index order.
 */
async function runOnSessions<T>(count: number, job: (chat: EngineChatModel, index: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  await Promise.all(
    chats.map(async (chat, lane) => {
      for (let index = lane; index < count; index += chats.length) results[index] = await job(chat, index);
    }),
  );
  return results;
}

/** Runs one constrained generation to its finish record. */
async function generate(chat: EngineChatModel, prompt: string, constraint: GrammarConstraint, seed: number, counts: number[]): Promise<Generation> {
  const options: GenerateOptions = { maxTokens: MAX_TOKENS, temperature: 1, seed, constraint };
  let finish: FinishRecord | undefined;
  for await (const record of chat.generate(prompt, options)) {
    if (record.kind === "finish") finish = record;
  }
  if (finish === undefined) throw new Error(`generation with seed ${seed} yielded no finish record`);
  counts.push(finish.generatedTokens);
  return { finish, constraint };
}

/** Problems with how a generation ended: not by the grammar's end of turn, or with the grammar turned off. */
function endProblems({ finish, constraint }: Generation): string[] {
  const problems: string[] = [];
  if (finish.finishReason !== "stop") problems.push(`finished by ${finish.finishReason} after ${finish.generatedTokens} tokens, not by the grammar`);
  if (constraint.failure !== null) problems.push(`the constraint turned off: ${constraint.failure}`);
  else if (!constraint.isComplete()) problems.push("the grammar was not complete at the end");
  return problems;
}

function describeAjvErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((error) => `${error.instancePath || "/"} ${error.message ?? error.keyword} ${JSON.stringify(error.params)}`).join("; ");
}

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}

function describeDistribution(counts: number[]): string {
  const sorted = [...counts].sort((a, b) => a - b);
  const mean = sorted.reduce((sum, count) => sum + count, 0) / sorted.length;
  return (
    `${sorted.length} generations, tokens per generation min ${sorted[0]}, median ${percentile(sorted, 0.5)}, ` +
    `p90 ${percentile(sorted, 0.9)}, p99 ${percentile(sorted, 0.99)}, max ${sorted[sorted.length - 1]}, mean ${mean.toFixed(1)}`
  );
}

interface ToolCallTally {
  generations: number;
  parsed: number;
  knownNames: number;
  valid: number;
  failures: string[];
}

const toolCallTallies = new Map<string, ToolCallTally>();
const extractTallies = new Map<string, { generations: number; valid: number }>();

/** Splits an output into the text of each `<tool_call>` block and the text around the blocks. */
function splitBlocks(text: string): { blocks: string[]; outside: string } {
  const blocks: string[] = [];
  const outside = text.replace(/<tool_call>([\s\S]*?)<\/tool_call>/g, (_block, body: string) => {
    blocks.push(body);
    return "";
  });
  return { blocks, outside };
}

/**
 * Checks one required-mode output: it ends by the grammar, every block is strict JSON, the project's
 * parser reads the same calls, and each call names an offered tool whose inputSchema accepts its
 * arguments. Adds the outcome to `tally`.
 */
function checkToolCallOutput(generation: Generation, validators: Map<string, ValidateFunction>, tally: ToolCallTally, context: string): void {
  const { text } = generation.finish;
  const problems = endProblems(generation);
  const { blocks, outside } = splitBlocks(text);
  if (blocks.length === 0) problems.push("no <tool_call> block");
  if (outside.trim() !== "") problems.push(`text outside the blocks: ${JSON.stringify(outside)}`);

  const strictCalls: unknown[] = [];
  for (const block of blocks) {
    try {
      strictCalls.push(JSON.parse(block));
    } catch (error) {
      problems.push(`block ${JSON.stringify(block)} is not JSON: ${(error as Error).message}`);
    }
  }
  const parsed = parseToolCallOutput(text);
  for (const error of parsed.errors) problems.push(`parser error: ${error.message}`);
  if (parsed.calls.length !== blocks.length) problems.push(`the parser read ${parsed.calls.length} calls from ${blocks.length} blocks`);
  const parsedOk = problems.length === 0 && strictCalls.length === blocks.length;

  let namesOk = parsed.calls.length > 0;
  let validOk = parsed.calls.length > 0;
  parsed.calls.forEach((call, i) => {
    const strict = strictCalls[i] as { name?: unknown; arguments?: unknown } | undefined;
    if (strict === undefined || strict.name !== call.name || JSON.stringify(strict.arguments) !== JSON.stringify(call.arguments)) {
      problems.push(`call ${i}: the parser read ${JSON.stringify(call)} but the block is ${JSON.stringify(strict)}`);
    }
    const validate = validators.get(call.name);
    if (validate === undefined) {
      namesOk = false;
      validOk = false;
      problems.push(`call ${i}: unknown tool ${JSON.stringify(call.name)}`);
      return;
    }
    if (!validate(call.arguments)) {
      validOk = false;
      problems.push(`call ${i} to ${call.name}: ajv rejects ${JSON.stringify(call.arguments)}: ${describeAjvErrors(validate.errors)}`);
    }
  });

  tally.generations++;
  if (parsedOk) tally.parsed++;
  if (parsedOk && namesOk) tally.knownNames++;
  if (parsedOk && namesOk && validOk && problems.length === 0) tally.valid++;
  if (problems.length > 0) tally.failures.push(`${context}\n  output: ${JSON.stringify(text)}\n  ${problems.join("\n  ")}`);
}

/** Formats the first failures of a run for an assertion message. */
function failureReport(failures: string[]): string {
  const firstFailures = failures.slice(0, 5).join("\n");
  return failures.length > 5 ? `${firstFailures}\n… and ${failures.length - 5} more failures` : firstFailures;
}

describe("required-mode tool calls on the tiny model", () => {
  it.each(SERVERS)("%s tool calls parse and validate", async (server) => {
    const tools = serverTools[server];
    const toolNames = tools.map((tool) => tool.name);
    const ajv = createAjvDraft07();
    const validators = new Map(tools.map((tool) => [tool.name, ajv.compile(tool.inputSchema)] as const));
    const registered: RegisteredTool[] = tools.map((tool) => ({ name: tool.name, server, originalName: tool.name, inputSchema: tool.inputSchema }));
    const definitions: ChatToolDefinition[] = toChatToolDefinitions(registered);

    const grammar = ToolCallGrammar.compile({ tools, vocabulary, maxCalls: MAX_CALLS, ...GRAMMAR_CAPS });
    expect(grammar.fallbacks).toEqual([]);
    expect(grammar.dropped).toEqual([]);

    const tally: ToolCallTally = { generations: 0, parsed: 0, knownNames: 0, valid: 0, failures: [] };
    toolCallTallies.set(server, tally);
    const seedBase = SERVERS.indexOf(server) * 10_000;
    const generations = await runOnSessions(GENERATIONS_PER_SERVER, (chat, i) => {
      const prompt = chat.renderChat([{ role: "user", content: REQUESTS[i % REQUESTS.length] }], { tools: definitions });
      return generate(chat, prompt, grammar.createConstraint("required"), seedBase + i, tokenCounts.required);
    });
    generations.forEach((generation, i) => {
      checkToolCallOutput(generation, validators, tally, `seed ${seedBase + i}, ${server} tools [${toolNames.join(", ")}]`);
    });

    const report = failureReport(tally.failures);
    expect(tally.generations).toBe(GENERATIONS_PER_SERVER);
    expect(tally.parsed, report).toBe(GENERATIONS_PER_SERVER);
    expect(tally.knownNames, report).toBe(GENERATIONS_PER_SERVER);
    expect(tally.valid, report).toBe(GENERATIONS_PER_SERVER);
  }, 600_000);

  it("totals 1,000 valid generations", () => {
    const tallies = [...toolCallTallies.values()];
    const total = (key: "generations" | "parsed" | "knownNames" | "valid") => tallies.reduce((sum, tally) => sum + tally[key], 0);
    expect(tallies.length).toBe(SERVERS.length);
    expect(total("generations")).toBe(1000);
    expect(total("parsed")).toBe(1000);
    expect(total("knownNames")).toBe(1000);
    expect(total("valid")).toBe(1000);
  });
});

describe("extract generations on the tiny model", () => {
  it("schemas cover every supported keyword", () => {
    const used = new Set(extractCases.flatMap((entry) => [...schemaFeatures(entry.schema)]));
    const supported = [
      "properties",
      "required",
      "additionalProperties:false",
      "additionalProperties:true",
      "additionalProperties:schema",
      "enum",
      "const",
      "minLength",
      "maxLength",
      "pattern",
      "format:date",
      "format:date-time",
      "format:uri",
      "format:email",
      "minimum",
      "maximum",
      "exclusiveMinimum",
      "exclusiveMaximum",
      "items",
      "minItems",
      "maxItems",
      "prefixItems",
      "anyOf",
      "oneOf",
      "allOf",
      "$ref",
      "$defs",
      "$ref:recursive",
      "type:array-of-types",
      "nullable",
    ];
    expect(supported.filter((feature) => !used.has(feature))).toEqual([]);
    const types = new Set(extractCases.flatMap((entry) => collectTypes(entry.schema)));
    expect([...types].sort()).toEqual(["array", "boolean", "integer", "null", "number", "object", "string"]);
  });

  it.each(extractCases)("$name outputs parse and validate", async ({ name, schema, text }) => {
    const ajv = createAjv2020();
    const validate = ajv.compile(schema);
    const grammar = JsonOutputGrammar.compile(schema, { vocabulary, ...GRAMMAR_CAPS });
    expect(grammar.dropped).toEqual([]);

    const system = `Extract the data from the user's text as one JSON value that validates against this JSON Schema, and nothing else.\nJSON Schema: ${JSON.stringify(schema)}`;
    const prompt = chats[0].renderChat([
      { role: "system", content: system },
      { role: "user", content: text },
    ]);
    const failures: string[] = [];
    const tally = { generations: 0, valid: 0 };
    extractTallies.set(name, tally);
    const seedBase = 100_000 + extractCases.findIndex((entry) => entry.name === name) * 1_000;
    const generations = await runOnSessions(GENERATIONS_PER_SCHEMA, (chat, i) => generate(chat, prompt, grammar.createConstraint(), seedBase + i, tokenCounts.extract));
    generations.forEach((generation, i) => {
      const seed = seedBase + i;
      const output = generation.finish.text;
      const problems = endProblems(generation);
      let value: unknown;
      try {
        value = JSON.parse(output);
        if (!validate(value)) problems.push(`ajv rejects the value: ${describeAjvErrors(validate.errors)}`);
      } catch (error) {
        problems.push(`not JSON: ${(error as Error).message}`);
      }
      tally.generations++;
      if (problems.length === 0) tally.valid++;
      else failures.push(`seed ${seed}, schema ${name}\n  output: ${JSON.stringify(output)}\n  ${problems.join("\n  ")}`);
    });
    expect(tally.generations).toBe(GENERATIONS_PER_SCHEMA);
    expect(tally.valid, failureReport(failures)).toBe(GENERATIONS_PER_SCHEMA);
  }, 300_000);

  it("totals 200 valid generations over 10 schemas", () => {
    expect(extractTallies.size).toBe(10);
    const tallies = [...extractTallies.values()];
    expect(tallies.reduce((sum, tally) => sum + tally.generations, 0)).toBe(200);
    expect(tallies.reduce((sum, tally) => sum + tally.valid, 0)).toBe(200);
  });
});

/** Lists every `type` value in a schema. */
function collectTypes(schema: unknown): string[] {
  if (Array.isArray(schema)) return schema.flatMap(collectTypes);
  if (typeof schema !== "object" || schema === null) return [];
  const types: string[] = [];
  for (const [keyword, value] of Object.entries(schema)) {
    if (keyword === "type") types.push(...(Array.isArray(value) ? value : [value]));
    else if (keyword !== "enum" && keyword !== "const") types.push(...collectTypes(value));
  }
  return types;
}
