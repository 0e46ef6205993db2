// Writes a checkpoint directory in the MLX layout that mlx_lm.convert produces: quantized with MLX
// affine quantization (`--quantize`), or dequantized back to float (`--dequantize`). The output
// has the same tensor names as the source, one model.safetensors with its index, config.json with
// the `quantization` block, and the tokenizer files and chat template copied.

import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat, writeFile, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { NessoError, throwIfAborted } from "../errors.js";
import { createLogger } from "../logger.js";
import { readCheckpointTensors, type CheckpointTensor } from "../engine/checkpoint.js";
import { resolveModelConfig } from "../engine/config.js";
import { affineBits, affineGroupSizes, packedColumns, paramsFor, type AffineParams } from "../engine/quantization.js";
import { dequantizeRows, quantizeRows } from "./affine.js";
import { decodeFloats, encodeFloats, floatDtypeBytes, floatDtypes, type FloatDtype } from "./float-dtype.js";

const log = createLogger("convert");

/** Files besides the weights and config.json that mlx_lm.convert carries over (tokenizer, template, generation settings). */
const copiedFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "chat_template.json", "generation_config.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json"];

export type ConvertMode =
  | {
      kind: "quantize";
      bits: number;
      groupSize: number;
      /**
       * Per-module parameters keyed by module path ("model.layers.0.mlp.down_proj"), written to the
       * `quantization` block as mlx-lm's mixed recipes do; `false` keeps that module in float.
       */
      overrides?: Record<string, AffineParams | false>;
    }
  | {
      kind: "dequantize";
      /** dtype of the dequantized weights (default F32); other float tensors keep their dtype. */
      dtype?: FloatDtype;
    };

export interface ConvertOptions {
  /** Source checkpoint directory. */
  source: string;
  /** Output directory; created, or replaced when `force` is set. */
  output: string;
  mode: ConvertMode;
  /** Replace a non-empty output directory (default false: reject it). */
  force?: boolean;
  signal?: AbortSignal;
}

export interface ConvertResult {
  output: string;
  /** Module paths written quantized (quantize) or dequantized (dequantize). */
  converted: string[];
  /** Weight names left in float although they are linear or embedding weights (quantize only). */
  keptFloat: string[];
  /** Bytes of model.safetensors. */
  bytes: number;
}

/** One tensor of the output file and how to produce its bytes. */
interface OutputTensor {
  name: string;
  dtype: string;
  shape: number[];
  byteLength: number;
  produce: () => Promise<Uint8Array>;
}

function checkAffine(params: AffineParams, where: string): void {
  if (!(affineBits as readonly number[]).includes(params.bits)) {
    throw new NessoError("INVALID_ARGUMENT", `${where}: bits ${params.bits} is not supported; choose one of ${affineBits.join(", ")}`);
  }
  if (!(affineGroupSizes as readonly number[]).includes(params.groupSize)) {
    throw new NessoError("INVALID_ARGUMENT", `${where}: group size ${params.groupSize} is not supported; choose one of ${affineGroupSizes.join(", ")}`);
  }
}

/** Orders tensor names by UTF-16 code units, as Python's sorted() orders mlx-lm's weight_map keys. */
function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

function isFloatDtype(dtype: string): dtype is FloatDtype {
  return (floatDtypes as readonly string[]).includes(dtype);
}

/** Reads a tensor's bytes from its safetensors file. */
async function readTensorBytes(handles: FileHandle[], tensor: CheckpointTensor): Promise<Uint8Array> {
  const bytes = new Uint8Array(tensor.byteLength);
  const { bytesRead } = await handles[tensor.file].read(bytes, 0, bytes.length, tensor.offset);
  if (bytesRead !== bytes.length) {
    throw new NessoError("INVALID_MODEL", `tensor "${tensor.name}": read ${bytesRead} of ${bytes.length} bytes (truncated file? download the model again with nesso-mcp pull)`);
  }
  return bytes;
}

