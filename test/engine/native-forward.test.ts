// The native forward pass against the plain JS reference (reference-forward.ts) on tiny random
// checkpoints: prefill, step-by-step decode, every weight dtype and SIMD path, chunking, threads.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cachedCheckpoint, tinyCheckpoint, tinyShape, writeCheckpoint } from "../fixtures/checkpoint.js";
import type { NativeContext, NativeModel, NativeModelSpec } from "../../src/engine/native-api.js";
import { loadNativeAddon } from "../../src/engine/native.js";
import { argmax, maxAbs, maxAbsDifference, specFromDirectory, withSimdPath } from "./native-helpers.js";
import { ReferenceModel } from "./reference-forward.js";

const addon = loadNativeAddon();

/** A 20-token prompt of ordinary, special and high ids. */
const prompt = [128000, 198, 128257, 9125, 198, 40, 1097, 264, 11190, 18328, 13, 128256, 198, 128257, 882, 198, 72803, 4483, 0, 127999];

/** Native logits must match the reference within this fraction of the largest |logit| on F32 weights. */
const relativeTolerance = 1e-4;

function expectClose(actual: Float32Array, expected: Float32Array, label: string): void {
  const scale = maxAbs(expected);
  const difference = maxAbsDifference(actual, expected);
  expect(difference, `${label}: max |Δ| ${difference} vs max |logit| ${scale}`).toBeLessThanOrEqual(relativeTolerance * scale);
}

async function evalAll(context: NativeContext, tokens: number[], chunkSize?: number): Promise<Float32Array> {
  const result = await context.eval(Int32Array.from(tokens), chunkSize === undefined ? undefined : { chunkSize });
  expect(result).toEqual({ evaluated: tokens.length, cancelled: false });
  return context.getLogits();
}

