// Writes a checkpoint directory as a GGUF v3 file for llama.cpp (architecture "llama"), so llama.cpp
// can serve as an independent numerical oracle for the engine.
//
// Layout: magic "GGUF", version 3, tensor count (u64), metadata count (u64), the metadata
// key/values, the tensor infos (name, dims innermost-first, ggml type, offset), padding to the
// alignment, then the tensor data, each tensor starting on a multiple of the alignment.

import { closeSync, openSync, readFileSync, readSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { buildModelSpec, readCheckpointTensors } from "../../src/engine/checkpoint.js";
import { parseConfigText, type ModelConfig } from "../../src/engine/config.js";
import type { NativeDtype, NativeTensorSpec } from "../../src/engine/native-api.js";
import { stopTokenIds } from "../../src/engine/stop.js";
import { readModelJson, TextTokenizer } from "../../src/engine/tokenizer.js";
import { float32ToF16Bits } from "../fixtures/dtype.js";

const alignment = 32;

/** GGUF metadata value types. */
const enum ValueType {
  Uint32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
}

/** ggml tensor types used here. */
/** Tensor types this writer produces: the float dtypes, and llama.cpp's 32-element Q8_0 and Q4_0 blocks. */
type GgufTensorType = NativeDtype | "Q8_0" | "Q4_0";

const ggmlType: Record<GgufTensorType, number> = { F32: 0, F16: 1, BF16: 30, Q4_0: 2, Q8_0: 8 };
/** Bytes per 32 elements: Q8_0 is {fp16 d; int8 q[32]}, Q4_0 is {fp16 d; uint8 q[16]}. */
const bytesPer32: Record<GgufTensorType, number> = { F32: 128, F16: 64, BF16: 64, Q8_0: 34, Q4_0: 18 };

/** llama.cpp token types (llama_token_type in llama.h). */
const TokenType = { normal: 1, control: 3, userDefined: 4, unused: 5 } as const;

type MetadataValue =
  | { type: ValueType.Uint32 | ValueType.Int32 | ValueType.Float32; value: number }
  | { type: ValueType.Bool; value: boolean }
  | { type: ValueType.String; value: string }
  | { type: ValueType.Array; itemType: ValueType.String; value: string[] }
  | { type: ValueType.Array; itemType: ValueType.Int32; value: Int32Array };

/** Append-only little-endian byte buffer for the GGUF header (grows by doubling). */
class ByteWriter {
  private buffer = Buffer.alloc(1 << 20);
  length = 0;

  private reserve(bytes: number): number {
    if (this.length + bytes > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + bytes));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    const at = this.length;
    this.length += bytes;
    return at;
  }
  u32(value: number): void {
    const at = this.reserve(4);
    this.buffer.writeUInt32LE(value >>> 0, at);
  }
  i32(value: number): void {
    const at = this.reserve(4);
    this.buffer.writeInt32LE(value, at);
  }
  u64(value: number | bigint): void {
    const at = this.reserve(8);
    this.buffer.writeBigUInt64LE(BigInt(value), at);
  }
  f32(value: number): void {
    const at = this.reserve(4);
    this.buffer.writeFloatLE(value, at);
  }
  string(value: string): void {
    const byteLength = Buffer.byteLength(value, "utf8");
    this.u64(byteLength);
    const at = this.reserve(byteLength);
    this.buffer.write(value, at, "utf8");
  }
  raw(bytes: Uint8Array): void {
    const at = this.reserve(bytes.length);
    this.buffer.set(bytes, at);
  }
  padTo(multiple: number): void {
    const padding = (multiple - (this.length % multiple)) % multiple;
    const at = this.reserve(padding);
    this.buffer.fill(0, at, this.length);
  }
  toBuffer(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

function writeValue(out: ByteWriter, entry: MetadataValue): void {
  out.u32(entry.type);
  switch (entry.type) {
    case ValueType.Uint32:
      out.u32(entry.value);
      break;
    case ValueType.Int32:
      out.i32(entry.value);
      break;
    case ValueType.Float32:
      out.f32(entry.value);
      break;
    case ValueType.Bool:
      out.raw(Buffer.from([entry.value ? 1 : 0]));
      break;
    case ValueType.String:
      out.string(entry.value);
      break;
    case ValueType.Array:
      out.u32(entry.itemType);
      out.u64(entry.value.length);
      if (entry.itemType === ValueType.String) for (const item of entry.value as string[]) out.string(item);
      else out.raw(Buffer.from((entry.value as Int32Array).buffer, (entry.value as Int32Array).byteOffset, (entry.value as Int32Array).byteLength));
      break;
  }
}

/** Maps a checkpoint tensor name to its GGUF name (llama.cpp's tensor_mapping for LlamaForCausalLM). */
export function ggufTensorName(name: string): string {
  const fixed: Record<string, string> = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
  };
  if (fixed[name]) return fixed[name];
  const match = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (!match) throw new Error(`no GGUF name for tensor "${name}"`);
  const [, layer, module, kind] = match;
  const modules: Record<string, string> = {
    input_layernorm: "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    post_attention_layernorm: "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
  };
  if (!modules[module]) throw new Error(`no GGUF name for tensor "${name}"`);
  return `blk.${layer}.${modules[module]}.${kind}`;
}

/**
 * Reorders the rows of a q_proj/k_proj weight (or bias) from the rotate-half layout of HF/MLX
 * checkpoints to the adjacent-pair layout that llama.cpp's "llama" RoPE expects. Within each
 * head, GGUF row 2j is checkpoint row j and GGUF row 2j+1 is checkpoint row j + headDim/2.
 */
export function permuteRotaryRows(data: Buffer, heads: number, headDim: number, rowBytes: number): Buffer {
  const out = Buffer.alloc(data.length);
  const half = headDim / 2;
  for (let head = 0; head < heads; head++) {
    const base = head * headDim;
    for (let j = 0; j < half; j++) {
      data.copy(out, (base + 2 * j) * rowBytes, (base + j) * rowBytes, (base + j + 1) * rowBytes);
      data.copy(out, (base + 2 * j + 1) * rowBytes, (base + j + half) * rowBytes, (base + j + half + 1) * rowBytes);
    }
  }
  return out;
}

export interface GgufOptions {
  /**
   * Tensor type of the matrices in the GGUF: the checkpoint's own dtype (default) or F32 (F16/BF16
   * widened exactly). Vectors are always F32.
   */
  tensorType?: "source" | "F32" | "Q8_0" | "Q4_0";
  /** llama.context_length (default: the config's max_position_embeddings). */
  contextLength?: number;
}

interface PlannedTensor {
  ggufName: string;
  source: NativeTensorSpec;
  file: string;
  outType: GgufTensorType;
  dims: number[];
  byteLength: number;
  offset: number;
  /** Heads whose rows are permuted (q/k tensors only). */
  permuteHeads: number | null;
}

function widenToF32(bytes: Buffer, dtype: NativeDtype): Buffer {
  if (dtype === "F32") return bytes;
  const count = bytes.length / 2;
  const out = Buffer.alloc(count * 4);
  const scratch = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < count; i++) {
    const bits = bytes.readUInt16LE(i * 2);
    if (dtype === "BF16") {
      out.writeUInt32LE((bits << 16) >>> 0, i * 4);
      continue;
    }
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    let value: number;
    if (exponent === 0) value = sign * mantissa * 2 ** -24;
    else if (exponent === 0x1f) value = mantissa ? NaN : sign * Infinity;
    else value = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
    scratch.setFloat32(0, value, true);
    out.writeUInt32LE(scratch.getUint32(0, true), i * 4);
  }
  return out;
}