/** Tensors a Llama checkpoint does not need, as mlx-lm's Model.sanitize drops them. */
function isDropped(name: string, tieWordEmbeddings: boolean): boolean {
  return name.endsWith(".rotary_emb.inv_freq") || (tieWordEmbeddings && name.startsWith("lm_head."));
}

function planQuantize(tensors: Map<string, CheckpointTensor>, handles: FileHandle[], mode: Extract<ConvertMode, { kind: "quantize" }>, result: ConvertResult): OutputTensor[] {
  const global = { bits: mode.bits, groupSize: mode.groupSize };
  checkAffine(global, "convert --quantize");
  for (const [path, params] of Object.entries(mode.overrides ?? {})) if (params !== false) checkAffine(params, `convert override for "${path}"`);

  const planned: OutputTensor[] = [];
  for (const tensor of tensors.values()) {
    if (tensor.name.endsWith(".scales") || tensor.dtype === "U32") {
      throw new NessoError("INVALID_ARGUMENT", `convert --quantize: tensor "${tensor.name}" is already quantized; dequantize the checkpoint first (nesso-mcp convert --dequantize)`);
    }
    if (!isFloatDtype(tensor.dtype)) {
      throw new NessoError("UNSUPPORTED", `convert: tensor "${tensor.name}" has dtype ${tensor.dtype}; supported source dtypes are F32, F16 and BF16`);
    }
    const dtype: FloatDtype = tensor.dtype;
    const copy: OutputTensor = { name: tensor.name, dtype, shape: tensor.shape, byteLength: tensor.byteLength, produce: () => readTensorBytes(handles, tensor) };

    // Every 2-D ".weight" of a Llama checkpoint belongs to a Linear or the Embedding; norms are 1-D.
    if (!tensor.name.endsWith(".weight") || tensor.shape.length !== 2) {
      planned.push(copy);
      continue;
    }
    const path = tensor.name.slice(0, -".weight".length);
    const override = mode.overrides?.[path];
    const params = override === undefined ? global : override;
    const [rows, cols] = tensor.shape;
    // mlx-lm quantizes only weights whose input dimension is a multiple of the group size.
    if (params === false || cols % params.groupSize !== 0) {
      result.keptFloat.push(tensor.name);
      planned.push(copy);
      continue;
    }

    const { bits, groupSize } = params;
    const groups = cols / groupSize;
    let quantized: Promise<{ packed: Uint8Array; scales: Uint8Array; biases: Uint8Array }> | null = null;
    // The three outputs of one weight are written one after the other, so quantize once.
    const quantizeOnce = () => {
      quantized ??= readTensorBytes(handles, tensor).then((bytes) => {
        const rowsQuantized = quantizeRows(decodeFloats(bytes, dtype), rows, cols, bits, groupSize);
        return { packed: rowsQuantized.packed, scales: encodeFloats(rowsQuantized.scales, dtype), biases: encodeFloats(rowsQuantized.biases, dtype) };
      });
      return quantized;
    };
    const groupBytes = rows * groups * floatDtypeBytes[dtype];
    planned.push(
      { name: `${path}.weight`, dtype: "U32", shape: [rows, packedColumns(cols, bits)], byteLength: (rows * cols * bits) / 8, produce: async () => (await quantizeOnce()).packed },
      { name: `${path}.scales`, dtype, shape: [rows, groups], byteLength: groupBytes, produce: async () => (await quantizeOnce()).scales },
      { name: `${path}.biases`, dtype, shape: [rows, groups], byteLength: groupBytes, produce: async () => (await quantizeOnce()).biases },
    );
    result.converted.push(path);
  }
  return planned;
}

