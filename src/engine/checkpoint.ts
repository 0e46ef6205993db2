// The weights of a checkpoint directory: which safetensors files hold them, and whether every
// tensor the Llama forward pass needs is present with the shape config.json implies.

import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { NessoError } from "../errors.js";
import { createLogger } from "../logger.js";
import type { ModelConfig } from "./config.js";
import type { NativeDtype, NativeModelConfig, NativeModelSpec, NativeTensorSpec } from "./native-api.js";
import { packedColumns, paramsFor } from "./quantization.js";
import { readSafetensorsHeader, type SafetensorsTensor } from "./safetensors.js";

const log = createLogger("engine");

const indexFileName = "model.safetensors.index.json";
const supportedDtypes = new Set<string>(["F32", "F16", "BF16"]);

/** A tensor found in one of the checkpoint's files. */
export interface CheckpointTensor extends SafetensorsTensor {
  /** Index into CheckpointTensors.files. */
  file: number;
}

export interface CheckpointTensors {
  /** Absolute paths of the safetensors files. */
  files: string[];
  tensors: Map<string, CheckpointTensor>;
}

/**
 * Finds the safetensors files of `dir`: the shards named in model.safetensors.index.json when it
 * exists, else every model*.safetensors, else every *.safetensors.
 */
export async function findSafetensorsFiles(dir: string): Promise<{ files: string[]; weightMap: Map<string, string> | null }> {
  const entries = await readdir(dir);
  if (entries.includes(indexFileName)) {
    const weightMap = await readWeightMap(join(dir, indexFileName));
    const shardNames = [...new Set(weightMap.values())].sort();
    for (const shard of shardNames) {
      if (!entries.includes(shard)) {
        throw new NessoError("MODEL_NOT_FOUND", `shard ${shard} listed in ${join(dir, indexFileName)} is missing; download the model again with nesso-mcp pull`);
      }
    }
    return { files: shardNames.map((name) => join(dir, name)), weightMap };
  }
  const safetensors = entries.filter((name) => name.endsWith(".safetensors")).sort();
  const modelFiles = safetensors.filter((name) => name.startsWith("model"));
  const chosen = modelFiles.length > 0 ? modelFiles : safetensors;
  if (chosen.length === 0) {
    throw new NessoError("MODEL_NOT_FOUND", `no *.safetensors file in ${dir}; download the model with nesso-mcp pull`);
  }
  return { files: chosen.map((name) => join(dir, name)), weightMap: null };
}

async function readWeightMap(path: string): Promise<Map<string, string>> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new NessoError("INVALID_MODEL", `${path} is not valid JSON (${(error as Error).message}); download the model again with nesso-mcp pull`, { cause: error });
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new NessoError("INVALID_MODEL", `${path} has no "weight_map" object mapping tensor names to shard files`);
  }
  const result = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string" || shard.includes("/") || shard.includes("\\") || !shard.endsWith(".safetensors")) {
      throw new NessoError("INVALID_MODEL", `${path}: weight_map entry "${name}" names ${JSON.stringify(shard)}, not a .safetensors file in the model directory`);
    }
    result.set(name, shard);
  }
  return result;
}

/** Reads every header of the checkpoint and merges the tensors; duplicate names across files are an error. */
export async function readCheckpointTensors(dir: string): Promise<CheckpointTensors> {
  const { files, weightMap } = await findSafetensorsFiles(dir);
  const tensors = new Map<string, CheckpointTensor>();
  const fileNames = files.map((path) => path.slice(dir.length).replace(/^[\\/]+/, ""));
  for (let file = 0; file < files.length; file++) {
    const header = await readSafetensorsHeader(files[file]);
    for (const tensor of header.tensors) {
      const existing = tensors.get(tensor.name);
      if (existing) {
        throw new NessoError("INVALID_MODEL", `tensor "${tensor.name}" appears in both ${fileNames[existing.file]} and ${fileNames[file]}; remove the stray file from ${dir}`);
      }
      tensors.set(tensor.name, { ...tensor, file });
    }
  }
  if (weightMap) {
    for (const [name, shard] of weightMap) {
      const tensor = tensors.get(name);
      if (!tensor || fileNames[tensor.file] !== shard) {
        throw new NessoError("INVALID_MODEL", `${indexFileName} maps tensor "${name}" to ${shard}, but ${tensor ? `it is in ${fileNames[tensor.file]}` : "no shard contains it"}; download the model again with nesso-mcp pull`);
      }
    }
  }
  return { files, tensors };
}

