import { closeSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NessoError } from "../../src/errors.js";
import { parseSafetensorsHeader, readSafetensorsHeader } from "../../src/engine/safetensors.js";
import { encodeTensor } from "../fixtures/dtype.js";
import { writeSafetensors } from "../fixtures/checkpoint.js";
import { makeTempDir } from "./helpers.js";

const temp = makeTempDir();
afterAll(() => temp.remove());

function tensor(name: string, dtype: "F32" | "F16" | "BF16", shape: number[], fill = 1) {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => fill + i);
  return { name, dtype, shape, data: encodeTensor(values, dtype) };
}

/** Writes a raw file: 8-byte length, the header text exactly as given, then `dataBytes` zero bytes. */
function writeRaw(name: string, header: string, dataBytes: number, lengthOverride?: bigint): string {
  const path = join(temp.dir, name);
  const headerBytes = Buffer.from(header, "utf8");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(lengthOverride ?? BigInt(headerBytes.length));
  writeFileSync(path, Buffer.concat([prefix, headerBytes, Buffer.alloc(dataBytes)]));
  return path;
}

async function rejection(promise: Promise<unknown>): Promise<NessoError> {
  const error = await promise.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(NessoError);
  return error as NessoError;
}

describe("safetensors header", () => {
  it("parses an MLX-style unpadded header with a BF16 tensor at an odd offset", async () => {
    const path = join(temp.dir, "mlx.safetensors");
    // One byte of U8-sized padding is impossible with float dtypes, so an odd-length header is
    // what puts the BF16 tensor at an odd absolute offset (MLX does not pad its header).
    const tensors = [tensor("a.weight", "BF16", [3]), tensor("b.weight", "F32", [2, 2])];
    writeSafetensors(path, tensors, "mlx", { format: "mlx", pad: "x" });
    let header = await readSafetensorsHeader(path);
    if (header.dataStart % 2 === 0) {
      writeSafetensors(path, tensors, "mlx", { format: "mlx", pad: "xy" });
      header = await readSafetensorsHeader(path);
    }
    const bf16 = header.tensors.find((t) => t.name === "a.weight")!;
    expect(bf16.offset % 2).toBe(1);
    expect(header.headerLength % 8).not.toBe(0);
    expect(bf16.byteLength).toBe(6);
    expect(header.metadata.format).toBe("mlx");

    const bytes = readFileSync(path);
    const first = bytes.readUInt16LE(bf16.offset);
    expect(first).toBe(0x3f80); // bf16 of 1.0
    const f32 = header.tensors.find((t) => t.name === "b.weight")!;
    expect(bytes.readFloatLE(f32.offset + 12)).toBe(4);
  });

  it("parses an HF-style header padded with spaces", async () => {
    const path = join(temp.dir, "hf.safetensors");
    writeSafetensors(path, [tensor("x", "F16", [5]), tensor("y", "F32", [1])], "hf", { format: "pt" });
    const header = await readSafetensorsHeader(path);
    expect(header.headerLength % 8).toBe(0);
    expect(header.dataStart % 8).toBe(0);
    expect(header.tensors.map((t) => t.name)).toEqual(["x", "y"]);
    expect(header.tensors[1].offset).toBe(header.dataStart + 10);
  });

  it("accepts empty tensors and 0-rank scalars", () => {
    const text = JSON.stringify({ e: { dtype: "F32", shape: [0, 4], data_offsets: [0, 0] }, s: { dtype: "F32", shape: [], data_offsets: [0, 4] } });
    const header = parseSafetensorsHeader(Buffer.from(text), 8 + text.length + 4, "t.safetensors");
    expect(header.tensors.map((t) => t.byteLength)).toEqual([0, 4]);
  });

  it("rejects a header length past the end of the file", async () => {
    const path = writeRaw("long.safetensors", "{}", 0, 5000n);
    const error = await rejection(readSafetensorsHeader(path));
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toContain("header length 5000 runs past the end of the file, which has 10 bytes");
    expect(error.message).toContain("nesso-mcp pull");
  });

  it("rejects a header length over the 100 MB limit", async () => {
    const path = writeRaw("huge.safetensors", "{}", 0, 100_000_000n);
    const error = await rejection(readSafetensorsHeader(path));
    expect(error.message).toContain("is not below the limit of 100000000 bytes");
  });

  it("rejects a file shorter than the length field", async () => {
    const path = join(temp.dir, "tiny.safetensors");
    writeFileSync(path, Buffer.from([1, 2, 3]));
    const error = await rejection(readSafetensorsHeader(path));
    expect(error.message).toContain("the file has 3 bytes, fewer than the 8-byte header length field");
  });

  it("rejects truncated tensor data", async () => {
    const path = join(temp.dir, "truncated.safetensors");
    writeSafetensors(path, [tensor("model.norm.weight", "F32", [64])], "mlx");
    const fullSize = readFileSync(path).length;
    truncateSync(path, fullSize - 10);
    const error = await rejection(readSafetensorsHeader(path));
    expect(error.code).toBe("INVALID_MODEL");
    expect(error.message).toBe(
      `safetensors header of truncated.safetensors: tensor "model.norm.weight" ends at byte ${fullSize} but the file has ${fullSize - 10} bytes (truncated download? run nesso-mcp pull again)`,
    );
  });

  it("rejects an unknown dtype", () => {
    const text = JSON.stringify({ w: { dtype: "Q4_K", shape: [2], data_offsets: [0, 2] } });
    expect(() => parseSafetensorsHeader(Buffer.from(text), 100, "m.safetensors")).toThrow(/tensor "w" has unknown dtype "Q4_K"/);
  });

  it("rejects data_offsets that disagree with the shape", () => {
    const text = JSON.stringify({ w: { dtype: "BF16", shape: [2, 3], data_offsets: [0, 8] } });
    expect(() => parseSafetensorsHeader(Buffer.from(text), 100, "m.safetensors")).toThrow(/needs 12 bytes but its data_offsets \[0, 8\] span 8/);
  });

  it("rejects overlapping tensors", () => {
    const text = JSON.stringify({
      a: { dtype: "F32", shape: [4], data_offsets: [0, 16] },
      b: { dtype: "F32", shape: [4], data_offsets: [8, 24] },
    });
    expect(() => parseSafetensorsHeader(Buffer.from(text), 200, "m.safetensors")).toThrow(/tensors "a" .* and "b" .* overlap/);
  });

  it("allows gaps between tensors", () => {
    const text = JSON.stringify({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [12, 16] } });
    expect(parseSafetensorsHeader(Buffer.from(text), 200, "m.safetensors").tensors).toHaveLength(2);
  });

  it("rejects headers that are not a JSON object", () => {
    for (const text of ["[]", "null", "42", '"x"', "{", "\uFFFF{}"]) {
      expect(() => parseSafetensorsHeader(Buffer.from(text), 100, "m.safetensors"), text).toThrow(NessoError);
    }
  });

  it("rejects invalid UTF-8 in the header", () => {
    const bytes = Uint8Array.from([0x7b, 0xff, 0x7d]);
    expect(() => parseSafetensorsHeader(bytes, 100, "m.safetensors")).toThrow(/not valid UTF-8/);
  });

  it("rejects bad shapes and offsets", () => {
    const cases: [unknown, RegExp][] = [
      [{ dtype: "F32", shape: [-1], data_offsets: [0, 4] }, /expected a list of integers >= 0/],
      [{ dtype: "F32", shape: [1.5], data_offsets: [0, 4] }, /expected a list of integers >= 0/],
      [{ dtype: "F32", shape: "1", data_offsets: [0, 4] }, /expected a list of integers >= 0/],
      [{ dtype: "F32", shape: [1], data_offsets: [4, 0] }, /end before begin/],
      [{ dtype: "F32", shape: [1], data_offsets: [0] }, /expected \[begin, end\]/],
      [{ shape: [1], data_offsets: [0, 4] }, /has no dtype string/],
      [{ dtype: "F32", shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] }, /needs 4835703278458516698824704 bytes/],
      ["F32", /must be an object/],
    ];
    for (const [entry, pattern] of cases) {
      const text = JSON.stringify({ w: entry });
      expect(() => parseSafetensorsHeader(Buffer.from(text), 1000, "m.safetensors"), JSON.stringify(entry)).toThrow(pattern);
    }
  });

  it("reports a missing file as MODEL_NOT_FOUND", async () => {
    const error = await rejection(readSafetensorsHeader(join(temp.dir, "absent.safetensors")));
    expect(error.code).toBe("MODEL_NOT_FOUND");
    expect(error.message).toContain("nesso-mcp pull");
  });

  it("reads only the header of a large file", async () => {
    const path = join(temp.dir, "sparse.safetensors");
    const header = JSON.stringify({ big: { dtype: "BF16", shape: [1024, 1024, 256], data_offsets: [0, 2 * 1024 * 1024 * 256] } });
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(header.length));
    const fd = openSync(path, "w");
    writeSync(fd, prefix);
    writeSync(fd, header);
    closeSync(fd);
    truncateSync(path, 8 + header.length + 2 * 1024 * 1024 * 256); // sparse 512 MiB file
    const parsed = await readSafetensorsHeader(path);
    expect(parsed.tensors[0].byteLength).toBe(2 * 1024 * 1024 * 256);
  });
});