function planDequantize(tensors: Map<string, CheckpointTensor>, handles: FileHandle[], config: ReturnType<typeof resolveModelConfig>, mode: Extract<ConvertMode, { kind: "dequantize" }>, result: ConvertResult): OutputTensor[] {
  const quantization = config.quantization;
  if (quantization === null) {
    throw new NessoError("INVALID_ARGUMENT", "convert --dequantize: config.json has no quantization block, so the checkpoint is not quantized");
  }
  const target = mode.dtype ?? "F32";
  const planned: OutputTensor[] = [];
  for (const tensor of tensors.values()) {
    if (tensor.name.endsWith(".scales") || tensor.name.endsWith(".biases")) continue;
    const path = tensor.name.slice(0, -".weight".length);
    const scales = tensors.get(`${path}.scales`);
    const biases = tensors.get(`${path}.biases`);
    if (!tensor.name.endsWith(".weight") || !scales) {
      if (!isFloatDtype(tensor.dtype)) {
        throw new NessoError("INVALID_MODEL", `convert --dequantize: tensor "${tensor.name}" has dtype ${tensor.dtype} but no "${path}.scales"; the checkpoint is incomplete`);
      }
      planned.push({ name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteLength: tensor.byteLength, produce: () => readTensorBytes(handles, tensor) });
      continue;
    }
    if (!biases || !isFloatDtype(scales.dtype) || !isFloatDtype(biases.dtype) || tensor.dtype !== "U32") {
      throw new NessoError("INVALID_MODEL", `convert --dequantize: "${path}" needs a U32 weight with float scales and biases but has ${tensor.dtype} / ${scales.dtype} / ${biases?.dtype ?? "no biases"}`);
    }
    const { bits, groupSize } = paramsFor(quantization, path);
    const [rows, packedCols] = tensor.shape;
    const cols = (packedCols * 32) / bits;
    if (!Number.isInteger(cols) || scales.shape[1] * groupSize !== cols || scales.shape[0] !== rows) {
      throw new NessoError("INVALID_MODEL", `convert --dequantize: "${path}" has weight shape ${JSON.stringify(tensor.shape)} and scales shape ${JSON.stringify(scales.shape)}, which do not fit bits ${bits} and group size ${groupSize}`);
    }
    const scaleDtype = scales.dtype;
    const biasDtype = biases.dtype;
    planned.push({
      name: tensor.name,
      dtype: target,
      shape: [rows, cols],
      byteLength: rows * cols * floatDtypeBytes[target],
      produce: async () => {
        const packed = await readTensorBytes(handles, tensor);
        const scaleValues = decodeFloats(await readTensorBytes(handles, scales), scaleDtype);
        const biasValues = decodeFloats(await readTensorBytes(handles, biases), biasDtype);
        return encodeFloats(dequantizeRows(packed, scaleValues, biasValues, rows, cols, bits, groupSize), target);
      },
    });
    result.converted.push(path);
  }
  return planned;
}