function metadataFor(config: ModelConfig, vocabRows: number, tokenizer: TextTokenizer, contextLength: number, mergesList: string[], stopIds: Set<number>): [string, MetadataValue][] {
  const tokens: string[] = [];
  const types = new Int32Array(vocabRows);
  const added = new Map(tokenizer.addedTokenList().map((token) => [token.id, token]));
  for (let id = 0; id < vocabRows; id++) {
    const token = tokenizer.tokenString(id);
    if (token === undefined) {
      tokens.push(`[PAD${id}]`);
      types[id] = TokenType.unused;
      continue;
    }
    tokens.push(token);
    const addedToken = added.get(id);
    if (!addedToken) types[id] = TokenType.normal;
    else if (addedToken.special) types[id] = TokenType.control;
    else types[id] = TokenType.userDefined;
  }

  const entries: [string, MetadataValue][] = [
    ["general.architecture", { type: ValueType.String, value: "llama" }],
    ["general.name", { type: ValueType.String, value: "nesso-mcp oracle fixture" }],
    ["general.alignment", { type: ValueType.Uint32, value: alignment }],
    ["llama.context_length", { type: ValueType.Uint32, value: contextLength }],
    ["llama.embedding_length", { type: ValueType.Uint32, value: config.dim }],
    ["llama.block_count", { type: ValueType.Uint32, value: config.nLayers }],
    ["llama.feed_forward_length", { type: ValueType.Uint32, value: config.ffnDim }],
    ["llama.attention.head_count", { type: ValueType.Uint32, value: config.nHeads }],
    ["llama.attention.head_count_kv", { type: ValueType.Uint32, value: config.nKvHeads }],
    ["llama.attention.key_length", { type: ValueType.Uint32, value: config.headDim }],
    ["llama.attention.value_length", { type: ValueType.Uint32, value: config.headDim }],
    ["llama.attention.layer_norm_rms_epsilon", { type: ValueType.Float32, value: config.rmsNormEps }],
    ["llama.rope.freq_base", { type: ValueType.Float32, value: config.ropeTheta }],
    ["llama.rope.dimension_count", { type: ValueType.Uint32, value: config.headDim }],
    ["llama.vocab_size", { type: ValueType.Uint32, value: vocabRows }],
    ["tokenizer.ggml.model", { type: ValueType.String, value: "gpt2" }],
    ["tokenizer.ggml.pre", { type: ValueType.String, value: "llama-bpe" }],
    ["tokenizer.ggml.tokens", { type: ValueType.Array, itemType: ValueType.String, value: tokens }],
    ["tokenizer.ggml.token_type", { type: ValueType.Array, itemType: ValueType.Int32, value: types }],
    ["tokenizer.ggml.merges", { type: ValueType.Array, itemType: ValueType.String, value: mergesList }],
    ["tokenizer.ggml.add_bos_token", { type: ValueType.Bool, value: false }],
  ];
  if (config.ropePositionScale !== 1) {
    entries.push(["llama.rope.scaling.type", { type: ValueType.String, value: "linear" }]);
    entries.push(["llama.rope.scaling.factor", { type: ValueType.Float32, value: 1 / config.ropePositionScale }]);
  }
  const bos = tokenizer.bosToken === null ? undefined : tokenizer.tokenId(tokenizer.bosToken);
  if (bos !== undefined) entries.push(["tokenizer.ggml.bos_token_id", { type: ValueType.Uint32, value: bos }]);
  const eos = tokenizer.eosToken === null ? undefined : tokenizer.tokenId(tokenizer.eosToken);
  if (eos !== undefined) entries.push(["tokenizer.ggml.eos_token_id", { type: ValueType.Uint32, value: eos }]);
  const eot = tokenizer.tokenId("<|im_end|>") ?? [...stopIds][0];
  if (eot !== undefined) entries.push(["tokenizer.ggml.eot_token_id", { type: ValueType.Uint32, value: eot }]);
  return entries;
}

