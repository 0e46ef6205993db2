import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NessoError } from "../../src/errors.js";
import { buildModelSpec, readCheckpointTensors } from "../../src/engine/checkpoint.js";
import { parseConfigText } from "../../src/engine/config.js";
import { writeCheckpoint, writeSafetensors, type CheckpointShape } from "../fixtures/checkpoint.js";
import { encodeTensor } from "../fixtures/dtype.js";
import { makeTempDir } from "./helpers.js";

/** A very small geometry so each test writes only a few kilobytes. */
const microShape: CheckpointShape = { dim: 8, nLayers: 2, nHeads: 2, nKvHeads: 1, headDim: 4, ffnDim: 16, vocabSize: 300 };
const tokenizerVocabSize = 290;

const temp = makeTempDir("nesso-checkpoint-");
afterAll(() => temp.remove());
let counter = 0;

function micro(options: Parameters<typeof writeCheckpoint>[0] extends infer O ? Partial<O> : never = {}): string {
  return writeCheckpoint({ dir: join(temp.dir, `m${counter++}`), shape: microShape, ...options });
}

async function load(dir: string) {
  const config = parseConfigText(readFileSync(join(dir, "config.json"), "utf8"));
  const checkpoint = await readCheckpointTensors(dir);
  return buildModelSpec(config, checkpoint, { tokenizerVocabSize });
}

async function loadError(dir: string): Promise<NessoError> {
  const error = await load(dir).then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(NessoError);
  return error as NessoError;
}

/** Rewrites model.safetensors with extra tensors appended. */
function addTensors(dir: string, extra: { name: string; dtype: string; shape: number[] }[]): void {
  const path = join(dir, "model.safetensors");
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const tensors: { name: string; dtype: string; shape: number[]; data: Uint8Array }[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    tensors.push({ name, dtype: entry.dtype, shape: entry.shape, data: bytes.subarray(8 + headerLength + entry.data_offsets[0], 8 + headerLength + entry.data_offsets[1]) });
  }
  for (const tensor of extra) {
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    tensors.push({ ...tensor, data: new Uint8Array(elements * (tensor.dtype === "I64" ? 8 : 4)) });
  }
  writeSafetensors(path, tensors, "mlx");
  const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8"));
  for (const tensor of extra) index.weight_map[tensor.name] = "model.safetensors";
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify(index));
}

