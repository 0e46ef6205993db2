// safetensors headers: an 8-byte little-endian header length, a JSON header, then the data buffer.
// Only the header is read and validated here; the native addon mmaps the data.

import { open } from "node:fs/promises";
import { basename } from "node:path";
import { NessoError } from "../errors.js";

/** Headers of this size or more are rejected, as the Rust reference and MLX do. */
export const maxHeaderLength = 100_000_000;

/** Bits per element of every dtype the safetensors format defines. */
export const dtypeBits: Readonly<Record<string, number>> = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E4M3: 8,
  F8_E5M2: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  I64: 64,
  U64: 64,
  F64: 64,
  C64: 64,
};

/** One tensor entry of a safetensors header. */
export interface SafetensorsTensor {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte offset of the first element in the file (may be unaligned). */
  offset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  /** Byte length N of the JSON header. */
  headerLength: number;
  /** Absolute offset of the data buffer (8 + N). */
  dataStart: number;
  fileSize: number;
  /** The "__metadata__" map (empty when absent). */
  metadata: Record<string, string>;
  tensors: SafetensorsTensor[];
}

const redownloadHint = "(truncated download? run nesso-mcp pull again)";

function headerError(fileName: string, message: string): NessoError {
  return new NessoError("INVALID_MODEL", `safetensors header of ${fileName}: ${message}`);
}

/** Reads the 8-byte header length; fails when it does not fit in the file. */
export function readHeaderLength(prefix: Uint8Array, fileSize: number, fileName: string): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    throw headerError(fileName, `the file has ${fileSize} bytes, fewer than the 8-byte header length field ${redownloadHint}`);
  }
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length >= BigInt(maxHeaderLength)) {
    throw headerError(fileName, `header length ${length} is not below the limit of ${maxHeaderLength} bytes (not a safetensors file?)`);
  }
  if (8n + length > BigInt(fileSize)) {
    throw headerError(fileName, `header length ${length} runs past the end of the file, which has ${fileSize} bytes ${redownloadHint}`);
  }
  return Number(length);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Parses and validates the JSON header of a safetensors file. `headerBytes` are the N bytes after
 * the length field. Checks: the JSON is an object; every entry has a known dtype, a shape of
 * integers >= 0 and data_offsets [begin, end] with end - begin = elements x element size; every
 * tensor ends inside the file; no two tensors overlap. Offsets need no alignment (MLX writes
 * unpadded headers). Gaps between tensors are allowed.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number, fileName: string): SafetensorsHeader {
  const headerLength = headerBytes.byteLength;
  const dataStart = 8 + headerLength;

  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    throw headerError(fileName, `the ${headerLength}-byte header is not valid UTF-8 ${redownloadHint}`);
  }
  // NOTE: JSON.parse keeps the last of duplicate keys; the format forbids duplicates but they are
  // not detected here.
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw headerError(fileName, `the header is not valid JSON (${(error as Error).message}) ${redownloadHint}`);
  }
  if (!isPlainObject(json)) {
    throw headerError(fileName, `the header must be a JSON object but is ${Array.isArray(json) ? "an array" : json === null ? "null" : typeof json}`);
  }

  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensor[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === "__metadata__") {
      if (!isPlainObject(entry)) throw headerError(fileName, `"__metadata__" must be an object of strings`);
      for (const [key, value] of Object.entries(entry)) metadata[key] = String(value);
      continue;
    }
    tensors.push(parseTensorEntry(name, entry, dataStart, fileSize, fileName));
  }
  checkNoOverlap(tensors, fileName);
  return { headerLength, dataStart, fileSize, metadata, tensors };
}

function parseTensorEntry(name: string, entry: unknown, dataStart: number, fileSize: number, fileName: string): SafetensorsTensor {
  const where = `tensor "${name}"`;
  if (!isPlainObject(entry)) throw headerError(fileName, `${where} must be an object with dtype, shape and data_offsets`);

  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== "string") throw headerError(fileName, `${where} has no dtype string`);
  const bits = dtypeBits[dtype];
  if (bits === undefined) {
    throw headerError(fileName, `${where} has unknown dtype "${dtype}"; safetensors dtypes are ${Object.keys(dtypeBits).join(", ")}`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw headerError(fileName, `${where} has shape ${JSON.stringify(shape)}; expected a list of integers >= 0`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw headerError(fileName, `${where} has data_offsets ${JSON.stringify(offsets)}; expected [begin, end] with integers >= 0`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw headerError(fileName, `${where} has data_offsets [${begin}, ${end}] with end before begin`);

  // BigInt, because a hostile shape can overflow the 2^53 range of a double.
  const elements = (shape as number[]).reduce((product, size) => product * BigInt(size), 1n);
  const expectedBits = elements * BigInt(bits);
  if (expectedBits % 8n !== 0n) {
    throw headerError(fileName, `${where} has ${elements} elements of ${dtype}, which is not a whole number of bytes`);
  }
  const expectedBytes = expectedBits / 8n;
  if (BigInt(end - begin) !== expectedBytes) {
    throw headerError(
      fileName,
      `${where} (${dtype} ${JSON.stringify(shape)}) needs ${expectedBytes} bytes but its data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  const absoluteEnd = dataStart + end;
  if (absoluteEnd > fileSize) {
    throw headerError(fileName, `tensor "${name}" ends at byte ${absoluteEnd} but the file has ${fileSize} bytes ${redownloadHint}`);
  }
  return { name, dtype, shape: shape as number[], offset: dataStart + begin, byteLength: end - begin };
}

function checkNoOverlap(tensors: SafetensorsTensor[], fileName: string): void {
  const sorted = tensors.filter((tensor) => tensor.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1];
    const current = sorted[i];
    if (current.offset < previous.offset + previous.byteLength) {
      throw headerError(
        fileName,
        `tensors "${previous.name}" (bytes ${previous.offset}..${previous.offset + previous.byteLength}) and "${current.name}" (from byte ${current.offset}) overlap`,
      );
    }
  }
}

/** Reads and validates the header of the safetensors file at `path` without reading the data. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const fileName = basename(path);
  let handle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new NessoError("MODEL_NOT_FOUND", `safetensors file ${path} not found; download the model with nesso-mcp pull`, { cause: error });
    throw new NessoError("INVALID_MODEL", `cannot open safetensors file ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const { size } = await handle.stat();
    const prefix = new Uint8Array(8);
    await handle.read(prefix, 0, Math.min(8, size), 0);
    const headerLength = readHeaderLength(prefix, size, fileName);
    const headerBytes = new Uint8Array(headerLength);
    const { bytesRead } = await handle.read(headerBytes, 0, headerLength, 8);
    if (bytesRead !== headerLength) {
      throw headerError(fileName, `read ${bytesRead} of ${headerLength} header bytes ${redownloadHint}`);
    }
    return parseSafetensorsHeader(headerBytes, size, fileName);
  } finally {
    await handle.close();
  }
}
