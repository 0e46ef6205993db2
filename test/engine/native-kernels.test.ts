// Single native kernels against hand-computed values and plain JS references, on every SIMD path
// this CPU supports.

import { describe, expect, it } from "vitest";
import { NessoError } from "../../src/errors.js";
import type { NativeDtype } from "../../src/engine/native-api.js";
import { loadNativeAddon } from "../../src/engine/native.js";
import { roundToDtype } from "../../src/convert/float-dtype.js";
import { encodeTensor } from "../fixtures/dtype.js";
import { createRandom, fillNormal } from "../fixtures/random.js";
import { decodeTensor, maxAbsDifference, withSimdPath } from "./native-helpers.js";

const addon = loadNativeAddon();
const { testing } = addon;

/**
 * The kernel paths this machine can run: portable and the emulated 16- and 4-float vectors (the
 * AVX-512 and NEON algorithms in plain C++) always, the real SIMD paths when the CPU has them.
 */
const simdPaths = ["portable", "emulated16", "emulated4", "avx2", "avx512", "neon"].filter((path) => {
  const previous = process.env.NESSO_MCP_SIMD;
  process.env.NESSO_MCP_SIMD = path;
  const chosen = addon.simdPath();
  if (previous === undefined) delete process.env.NESSO_MCP_SIMD;
  else process.env.NESSO_MCP_SIMD = previous;
  return chosen === path;
});

const dtypes: NativeDtype[] = ["F32", "F16", "BF16"];

function randomValues(length: number, seed: number, std = 1): Float32Array {
  const values = new Float32Array(length);
  fillNormal(values, createRandom(seed), std);
  return values;
}

/** y [tokens, rows] = x [tokens, cols] · Wᵀ in double precision. */
function referenceMatMul(weights: Float32Array, rows: number, cols: number, x: Float32Array, tokens: number): Float32Array {
  const y = new Float32Array(tokens * rows);
  for (let t = 0; t < tokens; t++) {
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let k = 0; k < cols; k++) sum += weights[r * cols + k] * x[t * cols + k];
      y[t * rows + r] = sum;
    }
  }
  return y;
}

/** Encodes random weights in `dtype` and returns the bytes plus the exact values they hold. */
function encodedWeights(rows: number, cols: number, dtype: NativeDtype, seed: number, byteOffset = 0) {
  const encoded = encodeTensor(randomValues(rows * cols, seed), dtype);
  // Copy behind `byteOffset` padding bytes, so the kernel sees an unaligned start like in MLX files.
  const buffer = new Uint8Array(encoded.byteLength + byteOffset);
  buffer.set(encoded, byteOffset);
  const bytes = buffer.subarray(byteOffset);
  return { bytes, values: decodeTensor(bytes, dtype) };
}

/** Sum of |w|·|x| per output: the scale float32 rounding errors are relative to. */
function magnitudeBound(weights: Float32Array, rows: number, cols: number, x: Float32Array, tokens: number): number {
  return Math.max(...referenceMatMul(weights.map(Math.abs), rows, cols, x.map(Math.abs), tokens));
}

