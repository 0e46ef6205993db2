// Bad model directories reach Model.load and come back as NessoErrors that name the problem and
// the fix; none of them may crash the process.

import { mkdirSync, readFileSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NessoError } from "../../src/errors.js";
import { Model } from "../../src/engine/model.js";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { cloneCheckpoint, makeTempDir } from "./helpers.js";

const source = tinyCheckpoint("F32");
const temp = makeTempDir("nesso-model-errors-");
afterAll(() => temp.remove());
let counter = 0;

/** Copies the tiny checkpoint; the listed files are real copies to modify, the rest symlinks. */
function copy(...copied: string[]): string {
  const dir = join(temp.dir, `case-${counter++}`);
  mkdirSync(dir);
  return cloneCheckpoint(source, dir, copied);
}

async function loadError(dir: string): Promise<NessoError> {
  const error = await Model.load(dir).then(
    (model) => {
      model.dispose();
      return null;
    },
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(NessoError);
  return error as NessoError;
}

function editJson(path: string, edit: (json: Record<string, unknown>) => void): void {
  const json = JSON.parse(readFileSync(path, "utf8"));
  unlinkSync(path);
  edit(json);
  writeFileSync(path, JSON.stringify(json));
}

function rewriteHeader(dir: string, edit: (header: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void): void {
  const path = join(dir, "model.safetensors");
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8"));
  edit(header);
  const text = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(text.length));
  writeFileSync(path, Buffer.concat([prefix, text, bytes.subarray(8 + headerLength)]));
}

describe("Model.load errors", () => {
  it("reports a missing directory", async () => {
    const error = await loadError(join(temp.dir, "no-such-model"));
    expect(error.code).toBe("MODEL_NOT_FOUND");
    expect(error.message).toContain("no-such-model not found");
    expect(error.message).toContain("nesso-mcp pull");
  });

  it("reports a missing config.json", async () => {
    const dir = copy();
    unlinkSync(join(dir, "config.json"));
    const error = await loadError(dir);
    expect(error.code).toBe("MODEL_NOT_FOUND");
    expect(error.message).toMatch(/^config\.json not found in .*; download the model with nesso-mcp pull$/);
  });

  it("reports a missing tokenizer.json", async () => {
    const dir = copy();
    unlinkSync(join(dir, "tokenizer.json"));
    const error = await loadError(dir);
    expect(error.code).toBe("MODEL_NOT_FOUND");
    expect(error.message).toContain("tokenizer.json not found");
  });

  it("reports invalid JSON in config.json", async () => {
    const dir = copy();
    unlinkSync(join(dir, "config.json"));
    writeFileSync(join(dir, "config.json"), '{"model_type": "llama", "hidden_size": 64');
    const error = await loadError(dir);
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toContain("config.json is not valid JSON");
  });

  it("reports a header length past the end of the file", async () => {
    const dir = copy("model.safetensors");
    const path = join(dir, "model.safetensors");
    const bytes = readFileSync(path);
    bytes.writeBigUInt64LE(BigInt(bytes.length * 2), 0);
    writeFileSync(path, bytes);
    const error = await loadError(dir);
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toContain(`runs past the end of the file, which has ${bytes.length} bytes`);
  });

  it("reports truncated tensor data", async () => {
    const dir = copy("model.safetensors");
    const path = join(dir, "model.safetensors");
    const size = readFileSync(path).length;
    truncateSync(path, size - 1000);
    const error = await loadError(dir);
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toMatch(new RegExp(`ends at byte ${size} but the file has ${size - 1000} bytes \\(truncated download\\? run nesso-mcp pull again\\)`));
  });

  it("reports a tensor shape that disagrees with config", async () => {
    const dir = copy("config.json");
    editJson(join(dir, "config.json"), (config) => (config.intermediate_size = 96));
    const error = await loadError(dir);
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toMatch(/has shape \[(128,64|64,128)\] but config\.json implies \[(96,64|64,96)\]/);
  });

  it("reports an unknown dtype", async () => {
    const dir = copy("model.safetensors");
    rewriteHeader(dir, (header) => (header["model.norm.weight"].dtype = "F12"));
    const error = await loadError(dir);
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toContain('tensor "model.norm.weight" has unknown dtype "F12"');
  });

  it("reports an unsupported quantization mode", async () => {
    const dir = copy("config.json");
    editJson(join(dir, "config.json"), (config) => (config.quantization = { group_size: 32, bits: 4, mode: "nvfp4" }));
    const error = await loadError(dir);
    expect(error.code).toBe("UNSUPPORTED");
    expect(error.message).toContain('quantization mode "nvfp4"');
  });

  it("reports a file passed instead of a directory", async () => {
    const error = await loadError(join(source, "config.json"));
    expect(error.code).toBe("MODEL_NOT_FOUND");
    expect(error.message).toContain("is a file, not a model directory");
  });

  it("rejects an invalid thread count", async () => {
    const error = await Model.load(source, { threads: 0 }).catch((thrown: unknown) => thrown as NessoError);
    expect(error).toBeInstanceOf(NessoError);
    expect((error as NessoError).code).toBe("INVALID_ARGUMENT");
  });

  it("honours an aborted signal", async () => {
    const controller = new AbortController();
    controller.abort(new NessoError("ABORTED", "test abort"));
    await expect(Model.load(source, { signal: controller.signal })).rejects.toThrow("test abort");
  });
});