/** Lists the tensors a Llama model needs, with shapes from config.json and the embedding's row count. */
function expectedTensorShapes(config: ModelConfig, vocabRows: number): Map<string, number[]> {
  const { dim, nHeads, nKvHeads, headDim, ffnDim } = config;
  const shapes = new Map<string, number[]>();
  shapes.set("model.embed_tokens.weight", [vocabRows, dim]);
  for (let layer = 0; layer < config.nLayers; layer++) {
    const prefix = `model.layers.${layer}`;
    shapes.set(`${prefix}.input_layernorm.weight`, [dim]);
    shapes.set(`${prefix}.self_attn.q_proj.weight`, [nHeads * headDim, dim]);
    shapes.set(`${prefix}.self_attn.k_proj.weight`, [nKvHeads * headDim, dim]);
    shapes.set(`${prefix}.self_attn.v_proj.weight`, [nKvHeads * headDim, dim]);
    shapes.set(`${prefix}.self_attn.o_proj.weight`, [dim, nHeads * headDim]);
    if (config.attentionBias) {
      shapes.set(`${prefix}.self_attn.q_proj.bias`, [nHeads * headDim]);
      shapes.set(`${prefix}.self_attn.k_proj.bias`, [nKvHeads * headDim]);
      shapes.set(`${prefix}.self_attn.v_proj.bias`, [nKvHeads * headDim]);
      shapes.set(`${prefix}.self_attn.o_proj.bias`, [dim]);
    }
    shapes.set(`${prefix}.post_attention_layernorm.weight`, [dim]);
    shapes.set(`${prefix}.mlp.gate_proj.weight`, [ffnDim, dim]);
    shapes.set(`${prefix}.mlp.up_proj.weight`, [ffnDim, dim]);
    shapes.set(`${prefix}.mlp.down_proj.weight`, [dim, ffnDim]);
    if (config.mlpBias) {
      shapes.set(`${prefix}.mlp.gate_proj.bias`, [ffnDim]);
      shapes.set(`${prefix}.mlp.up_proj.bias`, [ffnDim]);
      shapes.set(`${prefix}.mlp.down_proj.bias`, [dim]);
    }
  }
  shapes.set("model.norm.weight", [dim]);
  if (!config.tieWordEmbeddings) shapes.set("lm_head.weight", [vocabRows, dim]);
  return shapes;
}

export interface ModelSpecOptions {
  /** Size of the tokenizer's vocabulary (highest id + 1); logits of ids at or above it are masked. */
  tokenizerVocabSize: number;
}

/**
 * Checks the checkpoint's tensors against config.json and builds the spec the native addon loads.
 * The vocabulary size is the embedding's row count, which may exceed config.json's vocab_size and
 * the tokenizer's size. Drops rotary_emb.inv_freq and, for a tied head, lm_head.weight.
 */