describe("checkpoint loading", () => {
  it("loads a single MLX-style file", async () => {
    const spec = await load(micro());
    expect(spec.files).toHaveLength(1);
    expect(spec.tensors).toHaveLength(1 + 2 * 9 + 1);
    expect(spec.config.vocabSize).toBe(300);
    expect(spec.config.tokenizerVocabSize).toBe(290);
    const embedding = spec.tensors.find((t) => t.name === "model.embed_tokens.weight")!;
    expect(embedding.shape).toEqual([300, 8]);
    expect(embedding.byteLength).toBe(300 * 8 * 4);
  });

  it("loads an HF-style padded file", async () => {
    const spec = await load(micro({ layout: "hf", dtype: "F16" }));
    expect(spec.tensors.every((t) => t.dtype === "F16")).toBe(true);
    expect(spec.tensors.every((t) => (t.offset - spec.tensors[0].offset) % 2 === 0)).toBe(true);
  });

  it("loads shards through the index", async () => {
    const spec = await load(micro({ shards: 3, dtype: "BF16" }));
    expect(spec.files.map((f) => f.split("/").pop())).toEqual([
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
    ]);
    expect(new Set(spec.tensors.map((t) => t.file))).toEqual(new Set([0, 1, 2]));
  });

  it("loads shards without an index", async () => {
    const dir = micro({ shards: 2 });
    rmSync(join(dir, "model.safetensors.index.json"));
    const spec = await load(dir);
    expect(spec.files).toHaveLength(2);
    expect(spec.tensors).toHaveLength(20);
  });

  it("points at the right bytes of each shard", async () => {
    const dir = micro({ shards: 2, seed: 7 });
    const spec = await load(dir);
    const norm = spec.tensors.find((t) => t.name === "model.norm.weight")!;
    const bytes = readFileSync(spec.files[norm.file]).subarray(norm.offset, norm.offset + norm.byteLength);
    const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    // Norm weights are drawn around 1 with standard deviation 0.1.
    for (const value of floats) expect(Math.abs(value - 1)).toBeLessThan(0.6);
  });

  it("requires lm_head for an untied head", async () => {
    const spec = await load(micro({ untied: true }));
    expect(spec.config.tieWordEmbeddings).toBe(false);
    expect(spec.tensors.some((t) => t.name === "lm_head.weight")).toBe(true);

    const dir = micro({ untied: true });
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    config.tie_word_embeddings = true;
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    const tied = await load(dir);
    expect(tied.tensors.some((t) => t.name === "lm_head.weight")).toBe(false);
  });

  it("drops rotary_emb.inv_freq", async () => {
    const dir = micro();
    addTensors(dir, [{ name: "model.layers.0.self_attn.rotary_emb.inv_freq", dtype: "F32", shape: [2] }]);
    const spec = await load(dir);
    expect(spec.tensors.some((t) => t.name.includes("inv_freq"))).toBe(false);
  });

  it("rejects a missing tensor", async () => {
    const dir = micro({ config: { num_hidden_layers: 3 } });
    const error = await loadError(dir);
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toContain('tensor "model.layers.2.input_layernorm.weight" is missing');
  });

  it("rejects a shape that disagrees with config", async () => {
    const dir = micro({ config: { intermediate_size: 32 } });
    const error = await loadError(dir);
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toMatch(/tensor "model\.layers\.\d\.mlp\.\w+_proj\.weight" has shape \[(16,8|8,16)\] but config\.json implies \[(32,8|8,32)\]/);
  });

  it("rejects an embedding smaller than the tokenizer", async () => {
    const dir = writeCheckpoint({ dir: join(temp.dir, "small-vocab"), shape: { ...microShape, vocabSize: 100 } });
    const error = await loadError(dir);
    expect(error.message).toContain("model.embed_tokens.weight has 100 rows but the tokenizer has 290 tokens");
  });

  it("rejects scales without a quantization block", async () => {
    const dir = micro();
    addTensors(dir, [
      { name: "model.layers.0.mlp.up_proj.scales", dtype: "F32", shape: [16, 1] },
      { name: "model.layers.0.mlp.up_proj.biases", dtype: "F32", shape: [16, 1] },
    ]);
    const error = await loadError(dir);
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toContain('marks an MLX-quantized weight but config.json has no "quantization" block');
  });

  it("rejects an unsupported dtype", async () => {
    const dir = join(temp.dir, "i32");
    writeCheckpoint({ dir, shape: microShape });
    const path = join(dir, "model.safetensors");
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8"));
    // Reinterpret the F32 norm weight [8] as I32 [8]: same shape and byte length, another dtype.
    header["model.norm.weight"].dtype = "I32";
    const text = Buffer.from(JSON.stringify(header));
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(text.length));
    writeFileSync(path, Buffer.concat([prefix, text, bytes.subarray(8 + headerLength)]));
    const error = await loadError(dir);
    expect(error.code).toBe("UNSUPPORTED");
    expect(error.message).toBe('tensor "model.norm.weight" has dtype I32; supported dtypes are F32, F16 and BF16');
  });

  it("rejects a shard the index names but the directory lacks", async () => {
    const dir = micro({ shards: 2 });
    rmSync(join(dir, "model-00002-of-00002.safetensors"));
    const error = await loadError(dir);
    expect(error.code).toBe("MODEL_NOT_FOUND");
    expect(error.message).toContain("shard model-00002-of-00002.safetensors listed in");
  });

  it("rejects a tensor found in two shards", async () => {
    const dir = micro({ shards: 2 });
    rmSync(join(dir, "model.safetensors.index.json"));
    writeSafetensors(join(dir, "model-extra.safetensors"), [{ name: "model.norm.weight", dtype: "F32", shape: [8], data: encodeTensor(new Float32Array(8), "F32") }]);
    const error = await loadError(dir);
    expect(error.message).toMatch(/tensor "model\.norm\.weight" appears in both/);
  });

  it("rejects an index that disagrees with the shards", async () => {
    const dir = micro({ shards: 2 });
    const indexPath = join(dir, "model.safetensors.index.json");
    const index = JSON.parse(readFileSync(indexPath, "utf8"));
    const name = "model.norm.weight";
    index.weight_map[name] = index.weight_map[name] === "model-00001-of-00002.safetensors" ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
    writeFileSync(indexPath, JSON.stringify(index));
    const error = await loadError(dir);
    expect(error.message).toContain(`maps tensor "${name}" to`);
  });

  it("rejects a directory without safetensors", async () => {
    const dir = micro();
    rmSync(join(dir, "model.safetensors"));
    rmSync(join(dir, "model.safetensors.index.json"));
    const error = await loadError(dir);
    expect(error.code).toBe("MODEL_NOT_FOUND");
    expect(error.message).toContain("nesso-mcp pull");
  });
});