describe("native kernels", () => {
  it("detects at least the portable path", () => {
    expect(simdPaths).toContain("portable");
    expect(simdPaths).toContain("emulated16");
    expect(["portable", "avx2", "avx512", "neon"]).toContain(addon.simdPath());
    expect(addon.physicalCores()).toBeGreaterThanOrEqual(1);
  });

  describe.each(simdPaths)("on the %s path", (path) => {
    it("rmsNorm matches hand-computed values", async () => {
      const out = await withSimdPath(path, () => testing.rmsNorm(Float32Array.of(1, 2, 3, 4), Float32Array.of(1, 1, 1, 1), 1e-5));
      // mean of squares 7.5, so y = x / sqrt(7.5 + 1e-5)
      const expected = [0.365148, 0.730296, 1.095444, 1.460593];
      expected.forEach((value, i) => expect(out[i]).toBeCloseTo(value, 5));
    });

    it("rmsNorm multiplies by the weight after normalizing", async () => {
      const out = await withSimdPath(path, () => testing.rmsNorm(Float32Array.of(1, 2, 3, 4), Float32Array.of(2, 0, -1, 0.5), 1e-5));
      const expected = [0.730296, 0, -1.095444, 0.730296];
      expected.forEach((value, i) => expect(out[i]).toBeCloseTo(value, 5));
    });

    it.each(dtypes)("matVec on %s weights matches a JS reference", async (dtype) => {
      // Sizes with tails: rows not a multiple of 4, cols not a multiple of the vector width.
      for (const [rows, cols, byteOffset] of [
        [7, 37, 0],
        [33, 96, 1],
        [64, 960, 3],
        [5, 3, 1],
      ]) {
        const { bytes, values } = encodedWeights(rows, cols, dtype, rows * 1000 + cols, byteOffset);
        const x = randomValues(cols, cols);
        const y = await withSimdPath(path, () => testing.matVec(bytes, dtype, rows, cols, x));
        const expected = referenceMatMul(values, rows, cols, x, 1);
        const bound = magnitudeBound(values, rows, cols, x, 1);
        expect(maxAbsDifference(y, expected), `${rows}x${cols} at offset ${byteOffset}`).toBeLessThanOrEqual(1e-6 * bound);
      }
    });

    it.each(dtypes)("matMul on %s weights matches a JS reference", async (dtype) => {
      // Token counts around the micro-kernel tile (3 on AVX2, 6 on AVX-512, 4 on NEON) and row
      // counts around the 16-row block and the 4-row tile.
      for (const [rows, cols, tokens, byteOffset] of [
        [21, 35, 7, 1],
        [16, 64, 3, 0],
        [37, 128, 13, 2],
        [3, 9, 1, 0],
        [50, 40, 6, 0],
      ]) {
        const { bytes, values } = encodedWeights(rows, cols, dtype, rows * 7 + tokens, byteOffset);
        const x = randomValues(tokens * cols, tokens * 31 + cols);
        const y = await withSimdPath(path, () => testing.matMul(bytes, dtype, rows, cols, x, tokens));
        const expected = referenceMatMul(values, rows, cols, x, tokens);
        const bound = magnitudeBound(values, rows, cols, x, tokens);
        expect(maxAbsDifference(y, expected), `${rows}x${cols}, ${tokens} tokens`).toBeLessThanOrEqual(1e-6 * bound);
      }
    });

    it("softmax matches Math.exp over a wide range", async () => {
      // Differences up to 90 cover the whole float range of e^x, including values that underflow.
      const x = Float32Array.from({ length: 203 }, (_, i) => -90 + (i * 90) / 202);
      x[5] = -Infinity;
      const out = await withSimdPath(path, () => testing.softmax(x));

      const max = Math.max(...x);
      const weights = Array.from(x, (value) => Math.exp(value - max));
      const total = weights.reduce((a, b) => a + b, 0);
      expect(out[5]).toBe(0);
      weights.forEach((weight, i) => {
        const expected = weight / total;
        expect(Math.abs(out[i] - expected), `index ${i}`).toBeLessThanOrEqual(4e-7 * expected + 1e-37);
      });
    });

    it("siluMul matches z / (1 + e^-z) · up", async () => {
      const gate = Float32Array.from({ length: 67 }, (_, i) => -100 + i * 3.1);
      const up = Float32Array.from({ length: 67 }, (_, i) => 1 + (i % 5) * 0.25);
      const out = await withSimdPath(path, () => testing.siluMul(gate, up));

      gate.forEach((z, i) => {
        const expected = (z / (1 + Math.exp(-z))) * up[i];
        expect(Math.abs(out[i] - expected), `z ${z}`).toBeLessThanOrEqual(4e-7 * Math.abs(expected) + 1e-30);
      });
    });

    it("attention maps query head h to kv head floor(h / 3) with 15/5 heads", async () => {
      const nHeads = 15;
      const nKvHeads = 5;
      const headDim = 8;
      const positions = 4;
      // Zero queries give equal scores, so attention averages the values. Every position of kv
      // head g holds the one-hot vector e_g, so the average is e_g too.
      const q = new Float32Array(nHeads * headDim);
      const k = randomValues(nKvHeads * positions * headDim, 17);
      const v = new Float32Array(nKvHeads * positions * headDim);
      for (let g = 0; g < nKvHeads; g++) {
        for (let j = 0; j < positions; j++) v[(g * positions + j) * headDim + g] = 1;
      }

      const out = await withSimdPath(path, () => testing.attention(q, k, v, nHeads, nKvHeads, headDim, positions));

      for (let h = 0; h < nHeads; h++) {
        const head = Array.from(out.subarray(h * headDim, (h + 1) * headDim));
        const expected = Array.from({ length: headDim }, (_, d) => (d === Math.floor(h / 3) ? 1 : 0));
        head.forEach((value, d) => expect(value, `head ${h} dim ${d}`).toBeCloseTo(expected[d], 6));
      }
    });

    // Nesso's 15/5 heads of 64, group sizes around the 3-head tile, and widths with vector tails.
    it.each([
      [4, 2, 16, 9],
      [15, 5, 64, 70],
      [6, 1, 37, 5],
      [8, 8, 128, 3],
      [7, 1, 72, 33],
    ])("attention with %i/%i heads of %i over %i positions matches a softmax reference", async (nHeads, nKvHeads, headDim, positions) => {
      const q = randomValues(nHeads * headDim, 1);
      const k = randomValues(nKvHeads * positions * headDim, 2);
      const v = randomValues(nKvHeads * positions * headDim, 3);

      const out = await withSimdPath(path, () => testing.attention(q, k, v, nHeads, nKvHeads, headDim, positions));

      const expected = new Float32Array(nHeads * headDim);
      for (let h = 0; h < nHeads; h++) {
        const g = Math.floor(h / (nHeads / nKvHeads));
        const scores = Array.from({ length: positions }, (_, j) => {
          let sum = 0;
          for (let d = 0; d < headDim; d++) sum += q[h * headDim + d] * k[(g * positions + j) * headDim + d];
          return sum / Math.sqrt(headDim);
        });
        const max = Math.max(...scores);
        const weights = scores.map((score) => Math.exp(score - max));
        const total = weights.reduce((a, b) => a + b, 0);
        for (let j = 0; j < positions; j++) {
          for (let d = 0; d < headDim; d++) expected[h * headDim + d] += (weights[j] / total) * v[(g * positions + j) * headDim + d];
        }
      }
      expect(maxAbsDifference(out, expected)).toBeLessThanOrEqual(1e-5);
    });
  });

  it.each(simdPaths)("f16 attention on %s matches rounded f32", async (path) => {
    const [nHeads, nKvHeads, headDim, positions] = [15, 5, 64, 37];
    const q = randomValues(nHeads * headDim, 4);
    const k = randomValues(nKvHeads * positions * headDim, 5);
    const v = randomValues(nKvHeads * positions * headDim, 6);
    const half = await withSimdPath(path, () => testing.attention(q, k, v, nHeads, nKvHeads, headDim, positions, "f16"));
    const rounded = await withSimdPath(path, () =>
      testing.attention(q, roundToDtype(k, "F16"), roundToDtype(v, "F16"), nHeads, nKvHeads, headDim, positions, "f32"),
    );
    const exact = await withSimdPath(path, () => testing.attention(q, k, v, nHeads, nKvHeads, headDim, positions));
    expect(maxAbsDifference(half, rounded)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDifference(half, exact)).toBeGreaterThan(0);
  });

  it("f16 attention saturates out-of-range values", () => {
    const [nHeads, nKvHeads, headDim, positions] = [3, 1, 8, 4];
    const q = randomValues(nHeads * headDim, 7).map((x) => x * 1e-4);
    const k = randomValues(nKvHeads * positions * headDim, 8).map((x) => x * 1e6);
    const v = randomValues(nKvHeads * positions * headDim, 9).map((x) => x * 1e6);
    const clamp = (values: Float32Array) => values.map((x) => Math.max(-65504, Math.min(65504, x)));

    const half = testing.attention(q, k, v, nHeads, nKvHeads, headDim, positions, "f16");
    expect(half.every((x) => Number.isFinite(x))).toBe(true);
    const clamped = testing.attention(q, roundToDtype(clamp(k), "F16"), roundToDtype(clamp(v), "F16"), nHeads, nKvHeads, headDim, positions, "f32");
    expect(maxAbsDifference(half, clamped)).toBeLessThanOrEqual(0.1);
  });

  it("rope rotates pairs (i, i + headDim/2) when not traditional", () => {
    const out = testing.rope(Float32Array.of(1, 0, 0, 0), 1, 10000, false);
    const expected = [0.5403023, 0, 0.841471, 0];
    expected.forEach((value, i) => expect(out[i]).toBeCloseTo(value, 6));
  });

  it("rope rotates adjacent pairs when traditional", () => {
    const out = testing.rope(Float32Array.of(1, 0, 0, 0), 1, 10000, true);
    const expected = [0.5403023, 0.841471, 0, 0];
    expected.forEach((value, i) => expect(out[i]).toBeCloseTo(value, 6));
  });

  it("rope uses frequency base^(-2i/headDim) for pair i", () => {
    // Pair 1 of a 4-dim head turns by 1 · 10000^(-1/2) = 0.01 radians at position 1.
    const out = testing.rope(Float32Array.of(0, 1, 0, 0), 1, 10000, false);
    const expected = [0, 0.99995, 0, 0.0099998];
    expected.forEach((value, i) => expect(out[i]).toBeCloseTo(value, 6));
  });

  it("rope divides frequencies by the llama3 factors", () => {
    // A factor of 2 on pair 0 halves its angle: cos(0.5), sin(0.5) at position 1.
    const out = testing.rope(Float32Array.of(1, 0, 0, 0), 1, 10000, false, Float32Array.of(2, 1));
    const expected = [Math.cos(0.5), 0, Math.sin(0.5), 0];
    expected.forEach((value, i) => expect(out[i]).toBeCloseTo(value, 6));
  });

  it("rope at position 0 is the identity", () => {
    const x = randomValues(64, 4);
    expect(Array.from(testing.rope(x, 0, 10000, false))).toEqual(Array.from(x));
  });

  it("rope keeps accuracy at position 4095", () => {
    const out = testing.rope(Float32Array.of(1, 0), 4095, 10000, false);
    expect(out[0]).toBeCloseTo(Math.cos(4095), 6);
    expect(out[1]).toBeCloseTo(Math.sin(4095), 6);
  });

  it("kernels reject inputs of the wrong size", () => {
    const cases: [string, () => unknown, RegExp][] = [
      ["rmsNorm weight", () => testing.rmsNorm(new Float32Array(4), new Float32Array(3), 1e-5), /weight has 3 elements but 4 are needed/],
      ["rope odd head", () => testing.rope(new Float32Array(3), 0, 10000, false), /even count/],
      ["matVec bytes", () => testing.matVec(new Uint8Array(10), "BF16", 2, 3, new Float32Array(3)), /weights \(bytes\) has 10 elements but 12/],
      ["matVec dtype", () => testing.matVec(new Uint8Array(8), "U32" as NativeDtype, 2, 1, new Float32Array(1)), /dtype "U32"/],
      ["matVec x type", () => testing.matVec(new Uint8Array(8), "F32", 2, 1, [1] as unknown as Float32Array), /x must be a Float32Array but is Array\(1\)/],
      ["attention heads", () => testing.attention(new Float32Array(4), new Float32Array(4), new Float32Array(4), 3, 2, 1, 2), /not a multiple/],
    ];
    for (const [label, call, message] of cases) {
      let caught: unknown;
      try {
        call();
      } catch (error) {
        caught = error;
      }
      expect(caught, label).toBeInstanceOf(NessoError);
      expect((caught as NessoError).code, label).toBe("INVALID_ARGUMENT");
      expect((caught as NessoError).message, label).toMatch(message);
    }
  });
});
