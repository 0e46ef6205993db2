// The native sampler on real logits from the tiny model: greedy, masks, penalties, the filters and
// seeded draws, checked against probabilities computed in JS from getLogits().

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NessoError } from "../../src/errors.js";
import type { NativeContext, NativeModel, NativeSamplerParams } from "../../src/engine/native-api.js";
import { loadNativeAddon } from "../../src/engine/native.js";
import { tinyCheckpoint } from "../fixtures/checkpoint.js";
import { argmax, specFromDirectory } from "./native-helpers.js";

const addon = loadNativeAddon();

const greedy: NativeSamplerParams = { temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, penaltyTokens: null, seed: 0 };

/** Ids sorted by descending logit. */
function ranked(logits: Float32Array): number[] {
  return Array.from(logits.keys())
    .filter((id) => Number.isFinite(logits[id]))
    .sort((a, b) => logits[b] - logits[a] || a - b);
}

/** softmax(logits / temperature) restricted to `ids`. */
function probabilities(logits: Float32Array, ids: number[], temperature: number): Map<number, number> {
  let max = -Infinity;
  for (const id of ids) max = Math.max(max, logits[id]);
  const weights = ids.map((id) => Math.exp((logits[id] - max) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  return new Map(ids.map((id, i) => [id, weights[i] / total]));
}

function counts(context: NativeContext, params: Omit<NativeSamplerParams, "seed">, draws: number): Map<number, number> {
  const seen = new Map<number, number>();
  for (let seed = 0; seed < draws; seed++) {
    const id = context.sample({ ...params, seed });
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return seen;
}

describe("native sampler", () => {
  let model: NativeModel;
  let context: NativeContext;
  let logits: Float32Array;
  let order: number[];

  beforeAll(async () => {
    model = await addon.loadModel(specFromDirectory(tinyCheckpoint("F32")));
    context = model.createContext({ contextSize: 16 });
    await context.eval(Int32Array.of(128000, 9906, 11, 1917));
    logits = context.getLogits();
    order = ranked(logits);
  });

  afterAll(() => {
    model.dispose();
  });

  it("greedy picks the argmax", () => {
    expect(context.sample(greedy)).toBe(argmax(logits));
  });

  it("greedy ignores the seed", () => {
    expect(context.sample({ ...greedy, seed: 12345 })).toBe(order[0]);
  });

  it("mask limits the choice to allowed ids", () => {
    const mask = new Uint8Array(logits.length);
    const allowed = [order[50], order[7], order[300]];
    for (const id of allowed) mask[id] = 1;

    expect(context.sample(greedy, mask)).toBe(order[7]);
    for (let seed = 0; seed < 50; seed++) {
      expect(allowed).toContain(context.sample({ ...greedy, temperature: 1, seed }, mask));
    }
  });

  it("mask may be tokenizer-sized", () => {
    const mask = new Uint8Array(128262);
    mask[order[3]] = 1;
    expect(context.sample(greedy, mask)).toBe(order[3]);
  });

  it("mask forbidding everything throws", () => {
    let caught: unknown;
    try {
      context.sample(greedy, new Uint8Array(logits.length));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(NessoError);
    expect((caught as NessoError).code).toBe("INVALID_ARGUMENT");
    expect((caught as Error).message).toMatch(/no token is allowed/);
  });

  it("NaN logits from broken weights name the checkpoint as the cause", async () => {
    // A copy of the tiny checkpoint whose final norm weights are NaN: every logit becomes NaN.
    const dir = mkdtempSync(join(tmpdir(), "nesso-nan-weights-"));
    try {
      cpSync(tinyCheckpoint("F32"), dir, { recursive: true });
      const spec = specFromDirectory(dir);
      const norm = spec.tensors.find((tensor) => tensor.name === "model.norm.weight")!;
      const file = spec.files[norm.file];
      const bytes = readFileSync(file);
      bytes.set(new Uint8Array(new Float32Array(norm.shape[0]).fill(Number.NaN).buffer), norm.offset);
      writeFileSync(file, bytes);

      const broken = await addon.loadModel(spec);
      const brokenContext = broken.createContext({ contextSize: 8 });
      await brokenContext.eval(Int32Array.of(1, 2));
      let caught: unknown;
      try {
        brokenContext.sample(greedy);
      } catch (error) {
        caught = error;
      }
      expect((caught as NessoError).code).toBe("INVALID_MODEL");
      expect((caught as Error).message).toMatch(/logits are NaN.*weights contain NaN or infinite values/);
      brokenContext.dispose();
      broken.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("mask of the wrong length is rejected", () => {
    expect(() => context.sample(greedy, new Uint8Array(100))).toThrow(/mask has 100 entries/);
  });

  it("repeat penalty demotes penalized tokens", () => {
    // A huge penalty pushes the argmax below every unpenalized token with a positive logit.
    const penalized = { ...greedy, repeatPenalty: 1e6, penaltyTokens: Int32Array.of(order[0], order[0]) };
    expect(logits[order[1]]).toBeGreaterThan(0);
    expect(context.sample(penalized)).toBe(order[1]);
  });

  it("repeat penalty of 1 changes nothing", () => {
    expect(context.sample({ ...greedy, repeatPenalty: 1, penaltyTokens: Int32Array.of(order[0]) })).toBe(order[0]);
  });

  it("same seed gives the same token", () => {
    const params = { ...greedy, temperature: 1.5, seed: 99 };
    const first = context.sample(params);
    for (let i = 0; i < 5; i++) expect(context.sample(params)).toBe(first);
  });

  it("top-k 1 and tiny top-p are greedy", () => {
    for (let seed = 0; seed < 20; seed++) {
      expect(context.sample({ ...greedy, temperature: 2, topK: 1, seed })).toBe(order[0]);
      expect(context.sample({ ...greedy, temperature: 2, topP: 1e-6, seed })).toBe(order[0]);
      expect(context.sample({ ...greedy, temperature: 2, minP: 1, seed })).toBe(order[0]);
    }
  });

  it("top-k draws follow the softmax", () => {
    const draws = 2000;
    const seen = counts(context, { ...greedy, temperature: 1, topK: 3 }, draws);
    const expected = probabilities(logits, order.slice(0, 3), 1);

    expect([...seen.keys()].every((id) => expected.has(id))).toBe(true);
    for (const [id, probability] of expected) {
      // The binomial standard deviation is at most 0.0112 at 2000 draws; allow 4 of them.
      expect(Math.abs((seen.get(id) ?? 0) / draws - probability), `id ${id}`).toBeLessThan(0.045);
    }
  });

  it("top-p keeps the smallest set reaching the mass", () => {
    const all = probabilities(logits, order, 1);
    let mass = 0;
    let size = 0;
    while (mass < 0.5) mass += all.get(order[size++]) ?? 0;
    const nucleus = new Set(order.slice(0, size));

    const seen = counts(context, { ...greedy, temperature: 1, topP: 0.5 }, 300);

    expect([...seen.keys()].every((id) => nucleus.has(id))).toBe(true);
    expect(seen.size).toBeGreaterThan(Math.min(size, 3) - 1);
  });

  it("min-p drops unlikely tokens", () => {
    const all = probabilities(logits, order, 1);
    const top = all.get(order[0]) ?? 0;
    const kept = new Set(order.filter((id) => (all.get(id) ?? 0) >= 0.2 * top));

    const seen = counts(context, { ...greedy, temperature: 1, minP: 0.2 }, 300);

    expect([...seen.keys()].every((id) => kept.has(id))).toBe(true);
  });

  it("rejects invalid parameters", () => {
    const cases: [Partial<NativeSamplerParams>, RegExp][] = [
      [{ temperature: -1 }, /params.temperature is -1/],
      [{ topP: 1.5 }, /params.topP is 1.5/],
      [{ topK: 2.5 }, /params.topK is 2.5/],
      [{ repeatPenalty: 0 }, /params.repeatPenalty is 0/],
      [{ seed: Number.NaN }, /params.seed is NaN/],
      [{ penaltyTokens: Int32Array.of(5, 1_000_000) }, /params.penaltyTokens\[1\] is 1000000/],
    ];
    for (const [override, message] of cases) {
      expect(() => context.sample({ ...greedy, ...override })).toThrow(message);
    }
  });
});
