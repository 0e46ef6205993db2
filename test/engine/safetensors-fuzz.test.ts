// Feeds 1,000 random and mutated safetensors headers to the loader. Every outcome must be either a
// valid checkpoint spec or a NessoError; anything else (TypeError, RangeError, a crash) fails.

import { closeSync, mkdirSync, openSync, readFileSync, symlinkSync, truncateSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NessoError } from "../../src/errors.js";
import { buildModelSpec, readCheckpointTensors } from "../../src/engine/checkpoint.js";
import { parseConfigText } from "../../src/engine/config.js";
import { readHeaderLength, parseSafetensorsHeader } from "../../src/engine/safetensors.js";
import { TextTokenizer } from "../../src/engine/tokenizer.js";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { createRandom } from "../fixtures/random.js";
import { makeTempDir } from "./helpers.js";

const temp = makeTempDir("nesso-fuzz-");
afterAll(() => temp.remove());

const source = tinyCheckpoint("F32");
const original = readFileSync(join(source, "model.safetensors"));
const originalHeaderLength = Number(original.readBigUInt64LE(0));
const originalHeader = original.subarray(8, 8 + originalHeaderLength).toString("utf8");
const originalDataLength = original.length - 8 - originalHeaderLength;

const random = createRandom(20260101);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
const interesting = [0, 1, -1, 2, 7, 8, 63, 64, 65, 127, 4096, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 64, 1e308, 0.5, NaN];
const dtypes = ["F32", "F16", "BF16", "U32", "U8", "I64", "F4", "F6_E2M3", "BOOL", "Q4_0", "", "f32", "C64"];

/** A random JSON-ish value, sometimes deeply nested. */
function randomValue(depth = 0): unknown {
  const kind = Math.floor(random() * (depth > 2 ? 5 : 7));
  switch (kind) {
    case 0: return pick(interesting);
    case 1: return pick(dtypes);
    case 2: return null;
    case 3: return random() < 0.5;
    case 4: return "x".repeat(Math.floor(random() * 5));
    case 5: return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(depth + 1));
    default: return Object.fromEntries(Array.from({ length: Math.floor(random() * 4) }, (_, i) => [pick(["dtype", "shape", "data_offsets", "__metadata__", `k${i}`]), randomValue(depth + 1)]));
  }
}

/** Structure-aware mutation: change one field of one tensor entry. */
function mutateEntries(): string {
  const header = JSON.parse(originalHeader) as Record<string, Record<string, unknown>>;
  const mutations = 1 + Math.floor(random() * 3);
  for (let m = 0; m < mutations; m++) {
    const names = Object.keys(header).filter((key) => key !== "__metadata__" && typeof header[key] === "object" && header[key] !== null && !Array.isArray(header[key]));
    if (names.length === 0) break;
    const name = pick(names);
    const entry = header[name];
    const field = pick(["dtype", "shape", "data_offsets", "entry", "delete", "rename", "metadata"]);
    if (field === "dtype") entry.dtype = pick(dtypes);
    else if (field === "shape") entry.shape = random() < 0.5 && Array.isArray(entry.shape) ? (entry.shape as number[]).map((size) => (random() < 0.5 ? pick(interesting) : size)) : randomValue();
    else if (field === "data_offsets") entry.data_offsets = random() < 0.7 && Array.isArray(entry.data_offsets) ? (entry.data_offsets as number[]).map((offset) => offset + Math.floor((random() - 0.5) * 64)) : randomValue();
    else if (field === "entry") header[name] = randomValue() as Record<string, unknown>;
    else if (field === "delete") delete header[name];
    else if (field === "rename") {
      header[`${name}.scales`] = entry;
      delete header[name];
    } else header.__metadata__ = randomValue() as Record<string, unknown>;
  }
  return JSON.stringify(header);
}

/** Byte-level mutation: flip, insert or delete characters of the header text. */
function mutateBytes(): string {
  const chars = originalHeader.split("");
  const edits = 1 + Math.floor(random() * 8);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * chars.length);
    const op = Math.floor(random() * 3);
    if (op === 0) chars[at] = String.fromCharCode(Math.floor(random() * 256));
    else if (op === 1) chars.splice(at, 0, pick(["{", "}", "[", "]", ",", ":", '"', "9", "-", "\u00e8", "\ud83d"]));
    else chars.splice(at, 1 + Math.floor(random() * 20));
  }
  return chars.join("");
}