/** Builds the safetensors header for `tensors` laid out back to back, padded with spaces to 8 bytes. */
function safetensorsHeader(tensors: OutputTensor[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: "mlx" } };
  let offset = 0;
  for (const tensor of tensors) {
    header[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + tensor.byteLength] };
    offset += tensor.byteLength;
  }
  let text = JSON.stringify(header);
  const length = Buffer.byteLength(text, "utf8");
  text = text.padEnd(text.length + ((8 - (length % 8)) % 8), " ");
  const json = Buffer.from(text, "utf8");
  const out = new Uint8Array(8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

/** config.json of the output: the source keys, the quantization block set or removed, keys sorted. */
function outputConfig(raw: Record<string, unknown>, mode: ConvertMode, converted: string[]): Record<string, unknown> {
  const config: Record<string, unknown> = { ...raw };
  delete config.quantization;
  delete config.quantization_config;
  if (mode.kind === "quantize") {
    const block: Record<string, unknown> = { group_size: mode.groupSize, bits: mode.bits, mode: "affine" };
    for (const [path, params] of Object.entries(mode.overrides ?? {})) {
      if (params !== false && converted.includes(path)) block[path] = { group_size: params.groupSize, bits: params.bits, mode: "affine" };
    }
    config.quantization = block;
    config.quantization_config = block;
  }
  return Object.fromEntries(Object.entries(config).sort(([a], [b]) => a.localeCompare(b)));
}

/** Rejects an output that is the source or a non-empty directory (unless `force`). */
async function checkOutput(source: string, output: string, force: boolean): Promise<void> {
  if (resolve(source) === resolve(output)) {
    throw new NessoError("INVALID_ARGUMENT", `convert: the output directory ${output} is the source directory; choose another output`);
  }
  let entries: string[];
  try {
    const info = await stat(output);
    if (!info.isDirectory()) throw new NessoError("INVALID_ARGUMENT", `convert: the output ${output} exists and is not a directory; choose another output`);
    entries = await readdir(output);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if (entries.length > 0 && !force) {
    throw new NessoError("INVALID_ARGUMENT", `convert: the output directory ${output} is not empty (${entries.length} entries); pass --force to replace it`);
  }
}

/**
 * Converts the checkpoint at `options.source` into `options.output`. Everything is written into a
 * temporary sibling directory that is renamed into place at the end, so an interrupted or failed
 * conversion leaves no partial output.
 */
export async function convertCheckpoint(options: ConvertOptions): Promise<ConvertResult> {
  const { source, output, mode, signal } = options;
  throwIfAborted(signal, "convert");
  const configText = await readFile(join(source, "config.json"), "utf8").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") throw new NessoError("MODEL_NOT_FOUND", `convert: ${join(source, "config.json")} not found; the source must be a model directory`);
    throw error;
  });
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(configText) as Record<string, unknown>;
  } catch (error) {
    throw new NessoError("INVALID_MODEL", `convert: ${join(source, "config.json")} is not valid JSON (${(error as Error).message})`, { cause: error });
  }
  const config = resolveModelConfig(raw, join(source, "config.json"));
  await checkOutput(source, output, options.force ?? false);

  const checkpoint = await readCheckpointTensors(source);
  const kept = [...checkpoint.tensors].filter(([name]) => !isDropped(name, config.tieWordEmbeddings));
  kept.sort(([a], [b]) => compareNames(a, b));
  const tensors = new Map(kept);
  const handles = await Promise.all(checkpoint.files.map((path) => open(path, "r")));
  const temporary = join(dirname(resolve(output)), `.${basename(output)}.partial-${process.pid}-${Date.now()}`);
  const result: ConvertResult = { output, converted: [], keptFloat: [], bytes: 0 };
  try {
    const planned = mode.kind === "quantize" ? planQuantize(tensors, handles, mode, result) : planDequantize(tensors, handles, config, mode, result);
    await mkdir(temporary, { recursive: true });

    // model.safetensors: the header, then each tensor produced and written in header order.
    const header = safetensorsHeader(planned);
    const file = await open(join(temporary, "model.safetensors"), "w");
    let totalSize = 0;
    let totalParameters = 0;
    try {
      await file.write(header);
      for (const tensor of planned) {
        throwIfAborted(signal, "convert");
        const bytes = await tensor.produce();
        if (bytes.byteLength !== tensor.byteLength) {
          throw new NessoError("INTERNAL", `convert: tensor "${tensor.name}" produced ${bytes.byteLength} bytes but the header promises ${tensor.byteLength}`);
        }
        await file.write(bytes);
        totalSize += bytes.byteLength;
        totalParameters += tensor.shape.reduce((a, b) => a * b, 1);
      }
    } finally {
      await file.close();
    }
    result.bytes = header.byteLength + totalSize;

    const names = planned.map((tensor) => tensor.name).sort(compareNames);
    const weightMap = Object.fromEntries(names.map((name) => [name, "model.safetensors"]));
    await writeFile(join(temporary, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: totalSize, total_parameters: totalParameters }, weight_map: weightMap }, null, 4));
    await writeFile(join(temporary, "config.json"), JSON.stringify(outputConfig(raw, mode, result.converted), null, 4));
    const present = new Set(await readdir(source));
    for (const name of copiedFiles) if (present.has(name)) await copyFile(join(source, name), join(temporary, name));

    throwIfAborted(signal, "convert");
    await rm(output, { recursive: true, force: true });
    await rename(temporary, output);
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  } finally {
    await Promise.all(handles.map((handle) => handle.close()));
  }
  log.info(`convert: wrote ${output} (${result.converted.length} weights ${mode.kind === "quantize" ? "quantized" : "dequantized"}, ${result.keptFloat.length} kept in float, ${result.bytes} bytes)`);
  return result;
}

