// `npm run bench:grammar`: the cost of constrained decoding on the Nesso-shaped checkpoint. It
// measures grammar compilation for the filesystem server's 14 tools, then decode speed with no
// constraint and with an active required-mode tool-call grammar, alternating the two after one
// warm-up run of each (constrainedWarmUpMs reports the constrained one).
//
// Options: --runs N (default 5), --tokens N (decode tokens per run, default 64), --threads N,
// --engine ts|native (token-mask engine; default: NESSO_MCP_GRAMMAR, else native when built).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { EngineChatModel, Model } from "../src/engine/index.js";
import { readModelJson } from "../src/engine/tokenizer.js";
import { ToolCallGrammar, Vocabulary } from "../src/tool-calling/grammar/index.js";
import { cachedCheckpoint, nessoShape } from "../test/fixtures/checkpoint.js";
import { median, parseBenchArgs } from "./measure.js";

const { values } = parseBenchArgs(
  { runs: { type: "string", default: "5" }, tokens: { type: "string", default: "64" }, threads: { type: "string" }, engine: { type: "string" } },
  "Usage: npm run bench:grammar -- [--runs 5] [--tokens 64] [--threads N] [--engine native|ts]",
);
if (values.engine !== undefined) process.env.NESSO_MCP_GRAMMAR = values.engine;
const runs = Number(values.runs);
const decodeTokens = Number(values.tokens);

async function filesystemTools(): Promise<{ name: string; description?: string; inputSchema: Record<string, unknown> }[]> {
  const dir = mkdtempSync(join(tmpdir(), "nesso-bench-grammar-"));
  const client = new Client({ name: "bench", version: "1" });
  const entry = join(import.meta.dirname, "../node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [entry, dir], stderr: "ignore" }));
  try {
    return (await client.listTools()).tools as { name: string; description?: string; inputSchema: Record<string, unknown> }[];
  } finally {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const tools = await filesystemTools();
const dir = cachedCheckpoint({ name: "nesso-bf16-s1", shape: nessoShape, dtype: "BF16", seed: 1 });
const model = await Model.load(dir, { threads: values.threads === undefined ? undefined : Number(values.threads) });
const chat = new EngineChatModel(model);
const vocabulary = Vocabulary.fromTokenizerJson(await readModelJson(dir, "tokenizer.json"), { size: model.config.vocabSize });

// Grammar compilation: the first compile in the process, then warm compiles of the same tool set.
const compileMs: number[] = [];
for (let i = 0; i < runs + 1; i++) {
  const start = performance.now();
  ToolCallGrammar.compile({ tools, vocabulary });
  compileMs.push(performance.now() - start);
}
const grammar = ToolCallGrammar.compile({ tools, vocabulary });
const engine = grammar.masker.engine;

const prompt = chat.renderChat(
  [{ role: "user", content: "Elenca i file nella cartella corrente e leggi note.txt" }],
  { tools: tools.map((tool) => ({ type: "function" as const, function: { name: tool.name, description: tool.description, parameters: tool.inputSchema } })), addGenerationPrompt: true },
);

/** Decode tokens/s of one generation after the prompt is cached (prefill excluded by the engine's own timing). */
async function decodeRate(constrained: boolean, seed: number): Promise<{ rate: number; tokens: number }> {
  const constraint = constrained ? grammar.createConstraint("required") : undefined;
  let finish;
  for await (const record of chat.generate(prompt, { maxTokens: decodeTokens, temperature: 1, seed, constraint })) {
    if (record.kind === "finish") finish = record;
  }
  if (finish === undefined) throw new Error("generation ended without a finish record");
  return { rate: (finish.generatedTokens - 1) / (finish.decodeMs / 1000), tokens: finish.generatedTokens };
}

await decodeRate(false, 0); // warm-up: prefill the prompt once so every timed run reuses it
// Warm-up of the grammar: the first mask builds the vocabulary trie (about 0.5 s) and copies it
// into the native engine once per process, which is not a per-token cost.
const warmUpStart = performance.now();
await decodeRate(true, 0);
const constrainedWarmUpMs = performance.now() - warmUpStart;
const free: number[] = [];
const constrained: number[] = [];
for (let run = 0; run < runs; run++) {
  free.push((await decodeRate(false, run + 1)).rate);
  constrained.push((await decodeRate(true, run + 1)).rate);
}

const report = {
  tools: tools.length,
  engine,
  compileFirstMs: Number(compileMs[0].toFixed(1)),
  compileWarmMedianMs: Number(median(compileMs.slice(1)).toFixed(1)),
  decodeUnconstrained: Number(median(free).toFixed(2)),
  decodeConstrained: Number(median(constrained).toFixed(2)),
  ratio: Number((median(constrained) / median(free)).toFixed(3)),
  constrainedWarmUpMs: Number(constrainedWarmUpMs.toFixed(0)),
  runs,
  decodeTokens,
  threads: model.threads,
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
chat.dispose();
model.dispose();
