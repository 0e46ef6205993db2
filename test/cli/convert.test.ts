// `nesso-mcp convert` as a subprocess. A bf16 checkpoint quantized to 4 bits has the MLX layout
// (tensor names, shapes, dtypes, the quantization block, the tokenizer files) and generates. A
// non-empty output is kept unless --force is given, and --dequantize restores float weights.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dequantizeRows } from "../../src/convert/affine.js";
import { decodeFloats } from "../../src/convert/float-dtype.js";
import { Model } from "../../src/engine/model.js";
import { cachedCheckpoint, tinyShape } from "../fixtures/checkpoint.js";
import { collect, makeTempDir } from "../engine/helpers.js";
import { readHeader, type HeaderTensor } from "../engine/native-helpers.js";

const root = resolve(import.meta.dirname, "../..");
const temp = makeTempDir("nesso-convert-");
afterAll(() => temp.remove());

const source = cachedCheckpoint({ name: "tiny-bf16-s1", shape: tinyShape, dtype: "BF16", seed: 1 });

function convert(args: string[]) {
  const result = spawnSync(process.execPath, ["--import", "tsx", join(root, "src/cli/main.ts"), "convert", ...args], { cwd: root, encoding: "utf8", timeout: 120_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function tensorMap(dir: string): Map<string, HeaderTensor> {
  return new Map(readHeader(join(dir, "model.safetensors")).map((tensor) => [tensor.name, tensor]));
}

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
}

function tensorBytes(dir: string, tensor: HeaderTensor): Uint8Array {
  const file = readFileSync(join(dir, "model.safetensors"));
  return new Uint8Array(file.buffer, file.byteOffset + tensor.offset, tensor.byteLength);
}

describe("nesso-mcp convert", () => {
  const quantized = join(temp.dir, "tiny-4bit");

  it("writes a 4-bit checkpoint in the MLX layout", { timeout: 120_000 }, () => {
    const result = convert(["--quantize", "--bits", "4", "--group-size", "64", source, quantized]);
    expect(result.stderr).toContain("15 weights quantized to 4 bits, group size 64; 0 weights kept in float");
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(quantized);

    for (const name of ["config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]) {
      expect(existsSync(join(quantized, name)), name).toBe(true);
    }
    expect(readFileSync(join(quantized, "chat_template.jinja"), "utf8")).toBe(readFileSync(join(source, "chat_template.jinja"), "utf8"));

    const before = tensorMap(source);
    const after = tensorMap(quantized);
    for (const [name, tensor] of before) {
      const written = after.get(name)!;
      expect(written, name).toBeDefined();
      if (tensor.shape.length === 1) {
        // Norm weights stay in the source dtype and shape.
        expect(written.dtype, name).toBe("BF16");
        expect(written.shape, name).toEqual(tensor.shape);
        continue;
      }
      const path = name.slice(0, -".weight".length);
      const [rows, cols] = tensor.shape;
      expect(written.dtype, name).toBe("U32");
      expect(written.shape, name).toEqual([rows, (cols * 4) / 32]);
      for (const suffix of [".scales", ".biases"]) {
        const group = after.get(path + suffix)!;
        expect(group, path + suffix).toBeDefined();
        expect(group.dtype, path + suffix).toBe("BF16");
        expect(group.shape, path + suffix).toEqual([rows, cols / 64]);
      }
    }
    expect(after.size).toBe(before.size + 2 * 15);

    const sourceConfig = readJson(join(source, "config.json"));
    const config = readJson(join(quantized, "config.json"));
    expect(config.quantization).toEqual({ group_size: 64, bits: 4, mode: "affine" });
    expect(config.quantization_config).toEqual(config.quantization);
    const { quantization: _q, quantization_config: _qc, ...rest } = config;
    expect(rest).toEqual(sourceConfig);
    expect(Object.keys(config)).toEqual(Object.keys(config).sort());

    const index = readJson(join(quantized, "model.safetensors.index.json")) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(Object.keys(index.weight_map).sort()).toEqual([...after.keys()].sort());
    expect(index.metadata.total_size).toBe([...after.values()].reduce((sum, tensor) => sum + tensor.byteLength, 0));
  });

  it("keeps each value within half a quantization step", () => {
    const before = tensorMap(source);
    const after = tensorMap(quantized);
    const name = "model.layers.1.mlp.down_proj";
    const original = decodeFloats(tensorBytes(source, before.get(`${name}.weight`)!), "BF16");
    const scales = decodeFloats(tensorBytes(quantized, after.get(`${name}.scales`)!), "BF16");
    const biases = decodeFloats(tensorBytes(quantized, after.get(`${name}.biases`)!), "BF16");
    const [rows, cols] = before.get(`${name}.weight`)!.shape;
    const restored = dequantizeRows(tensorBytes(quantized, after.get(`${name}.weight`)!).slice(), scales, biases, rows, cols, 4, 64);
    let worst = 0;
    for (let i = 0; i < original.length; i++) {
      const step = Math.abs(scales[Math.floor(i / 64)]);
      worst = Math.max(worst, Math.abs(restored[i] - original[i]) / step);
    }
    // Half a step, plus the bf16 rounding of the stored scale and bias and the clamped top code.
    expect(worst).toBeLessThanOrEqual(1);
  });

  it("loads and generates from the 4-bit checkpoint", { timeout: 60_000 }, async () => {
    const model = await Model.load(quantized, { threads: 2 });
    try {
      const session = model.createSession({ contextSize: 128 });
      const prompt = model.encode(model.applyChatTemplate([{ role: "user", content: "Scrivi una parola: è già l'ora? 🙂" }]));
      const records = await collect(session.generate(prompt, { maxTokens: 8, temperature: 0 }));
      const finish = records.at(-1)!;
      expect(finish.kind).toBe("finish");
      const tokens = records.filter((record) => record.kind === "token");
      expect(tokens.length).toBeGreaterThan(0);
    } finally {
      model.dispose();
    }
  });

  it("rejects a non-empty output without --force", () => {
    const output = join(temp.dir, "occupied");
    mkdirSync(output);
    writeFileSync(join(output, "notes.txt"), "keep me");
    const rejected = convert(["--quantize", source, output]);
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toContain("is not empty (1 entries); pass --force to replace it");
    expect(readFileSync(join(output, "notes.txt"), "utf8")).toBe("keep me");

    const forced = convert(["--quantize", "--bits", "8", "--force", source, output]);
    expect(forced.code).toBe(0);
    expect(existsSync(join(output, "notes.txt"))).toBe(false);
    expect(readJson(join(output, "config.json")).quantization).toEqual({ group_size: 64, bits: 8, mode: "affine" });
  });

  it("keeps weights whose inputs the group size does not divide in float", () => {
    // The tiny model's hidden size 64 is not a multiple of 128; only down_proj (128 inputs) is.
    const output = join(temp.dir, "g128");
    const result = convert(["--quantize", "--group-size", "128", source, output]);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("2 weights quantized to 4 bits, group size 128; 13 weights kept in float");
    const after = tensorMap(output);
    expect(after.get("model.layers.0.mlp.down_proj.weight")!.dtype).toBe("U32");
    expect(after.get("model.layers.0.mlp.up_proj.weight")!.dtype).toBe("BF16");
    expect(after.has("model.embed_tokens.scales")).toBe(false);
  });

  it("dequantizes back to float", () => {
    const output = join(temp.dir, "restored");
    const result = convert(["--dequantize", "--dtype", "bf16", quantized, output]);
    expect(result.code).toBe(0);
    const config = readJson(join(output, "config.json"));
    expect(config.quantization).toBeUndefined();
    expect(config.quantization_config).toBeUndefined();
    const before = tensorMap(source);
    const after = tensorMap(output);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [name, tensor] of after) {
      expect(tensor.dtype, name).toBe("BF16");
      expect(tensor.shape, name).toEqual(before.get(name)!.shape);
    }
  });

  it("rejects invalid command lines", () => {
    const cases: [string[], string][] = [
      [[source, join(temp.dir, "x")], "exactly one of --quantize and --dequantize"],
      [["--quantize", "--bits", "7", source, join(temp.dir, "x")], "--bits must be one of 2, 3, 4, 5, 6, 8, got 7"],
      [["--quantize", "--group-size", "48", source, join(temp.dir, "x")], "--group-size must be one of 32, 64, 128, got 48"],
      [["--quantize", source], "needs the input and output directories, got 1 arguments"],
      [["--dequantize", "--dtype", "f8", quantized, join(temp.dir, "x")], '--dtype must be one of F32, F16, BF16, got "f8"'],
    ];
    for (const [args, message] of cases) {
      const result = convert(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr, args.join(" ")).toContain(message);
    }
    expect(existsSync(join(temp.dir, "x"))).toBe(false);
  });
});