function readMerges(tokenizerJson: unknown): string[] {
  const merges = ((tokenizerJson as { model?: { merges?: unknown[] } }).model?.merges ?? []) as (string | [string, string])[];
  return merges.map((merge) => (Array.isArray(merge) ? `${merge[0]} ${merge[1]}` : merge));
}

/**
 * Writes `modelDir` (a checkpoint the engine loads) as a GGUF file at `outPath`. Returns the path.
 * The tensors are validated by the engine's own loader first, so a bad checkpoint fails the same way.
 */
export async function writeGguf(modelDir: string, outPath: string, options: GgufOptions = {}): Promise<string> {
  const config = parseConfigText(readFileSync(join(modelDir, "config.json"), "utf8"));
  const tokenizer = await TextTokenizer.load(modelDir);
  const spec = buildModelSpec(config, await readCheckpointTensors(modelDir), { tokenizerVocabSize: tokenizer.vocabSize });
  const vocabRows = spec.config.vocabSize;
  const merges = readMerges(await readModelJson(modelDir, "tokenizer.json"));
  const stopIds = stopTokenIds(tokenizer, config.eosTokenIds);

  // Plan the tensors: GGUF names, dims innermost-first, output type and aligned offsets.
  const planned: PlannedTensor[] = [];
  let dataOffset = 0;
  for (const tensor of spec.tensors) {
    // 1-D tensors (norm weights, biases) are always F32, as llama.cpp's converter writes them: its
    // CPU backend cannot multiply an F32 activation by a BF16 vector.
    if (tensor.dtype === "U32") {
      throw new Error(`writeGguf: tensor "${tensor.name}" is MLX-quantized; write the GGUF from a dequantized copy (nesso-mcp convert --dequantize)`);
    }
    let outType: GgufTensorType = tensor.dtype;
    if (options.tensorType !== undefined && options.tensorType !== "source") outType = options.tensorType;
    if (tensor.shape.length === 1) outType = "F32";
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    const byteLength = (elements / 32) * bytesPer32[outType];
    const isQ = /self_attn\.q_proj\./.test(tensor.name);
    const isK = /self_attn\.k_proj\./.test(tensor.name);
    // Weights of a rope_traditional model already pair adjacent rows, so they are not permuted.
    let permuteHeads: number | null = null;
    if (!config.ropeTraditional && isQ) permuteHeads = config.nHeads;
    if (!config.ropeTraditional && isK) permuteHeads = config.nKvHeads;
    planned.push({ ggufName: ggufTensorName(tensor.name), source: tensor, file: spec.files[tensor.file], outType, dims: [...tensor.shape].reverse(), byteLength, offset: dataOffset, permuteHeads });
    dataOffset += Math.ceil(byteLength / alignment) * alignment;
  }
  let ropeFreqs: Buffer | null = null;
  if (config.ropeFreqFactors) {
    ropeFreqs = Buffer.from(config.ropeFreqFactors.buffer, config.ropeFreqFactors.byteOffset, config.ropeFreqFactors.byteLength);
  }

  // Header: metadata, then tensor infos.
  const metadata = metadataFor(config, vocabRows, tokenizer, options.contextLength ?? config.maxContextSize, merges, stopIds);
  const header = new ByteWriter();
  header.raw(Buffer.from("GGUF", "ascii"));
  header.u32(3);
  header.u64(planned.length + (ropeFreqs ? 1 : 0));
  header.u64(metadata.length);
  for (const [key, value] of metadata) {
    header.string(key);
    writeValue(header, value);
  }
  for (const tensor of planned) {
    header.string(tensor.ggufName);
    header.u32(tensor.dims.length);
    for (const dim of tensor.dims) header.u64(dim);
    header.u32(ggmlType[tensor.outType]);
    header.u64(tensor.offset);
  }
  if (ropeFreqs) {
    header.string("rope_freqs.weight");
    header.u32(1);
    header.u64(ropeFreqs.length / 4);
    header.u32(ggmlType.F32);
    header.u64(dataOffset);
  }
  header.padTo(alignment);

  // Data: each tensor read from its safetensors file, permuted and widened as planned.
  const temporary = `${outPath}.partial`;
  const fd = openSync(temporary, "w");
  const sources = new Map<string, number>();
  try {
    writeSync(fd, header.toBuffer());
    for (const tensor of planned) {
      let sourceFd = sources.get(tensor.file);
      if (sourceFd === undefined) {
        sourceFd = openSync(tensor.file, "r");
        sources.set(tensor.file, sourceFd);
      }
      let bytes: Buffer = Buffer.alloc(tensor.source.byteLength);
      readSync(sourceFd, bytes, 0, bytes.length, tensor.source.offset);
      const blockType = tensor.outType === "Q8_0" || tensor.outType === "Q4_0" ? tensor.outType : null;
      bytes = blockType !== null ? widenToF32(bytes, tensor.source.dtype as NativeDtype) : widenToF32IfNeeded(bytes, tensor);
      if (tensor.permuteHeads !== null) {
        const rows = tensor.source.shape[0];
        bytes = permuteRotaryRows(bytes, tensor.permuteHeads, config.headDim, bytes.length / rows);
      }
      if (blockType !== null) bytes = quantizeBlocks(bytes, blockType);
      writeSync(fd, bytes);
      const padding = Math.ceil(bytes.length / alignment) * alignment - bytes.length;
      if (padding > 0) writeSync(fd, Buffer.alloc(padding));
    }
    if (ropeFreqs) writeSync(fd, ropeFreqs);
  } finally {
    for (const sourceFd of sources.values()) closeSync(sourceFd);
    closeSync(fd);
  }
  renameSync(temporary, outPath);
  return outPath;
}

