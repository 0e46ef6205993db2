// loadModel: the addon validates every part of the spec before it reads weights, so a wrong spec
// or a damaged file becomes a rejected promise with a code, never a crash.

import { copyFileSync, mkdirSync, mkdtempSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NessoError, type NessoErrorCode } from "../../src/errors.js";
import type { NativeModelSpec } from "../../src/engine/native-api.js";
import { loadNativeAddon } from "../../src/engine/native.js";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { specFromDirectory } from "./native-helpers.js";

const addon = loadNativeAddon();

async function expectRejection(spec: unknown, code: NessoErrorCode, message: RegExp): Promise<void> {
  let caught: unknown;
  try {
    const model = await addon.loadModel(spec as NativeModelSpec);
    model.dispose();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(NessoError);
  expect((caught as NessoError).code).toBe(code);
  expect((caught as NessoError).message).toMatch(message);
}

describe("native loadModel", () => {
  let dir = "";
  let good: NativeModelSpec;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "nesso-native-load-"));
    good = specFromDirectory(tinyCheckpoint("BF16"));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const withTensor = (name: string, change: Record<string, unknown>) => ({
    ...good,
    tensors: good.tensors.map((tensor) => (tensor.name === name ? { ...tensor, ...change } : tensor)),
  });

  it("loads a valid spec and reports its config", async () => {
    const model = await addon.loadModel(good);
    expect(model.config.vocabSize).toBe(128262);
    expect(model.config.nKvHeads).toBe(2);
    expect(model.config.ropeFreqFactors).toBeNull();
    expect(model.threads).toBe(2);
    model.dispose();
  });

  it("threads 0 means one per physical core", async () => {
    const model = await addon.loadModel({ ...good, threads: 0 });
    expect(model.threads).toBe(addon.physicalCores());
    model.dispose();
  });

  it("loads from a path with accents and emoji", async () => {
    const unicodeDir = join(dir, "modello-però-🦆");
    mkdirSync(unicodeDir);
    const file = join(unicodeDir, "model.safetensors");
    copyFileSync(good.files[0], file);

    const model = await addon.loadModel({ ...good, files: [file] });
    model.dispose();
    await expectRejection({ ...good, files: [join(unicodeDir, "mancante.safetensors")] }, "MODEL_NOT_FOUND", /modello-però-🦆\/mancante\.safetensors/);
  });

  it("rejects a missing weights file", async () => {
    await expectRejection({ ...good, files: [join(dir, "nope.safetensors")] }, "MODEL_NOT_FOUND", /cannot open weights file .*nope\.safetensors/);
  });

  it("rejects a truncated weights file", async () => {
    const copy = join(dir, "truncated.safetensors");
    copyFileSync(good.files[0], copy);
    truncateSync(copy, 100_000);
    await expectRejection({ ...good, files: [copy] }, "INVALID_MODEL", /ends at byte \d+ but .*truncated\.safetensors has 100000 bytes/);
  });

  it("rejects a missing tensor", async () => {
    const spec = { ...good, tensors: good.tensors.filter((tensor) => tensor.name !== "model.layers.1.mlp.up_proj.weight") };
    await expectRejection(spec, "INVALID_MODEL", /tensor "model.layers.1.mlp.up_proj.weight" is missing \(expected shape \[128, 64\]\)/);
  });

  it("rejects a tensor of the wrong shape", async () => {
    const spec = withTensor("model.norm.weight", { shape: [32, 2] });
    await expectRejection(spec, "INVALID_MODEL", /"model.norm.weight" has shape \[32, 2\] but the config requires \[64\]/);
  });

  it("rejects a byte length that disagrees with the shape", async () => {
    const spec = withTensor("model.norm.weight", { byteLength: 130 });
    await expectRejection(spec, "INVALID_MODEL", /has byteLength 130 but shape \[64\] of BF16 needs 128 bytes/);
  });

  it("rejects duplicate tensors", async () => {
    await expectRejection({ ...good, tensors: [...good.tensors, good.tensors[0]] }, "INVALID_MODEL", /appears twice/);
  });

  it("rejects a quantized tensor it needs", async () => {
    const spec = withTensor("model.layers.0.self_attn.q_proj.weight", { dtype: "U32" });
    await expectRejection(spec, "UNSUPPORTED", /has dtype U32 but this engine computes with F32, F16 and BF16 weights only/);
  });

  it("ignores unsupported tensors it does not need", async () => {
    const extra = { ...good.tensors[0], name: "model.layers.0.self_attn.rotary_emb.inv_freq", dtype: "U8" as never };
    const model = await addon.loadModel({ ...good, tensors: [...good.tensors, extra] });
    model.dispose();
  });

  it("rejects a file index out of range", async () => {
    await expectRejection(withTensor("model.norm.weight", { file: 3 }), "INVALID_ARGUMENT", /file is 3 but must be an integer in \[0, 0\]/);
  });

  it("rejects inconsistent geometry", async () => {
    const cases: [Partial<NativeModelSpec["config"]>, RegExp][] = [
      [{ nKvHeads: 3 }, /nHeads 4 is not a multiple of config.nKvHeads 3/],
      [{ headDim: 15 }, /headDim 15 is odd/],
      [{ tokenizerVocabSize: 200000 }, /tokenizerVocabSize is 200000 but must be in \[1, 128262\]/],
      [{ rmsNormEps: 0 }, /rmsNormEps 0 must be a positive finite number/],
      [{ ropeFreqFactors: new Float32Array(3) }, /ropeFreqFactors has 3 entries but headDim 16 needs 8/],
      [{ dim: 0 }, /config.dim is 0 but must be an integer in \[1, 2147483647\]/],
    ];
    for (const [change, message] of cases) {
      await expectRejection({ ...good, config: { ...good.config, ...change } }, "INVALID_ARGUMENT", message);
    }
  });

  it("rejects malformed spec values", async () => {
    const cases: [unknown, RegExp][] = [
      [null, /spec must be an object but is null/],
      [{ ...good, files: [] }, /spec.files is empty/],
      [{ ...good, files: [42] }, /spec.files\[0\] must be a string but is 42/],
      [{ ...good, threads: -1 }, /spec.threads is -1/],
      [withTensor("model.norm.weight", { shape: [64.5] }), /shape\[0\] is 64.5/],
      [withTensor("model.norm.weight", { offset: -8 }), /offset is -8/],
      [{ ...good, config: { ...good.config, ropeTraditional: "no" } }, /config.ropeTraditional must be a boolean but is "no"/],
    ];
    for (const [spec, message] of cases) await expectRejection(spec, "INVALID_ARGUMENT", message);
  });

  it("forwards native log lines to the logger callback", async () => {
    const lines: [number, string][] = [];
    addon.setLogger((level, message) => lines.push([level, message]));
    try {
      const model = await addon.loadModel(good);
      model.dispose();
      // Log lines cross threads asynchronously; give the queue a turn.
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      addon.setLogger(null);
    }
    expect(lines.some(([level, message]) => level === 2 && /loaded model: 2 layers, dim 64/.test(message))).toBe(true);
  });

  it("setLogger rejects a non-function", () => {
    expect(() => addon.setLogger("loud" as never)).toThrow(/callback must be a function or null but is "loud"/);
  });
});