export function buildModelSpec(config: ModelConfig, checkpoint: CheckpointTensors, options: ModelSpecOptions): Omit<NativeModelSpec, "threads"> {
  const { tensors, files } = checkpoint;
  const embedding = tensors.get("model.embed_tokens.weight");
  if (!embedding) throw missingTensor("model.embed_tokens.weight", files);
  // A quantized embedding stores packed columns, so its row count is the only shape fact here.
  const embeddingQuantized = tensors.has("model.embed_tokens.scales");
  if (embedding.shape.length !== 2 || (!embeddingQuantized && embedding.shape[1] !== config.dim)) {
    throw shapeMismatch(embedding, `[vocabulary rows, ${config.dim}]`, "hidden_size");
  }
  const vocabRows = embedding.shape[0];
  if (vocabRows < options.tokenizerVocabSize) {
    throw new NessoError(
      "INVALID_MODEL",
      `model.embed_tokens.weight has ${vocabRows} rows but the tokenizer has ${options.tokenizerVocabSize} tokens; the checkpoint and tokenizer.json do not belong together`,
    );
  }
  if (vocabRows !== config.configVocabSize) {
    log.warn(`config.json sets vocab_size ${config.configVocabSize} but model.embed_tokens.weight has ${vocabRows} rows; using ${vocabRows}`);
  }

  const expected = expectedTensorShapes(config, vocabRows);
  const specs: NativeTensorSpec[] = [];
  const used = new Set<string>();
  for (const [name, shape] of expected) {
    const tensor = tensors.get(name);
    if (!tensor) throw missingTensor(name, files);
    used.add(name);
    const path = name.slice(0, -".weight".length);
    if (name.endsWith(".weight") && shape.length === 2 && tensors.has(`${path}.scales`)) {
      specs.push(...quantizedSpecs(config, tensors, path, shape));
      used.add(`${path}.scales`).add(`${path}.biases`);
      continue;
    }
    if (!sameShape(tensor.shape, shape)) throw shapeMismatch(tensor, JSON.stringify(shape), "config.json");
    if (tensor.dtype === "U32" && name.endsWith(".weight")) {
      throw new NessoError("INVALID_MODEL", `tensor "${name}" is packed U32 (an MLX-quantized weight) but "${path}.scales" is missing; the checkpoint is incomplete (download it again with nesso-mcp pull)`);
    }
    if (!supportedDtypes.has(tensor.dtype)) {
      throw new NessoError("UNSUPPORTED", `tensor "${name}" has dtype ${tensor.dtype}; supported dtypes are F32, F16 and BF16`);
    }
    specs.push({ name, file: tensor.file, dtype: tensor.dtype as NativeDtype, shape: tensor.shape, offset: tensor.offset, byteLength: tensor.byteLength });
  }
  if (config.quantization !== null && !specs.some((spec) => spec.quantization !== undefined)) {
    log.warn("config.json has a quantization block but no weight has a .scales tensor; every weight is used as float");
  }

  const ignored = [...tensors.keys()].filter((name) => !used.has(name) && !name.endsWith(".rotary_emb.inv_freq") && !(config.tieWordEmbeddings && name.startsWith("lm_head.")));
  if (ignored.length > 0) {
    log.warn(`ignoring ${ignored.length} tensors that a Llama model does not use: ${ignored.slice(0, 5).join(", ")}${ignored.length > 5 ? ", ..." : ""}`);
  }

  const nativeConfig: NativeModelConfig = {
    dim: config.dim,
    nLayers: config.nLayers,
    nHeads: config.nHeads,
    nKvHeads: config.nKvHeads,
    headDim: config.headDim,
    ffnDim: config.ffnDim,
    vocabSize: vocabRows,
    tokenizerVocabSize: options.tokenizerVocabSize,
    rmsNormEps: config.rmsNormEps,
    ropeTheta: config.ropeTheta,
    ropeTraditional: config.ropeTraditional,
    ropeFreqFactors: config.ropeFreqFactors,
    ropePositionScale: config.ropePositionScale,
    tieWordEmbeddings: config.tieWordEmbeddings,
    attentionBias: config.attentionBias,
    mlpBias: config.mlpBias,
    maxContextSize: config.maxContextSize,
  };
  return { files, tensors: specs, config: nativeConfig };
}