/** One fuzz case: header text, a declared header length, and the data size after the header. */
function fuzzCase(i: number): { header: Buffer; declaredLength: bigint; dataLength: number } {
  const strategy = i % 4;
  let text: string;
  if (strategy === 0) text = mutateEntries();
  else if (strategy === 1) text = mutateBytes();
  else if (strategy === 2) text = JSON.stringify(randomValue());
  else text = originalHeader;
  const header = Buffer.from(text, "utf8");
  let declaredLength = BigInt(header.length);
  let dataLength = originalDataLength;
  if (strategy === 3 || random() < 0.1) {
    const choice = Math.floor(random() * 4);
    if (choice === 0) declaredLength = BigInt(Math.floor(random() * 2 ** 32)) * BigInt(Math.floor(random() * 2 ** 32));
    else if (choice === 1) declaredLength = BigInt(Math.max(0, header.length + Math.floor((random() - 0.5) * 40)));
    else if (choice === 2) dataLength = Math.floor(random() * originalDataLength);
    else dataLength = originalDataLength + Math.floor(random() * 100);
  }
  return { header, declaredLength, dataLength };
}

const tokenizer = await TextTokenizer.load(source);
const config = parseConfigText(readFileSync(join(source, "config.json"), "utf8"));

describe("safetensors loader fuzzing", () => {
  it("rejects 1,000 mutated headers with NessoError only", async () => {
    const outcomes = { valid: 0, rejected: 0 };
    for (let i = 0; i < 1000; i++) {
      const { header, declaredLength, dataLength } = fuzzCase(i);
      const fileSize = 8 + header.length + dataLength;
      const prefix = Buffer.alloc(8);
      prefix.writeBigUInt64LE(declaredLength % 2n ** 64n);
      try {
        // In memory: the same checks the file reader runs, on every case.
        const headerLength = readHeaderLength(prefix, fileSize, "fuzz.safetensors");
        const bytes = Buffer.concat([header, Buffer.alloc(Math.max(0, headerLength - header.length))]).subarray(0, headerLength);
        const parsed = parseSafetensorsHeader(bytes, fileSize, "fuzz.safetensors");
        for (const tensor of parsed.tensors) {
          expect(tensor.offset + tensor.byteLength).toBeLessThanOrEqual(fileSize);
          expect(tensor.offset).toBeGreaterThanOrEqual(8 + headerLength);
        }
        outcomes.valid++;
      } catch (error) {
        if (!(error instanceof NessoError)) throw new Error(`case ${i}: ${String(error)}\n${header.toString("utf8").slice(0, 300)}`);
        outcomes.rejected++;
      }
    }
    expect(outcomes.valid + outcomes.rejected).toBe(1000);
    expect(outcomes.rejected).toBeGreaterThan(500);
  });

  it("loads or rejects 100 mutated checkpoint files through the directory loader", async () => {
    let valid = 0;
    for (let i = 0; i < 100; i++) {
      const { header, declaredLength, dataLength } = fuzzCase(i * 7 + 3);
      const dir = join(temp.dir, `case-${i}`);
      mkdirSync(dir);
      for (const name of ["config.json", "tokenizer.json", "tokenizer_config.json"]) symlinkSync(join(source, name), join(dir, name));
      const path = join(dir, "model.safetensors");
      const prefix = Buffer.alloc(8);
      prefix.writeBigUInt64LE(declaredLength % 2n ** 64n);
      const fd = openSync(path, "w");
      writeSync(fd, prefix);
      writeSync(fd, header);
      closeSync(fd);
      truncateSync(path, 8 + header.length + dataLength); // sparse data region
      try {
        const checkpoint = await readCheckpointTensors(dir);
        const spec = buildModelSpec(config, checkpoint, { tokenizerVocabSize: tokenizer.vocabSize });
        expect(spec.tensors.length).toBeGreaterThan(0);
        valid++;
      } catch (error) {
        if (!(error instanceof NessoError)) throw new Error(`file case ${i}: ${String(error)}`);
      }
    }
    expect(valid).toBeLessThan(100);
  });
});