describe("native forward pass", () => {
  const models: NativeModel[] = [];
  const load = async (spec: NativeModelSpec) => {
    const model = await addon.loadModel(spec);
    models.push(model);
    return model;
  };
  let temporaryDir = "";

  beforeAll(() => {
    temporaryDir = mkdtempSync(join(tmpdir(), "nesso-native-forward-"));
  });

  afterAll(() => {
    for (const model of models) model.dispose();
    rmSync(temporaryDir, { recursive: true, force: true });
  });

  it("prefill matches the reference on F32 weights", async () => {
    const spec = specFromDirectory(tinyCheckpoint("F32"));
    const model = await load(spec);
    const reference = new ReferenceModel(spec.config, spec);
    const context = model.createContext({ contextSize: 64, kvCacheType: "f32" });

    const logits = await evalAll(context, prompt);

    expect(context.length).toBe(prompt.length);
    expectClose(logits, reference.evaluate(prompt), "prefill");
    context.dispose();
  });

  it("decode steps match the reference after a prefill", async () => {
    const spec = specFromDirectory(tinyCheckpoint("F32"));
    const model = await load(spec);
    const reference = new ReferenceModel(spec.config, spec);
    const context = model.createContext({ contextSize: 64, kvCacheType: "f32" });
    let expected = reference.evaluate(prompt);
    let logits = await evalAll(context, prompt);

    for (let step = 0; step < 8; step++) {
      const next = argmax(expected);
      expect(argmax(logits), `greedy token at step ${step}`).toBe(next);
      logits = await evalAll(context, [next]);
      expected = reference.step(next);
      expectClose(logits, expected, `decode step ${step}`);
    }
    context.dispose();
  });

  it("f16 KV cache matches the rounding reference", async () => {
    const spec = specFromDirectory(tinyCheckpoint("F32"));
    const model = await load(spec);
    const reference = new ReferenceModel(spec.config, spec, "f16");
    const exact = new ReferenceModel(spec.config, spec);
    const context = model.createContext({ contextSize: 64 });
    expect(context.kvCacheType).toBe("f16");

    let expected = reference.evaluate(prompt);
    let logits = await evalAll(context, prompt);
    expectClose(logits, expected, "f16 KV prefill");
    // Rounding the cache does change the logits, so this test distinguishes the two cache types.
    expect(maxAbsDifference(logits, exact.evaluate(prompt))).toBeGreaterThan(0);
    for (let step = 0; step < 8; step++) {
      const next = argmax(expected);
      expect(argmax(logits), `greedy token at step ${step}`).toBe(next);
      logits = await evalAll(context, [next]);
      expected = reference.step(next);
      expectClose(logits, expected, `f16 KV decode step ${step}`);
    }
    context.dispose();
  });

  it("rejects an unknown kvCacheType", async () => {
    const model = await load(specFromDirectory(tinyCheckpoint("F32")));
    expect(() => model.createContext({ contextSize: 16, kvCacheType: "q8" as "f16" })).toThrow(/kvCacheType is "q8"; use "f16" or "f32"/);
  });

  it.each(["F16", "BF16"] as const)("prefill matches the reference on %s weights", async (dtype) => {
    const spec = specFromDirectory(tinyCheckpoint(dtype));
    const model = await load(spec);
    // The reference reads the same 16-bit values widened to float32, so only summation order differs.
    const reference = new ReferenceModel(spec.config, spec);
    const context = model.createContext({ contextSize: 64, kvCacheType: "f32" });

    expectClose(await evalAll(context, prompt), reference.evaluate(prompt), dtype);
    context.dispose();
  });

  it("long prefill across chunks matches the reference", async () => {
    const spec = specFromDirectory(tinyCheckpoint("BF16"));
    const model = await load(spec);
    const reference = new ReferenceModel(spec.config, spec);
    const context = model.createContext({ contextSize: 512, kvCacheType: "f32" });
    const long = Array.from({ length: 300 }, (_, i) => (i * 7919 + 13) % 128262);

    // Chunks of 48 put later tokens at positions whose attention spans several key blocks.
    expectClose(await evalAll(context, long, 48), reference.evaluate(long), "300-token prefill");
    context.dispose();
  });

  it("prefill of 5 tokens equals 5 single-token evals", async () => {
    const model = await load(specFromDirectory(tinyCheckpoint("F32")));
    const batched = model.createContext({ contextSize: 16, kvCacheType: "f32" });
    const stepped = model.createContext({ contextSize: 16, kvCacheType: "f32" });
    const tokens = prompt.slice(0, 5);

    const once = await evalAll(batched, tokens);
    let last: Float32Array = new Float32Array(0);
    for (const token of tokens) last = await evalAll(stepped, [token]);

    expect(stepped.length).toBe(5);
    expect(maxAbsDifference(once, last)).toBeLessThanOrEqual(1e-5 * maxAbs(last));
    batched.dispose();
    stepped.dispose();
  });

  it("chunk size does not change the logits", async () => {
    const model = await load(specFromDirectory(tinyCheckpoint("F32")));
    const results: Float32Array[] = [];
    for (const chunkSize of [1, 3, 7, 64]) {
      const context = model.createContext({ contextSize: 32, kvCacheType: "f32" });
      results.push(await evalAll(context, prompt, chunkSize));
      context.dispose();
    }
    for (const logits of results.slice(1)) {
      expect(maxAbsDifference(logits, results[0])).toBeLessThanOrEqual(1e-5 * maxAbs(results[0]));
    }
  });

  it("one thread and two threads give identical logits", async () => {
    const one = await load(specFromDirectory(tinyCheckpoint("BF16"), { threads: 1 }));
    const two = await load(specFromDirectory(tinyCheckpoint("BF16"), { threads: 2 }));
    expect(one.threads).toBe(1);
    expect(two.threads).toBe(2);

    const a = one.createContext({ contextSize: 32, kvCacheType: "f32" });
    const b = two.createContext({ contextSize: 32, kvCacheType: "f32" });
    // Each output row is summed by one thread in the same order, so the results are bit-identical.
    expect(Array.from(await evalAll(a, prompt))).toEqual(Array.from(await evalAll(b, prompt)));
    expect(Array.from(await evalAll(a, [42]))).toEqual(Array.from(await evalAll(b, [42])));
    a.dispose();
    b.dispose();
  });

  it("every kernel path agrees with the portable one", async () => {
    const spec = specFromDirectory(tinyCheckpoint("BF16"));
    const portableContext = (await withSimdPath("portable", () => load(spec))).createContext({ contextSize: 32, kvCacheType: "f32" });
    const expected = await evalAll(portableContext, prompt);
    const expectedNext = await evalAll(portableContext, [42]);

    // The CPU's own path plus the AVX-512 and NEON algorithms emulated in plain C++.
    for (const path of [addon.simdPath(), "emulated16", "emulated4"]) {
      const context = (await withSimdPath(path, () => load(spec))).createContext({ contextSize: 32, kvCacheType: "f32" });
      const logits = await evalAll(context, prompt);
      expect(maxAbsDifference(logits, expected), `${path} prefill`).toBeLessThanOrEqual(relativeTolerance * maxAbs(expected));
      const next = await evalAll(context, [42]);
      expect(maxAbsDifference(next, expectedNext), `${path} decode`).toBeLessThanOrEqual(relativeTolerance * maxAbs(expectedNext));
      context.dispose();
    }
    portableContext.dispose();
  });

  it("masks logits of ids the tokenizer lacks", async () => {
    // 40 padding rows beyond the tokenizer, as a checkpoint padded to a round vocabulary would have.
    const dir = cachedCheckpoint({ name: "tiny-f32-padded-s3", shape: { ...tinyShape, vocabSize: 128302 }, dtype: "F32", seed: 3 });
    const spec = specFromDirectory(dir, { tokenizerVocabSize: 128262 });
    const model = await load(spec);
    const reference = new ReferenceModel(spec.config, spec);
    const context = model.createContext({ contextSize: 32, kvCacheType: "f32" });

    const logits = await evalAll(context, prompt);

    expect(logits.length).toBe(128302);
    expect(logits.subarray(128262).every((value) => value === -Infinity)).toBe(true);
    expect(Number.isFinite(logits[128261])).toBe(true);
    expectClose(logits, reference.evaluate(prompt), "padded vocabulary");
    context.dispose();
  });

  it("untied output head uses lm_head.weight", async () => {
    const dir = writeCheckpoint({ dir: join(temporaryDir, "untied"), shape: tinyShape, dtype: "F32", seed: 5, untied: true });
    const spec = specFromDirectory(dir);
    expect(spec.config.tieWordEmbeddings).toBe(false);
    const model = await load(spec);
    const reference = new ReferenceModel(spec.config, spec);
    const context = model.createContext({ contextSize: 32, kvCacheType: "f32" });

    expectClose(await evalAll(context, prompt), reference.evaluate(prompt), "untied");
    context.dispose();
  });

  it("traditional RoPE and llama3 frequency factors follow the config", async () => {
    const half = tinyShape.headDim / 2;
    const ropeFreqFactors = Float32Array.from({ length: half }, (_, i) => 1 + (i % 4) * 1.5);
    const spec = specFromDirectory(tinyCheckpoint("F32"), {
      config: { ropeTraditional: true, ropeFreqFactors, ropePositionScale: 0.5, ropeTheta: 500000 },
    });
    const model = await load(spec);
    const reference = new ReferenceModel(spec.config, spec);
    const context = model.createContext({ contextSize: 32, kvCacheType: "f32" });

    expectClose(await evalAll(context, prompt), reference.evaluate(prompt), "rope variants");
    context.dispose();
  });

  it("MLX and HF layouts of the same weights give the same logits", async () => {
    const mlx = writeCheckpoint({ dir: join(temporaryDir, "mlx"), shape: tinyShape, dtype: "BF16", seed: 9, layout: "mlx" });
    const hf = writeCheckpoint({ dir: join(temporaryDir, "hf"), shape: tinyShape, dtype: "BF16", seed: 9, layout: "hf", shards: 2 });
    const mlxSpec = specFromDirectory(mlx);
    // The MLX layout leaves tensors at odd offsets; make sure the fixture exercises that.
    expect(mlxSpec.tensors.some((tensor) => tensor.offset % 2 === 1)).toBe(true);
    const mlxContext = (await load(mlxSpec)).createContext({ contextSize: 32, kvCacheType: "f32" });
    const hfContext = (await load(specFromDirectory(hf))).createContext({ contextSize: 32, kvCacheType: "f32" });

    expect(Array.from(await evalAll(mlxContext, prompt))).toEqual(Array.from(await evalAll(hfContext, prompt)));
    mlxContext.dispose();
    hfContext.dispose();
  });
});