/**
 * Checks the three tensors of an MLX affine-quantized weight at `path` against the float shape
 * [rows, inputs] that config.json implies, and returns their specs: the U32 weight
 * [rows, inputs · bits / 32] and the scales and biases [rows, inputs / groupSize].
 */
function quantizedSpecs(config: ModelConfig, tensors: Map<string, CheckpointTensor>, path: string, shape: number[]): NativeTensorSpec[] {
  const weight = tensors.get(`${path}.weight`)!;
  const scales = tensors.get(`${path}.scales`)!;
  const biases = tensors.get(`${path}.biases`);
  if (config.quantization === null) {
    throw new NessoError("INVALID_MODEL", `tensor "${path}.scales" marks an MLX-quantized weight but config.json has no "quantization" block; config.json and the weights do not belong together`);
  }
  if (!biases) {
    throw new NessoError("INVALID_MODEL", `tensor "${path}.biases" is missing but "${path}.scales" exists; affine quantization needs both (download the model again with nesso-mcp pull)`);
  }
  const { bits, groupSize } = paramsFor(config.quantization, path);
  const [rows, inputs] = shape;
  const where = config.quantization.overrides.has(path) ? `quantization["${path}"]` : "quantization";
  if (inputs % groupSize !== 0) {
    throw new NessoError("INVALID_MODEL", `${where} sets group_size ${groupSize} for "${path}" but its ${inputs} inputs are not a multiple of it; config.json and the weights do not belong together`);
  }
  if (weight.dtype !== "U32") {
    throw new NessoError("INVALID_MODEL", `tensor "${weight.name}" has dtype ${weight.dtype} but a quantized weight (one with "${path}.scales") must be U32`);
  }
  const packedShape = [rows, packedColumns(inputs, bits)];
  if (!sameShape(weight.shape, packedShape)) {
    throw shapeMismatch(weight, `${JSON.stringify(packedShape)} (${inputs} inputs packed at ${bits} bits, from ${where})`, "config.json");
  }
  const groupShape = [rows, inputs / groupSize];
  for (const tensor of [scales, biases]) {
    if (!supportedDtypes.has(tensor.dtype)) {
      throw new NessoError("UNSUPPORTED", `tensor "${tensor.name}" has dtype ${tensor.dtype}; affine scales and biases must be F32, F16 or BF16`);
    }
    if (!sameShape(tensor.shape, groupShape)) {
      throw shapeMismatch(tensor, `${JSON.stringify(groupShape)} (${inputs} inputs in groups of ${groupSize}, from ${where})`, "config.json");
    }
  }
  if (biases.dtype !== scales.dtype) {
    throw new NessoError("INVALID_MODEL", `tensor "${biases.name}" has dtype ${biases.dtype} but "${scales.name}" has ${scales.dtype}; MLX writes both in one dtype`);
  }
  const spec = (tensor: CheckpointTensor): NativeTensorSpec => ({ name: tensor.name, file: tensor.file, dtype: tensor.dtype as NativeDtype, shape: tensor.shape, offset: tensor.offset, byteLength: tensor.byteLength });
  return [{ ...spec(weight), dtype: "U32", quantization: { bits, groupSize } }, spec(scales), spec(biases)];
}

function sameShape(actual: number[], expected: number[]): boolean {
  return actual.length === expected.length && actual.every((size, i) => size === expected[i]);
}

function missingTensor(name: string, files: string[]): NessoError {
  return new NessoError("INVALID_MODEL", `tensor "${name}" is missing from ${files.length === 1 ? files[0] : `all ${files.length} safetensors files`}; the checkpoint is incomplete or not a Llama model (download it again with nesso-mcp pull)`);
}

function shapeMismatch(tensor: CheckpointTensor, expected: string, source: string): NessoError {
  return new NessoError("INVALID_MODEL", `tensor "${tensor.name}" has shape ${JSON.stringify(tensor.shape)} but ${source} implies ${expected}; config.json and the weights do not belong together`);
}