function widenToF32IfNeeded(bytes: Buffer, tensor: PlannedTensor): Buffer {
  return tensor.outType === tensor.source.dtype ? bytes : widenToF32(bytes, tensor.source.dtype as NativeDtype);
}

/**
 * Quantizes F32 values (a multiple of 32) into llama.cpp's reference Q8_0 or Q4_0 blocks, as
 * quantize_row_q8_0_ref and quantize_row_q4_0_ref in ggml-quants.c compute them: Q8_0 has
 * d = max|x| / 127 and q = round(x / d); Q4_0 has d = -m / 8 for the element m of largest
 * magnitude and q = min(15, trunc(x / d + 8.5)), packed with element j in the low nibble of byte
 * j and element j + 16 in its high nibble.
 */
function quantizeBlocks(values: Buffer, type: "Q8_0" | "Q4_0"): Buffer {
  const floats = new Float32Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const blocks = floats.length / 32;
  const out = Buffer.alloc(blocks * bytesPer32[type]);
  for (let b = 0; b < blocks; b++) {
    const x = floats.subarray(b * 32, b * 32 + 32);
    const at = b * bytesPer32[type];
    if (type === "Q8_0") {
      let amax = 0;
      for (const value of x) amax = Math.max(amax, Math.abs(value));
      const d = amax / 127;
      const inverse = d !== 0 ? 1 / d : 0;
      out.writeUInt16LE(float32ToF16Bits(d), at);
      for (let j = 0; j < 32; j++) {
        // roundf rounds half away from zero; Math.round rounds half up.
        const scaled = Math.fround(x[j] * inverse);
        out.writeInt8(scaled < 0 ? -Math.round(-scaled) : Math.round(scaled), at + 2 + j);
      }
      continue;
    }
    let amax = 0;
    let max = 0;
    for (const value of x) {
      if (Math.abs(value) > amax) {
        amax = Math.abs(value);
        max = value;
      }
    }
    const d = max / -8;
    const inverse = d !== 0 ? 1 / d : 0;
    out.writeUInt16LE(float32ToF16Bits(d), at);
    for (let j = 0; j < 16; j++) {
      const low = Math.min(15, Math.trunc(Math.fround(x[j] * inverse) + 8.5));
      const high = Math.min(15, Math.trunc(Math.fround(x[j + 16] * inverse) + 8.5));
      out[at + 2 + j] = low | (high << 4);
    }
  }
  return out;
}
