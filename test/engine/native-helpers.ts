// Test helpers for the native engine: a minimal safetensors header reader and a NativeModelSpec
// builder, so the native tests do not depend on src/engine's loader.

import { readdirSync, readFileSync, openSync, readSync, closeSync } from "node:fs";
import { join } from "node:path";
import { nessoVocabSize } from "../fixtures/checkpoint.js";
import type { NativeDtype, NativeModelConfig, NativeModelSpec, NativeTensorSpec } from "../../src/engine/native-api.js";

export interface HeaderTensor {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte offset of the data in the file. */
  offset: number;
  byteLength: number;
}

/** Reads the JSON header of one safetensors file. */
export function readHeader(path: string): HeaderTensor[] {
  const fd = openSync(path, "r");
  try {
    const lengthBytes = Buffer.alloc(8);
    readSync(fd, lengthBytes, 0, 8, 0);
    const headerLength = Number(lengthBytes.readBigUInt64LE(0));
    const headerBytes = Buffer.alloc(headerLength);
    readSync(fd, headerBytes, 0, headerLength, 8);
    const header = JSON.parse(headerBytes.toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    const dataStart = 8 + headerLength;
    return Object.entries(header)
      .filter(([name]) => name !== "__metadata__")
      .map(([name, entry]) => ({
        name,
        dtype: entry.dtype,
        shape: entry.shape,
        offset: dataStart + entry.data_offsets[0],
        byteLength: entry.data_offsets[1] - entry.data_offsets[0],
      }));
  } finally {
    closeSync(fd);
  }
}

export interface SpecOptions {
  threads?: number;
  /** Tokenizer size (default: Nesso's 128,262, capped at the embedding rows). */
  tokenizerVocabSize?: number;
  /** Overrides of the resolved config. */
  config?: Partial<NativeModelConfig>;
}

/** Builds the spec the TS loader would pass for a fixture checkpoint directory. */
export function specFromDirectory(dir: string, options: SpecOptions = {}): NativeModelSpec {
  const json = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  const files = readdirSync(dir)
    .filter((name) => name.endsWith(".safetensors"))
    .sort()
    .map((name) => join(dir, name));
  const tensors: NativeTensorSpec[] = [];
  files.forEach((path, file) => {
    for (const tensor of readHeader(path)) tensors.push({ ...tensor, file, dtype: tensor.dtype as NativeDtype });
  });

  const embedding = tensors.find((tensor) => tensor.name === "model.embed_tokens.weight");
  if (!embedding) throw new Error(`${dir} has no model.embed_tokens.weight`);
  const vocabSize = embedding.shape[0];
  const dim = json.hidden_size as number;
  const nHeads = json.num_attention_heads as number;
  const config: NativeModelConfig = {
    dim,
    nLayers: json.num_hidden_layers as number,
    nHeads,
    nKvHeads: (json.num_key_value_heads as number | undefined) ?? nHeads,
    headDim: (json.head_dim as number | undefined) ?? dim / nHeads,
    ffnDim: json.intermediate_size as number,
    vocabSize,
    tokenizerVocabSize: Math.min(options.tokenizerVocabSize ?? nessoVocabSize, vocabSize),
    rmsNormEps: json.rms_norm_eps as number,
    ropeTheta: (json.rope_theta as number | undefined) ?? 10000,
    ropeTraditional: (json.rope_traditional as boolean | undefined) ?? false,
    ropeFreqFactors: null,
    ropePositionScale: 1,
    tieWordEmbeddings: (json.tie_word_embeddings as boolean | undefined) ?? true,
    attentionBias: (json.attention_bias as boolean | undefined) ?? false,
    mlpBias: (json.mlp_bias as boolean | undefined) ?? false,
    maxContextSize: (json.max_position_embeddings as number | undefined) ?? 4096,
    ...options.config,
  };
  return { files, tensors, config, threads: options.threads ?? 2 };
}

/** Converts little-endian bytes of `dtype` to float32 values. */
export function decodeTensor(bytes: Uint8Array, dtype: string): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === "F32") {
    const out = new Float32Array(bytes.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
    return out;
  }
  const out = new Float32Array(bytes.byteLength / 2);
  const decode = dtype === "BF16" ? bf16ToFloat : f16ToFloat;
  for (let i = 0; i < out.length; i++) out[i] = decode(view.getUint16(2 * i, true));
  return out;
}

const scratch = new DataView(new ArrayBuffer(4));

export function bf16ToFloat(bits: number): number {
  scratch.setUint32(0, bits << 16);
  return scratch.getFloat32(0);
}

export function f16ToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Reads every tensor of a checkpoint directory as float32. */
export function readTensors(spec: NativeModelSpec): Map<string, { shape: number[]; values: Float32Array }> {
  const contents = spec.files.map((path) => readFileSync(path));
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const tensor of spec.tensors) {
    const file = contents[tensor.file];
    const bytes = new Uint8Array(file.buffer, file.byteOffset + tensor.offset, tensor.byteLength);
    out.set(tensor.name, { shape: tensor.shape, values: decodeTensor(bytes, tensor.dtype) });
  }
  return out;
}

/** max |a - b| over two equally long arrays. */
export function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} differs from ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    max = Math.max(max, Math.abs(a[i] - b[i]));
  }
  return max;
}

/** max |x| over the finite entries. */
export function maxAbs(values: Float32Array): number {
  let max = 0;
  for (const value of values) if (Number.isFinite(value)) max = Math.max(max, Math.abs(value));
  return max;
}

/** Index of the largest value. */
export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Runs `body` with NESSO_MCP_SIMD set to `path`, restoring the previous value afterwards. */
export async function withSimdPath<T>(path: string, body: () => T | Promise<T>): Promise<T> {
  const previous = process.env.NESSO_MCP_SIMD;
  process.env.NESSO_MCP_SIMD = path;
  try {
    return await body();
  } finally {
    if (previous === undefined) delete process.env.NESSO_MCP_SIMD;
    else process.env.NESSO_MCP_SIMD = previous;
  }
}
