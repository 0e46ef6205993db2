// MLX affine quantization piece by piece: bit unpacking against hand-checked vectors, the
// quantizer against hand-computed groups, and the native quantized kernels against a plain JS
// reference on every SIMD path this CPU supports.

import { describe, expect, it } from "vitest";
import { dequantizeRows, groupParams, packCodes, quantizeGroup, quantizeRows, unpackCodes } from "../../src/convert/affine.js";
import { loadNativeAddon } from "../../src/engine/native.js";
import { NessoError } from "../../src/errors.js";
import { createRandom, fillNormal } from "../fixtures/random.js";
import { withSimdPath } from "./native-helpers.js";

// These tests check the float-activation kernels at float32 rounding bounds; the default int8
// activations of 4- and 8-bit weights are tested in quant-int8.test.ts.
process.env.NESSO_MCP_QUANT_ACTIVATIONS = "float";

const addon = loadNativeAddon();
const { testing } = addon;

const simdPaths = ["portable", "avx2", "avx512"].filter((path) => {
  const previous = process.env.NESSO_MCP_SIMD;
  process.env.NESSO_MCP_SIMD = path;
  const chosen = addon.simdPath();
  if (previous === undefined) delete process.env.NESSO_MCP_SIMD;
  else process.env.NESSO_MCP_SIMD = previous;
  return chosen === path;
});

const allBits = [2, 3, 4, 5, 6, 8];
const allGroupSizes = [32, 64, 128];

/** Rows in file order that decode to the codes 0, 1, 2, … (derived from MLX's extract_bits). */
const unpackingVectors: { bits: number; bytes: number[]; codes: number[] }[] = [
  { bits: 2, bytes: [0xe4], codes: [0, 1, 2, 3] },
  { bits: 3, bytes: [0x88, 0xc6, 0xfa], codes: [0, 1, 2, 3, 4, 5, 6, 7] },
  { bits: 4, bytes: [0x10, 0x32, 0x54, 0x76], codes: [0, 1, 2, 3, 4, 5, 6, 7] },
  { bits: 5, bytes: [0x20, 0x88, 0x41, 0x8a, 0x39], codes: [0, 1, 2, 3, 4, 5, 6, 7] },
  { bits: 6, bytes: [0x40, 0x20, 0x0c], codes: [0, 1, 2, 3] },
  { bits: 8, bytes: [0x00, 0x01, 0x02, 0x03], codes: [0, 1, 2, 3] },
];

function randomValues(length: number, seed: number, std = 1): Float32Array {
  const values = new Float32Array(length);
  fillNormal(values, createRandom(seed), std);
  return values;
}

/** Copies bytes behind `offset` padding bytes so the kernel reads an unaligned start. */
function unaligned(bytes: Uint8Array, offset: number): Uint8Array {
  const buffer = new Uint8Array(bytes.byteLength + offset);
  buffer.set(bytes, offset);
  return buffer.subarray(offset);
}

/** y [tokens, rows] = x · Wᵀ in double precision. */
function referenceMatMul(weights: Float32Array, rows: number, cols: number, x: Float32Array, tokens: number): { y: Float64Array; bound: number } {
  const y = new Float64Array(tokens * rows);
  let bound = 0;
  for (let t = 0; t < tokens; t++) {
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      let magnitude = 0;
      for (let k = 0; k < cols; k++) {
        sum += weights[r * cols + k] * x[t * cols + k];
        magnitude += Math.abs(weights[r * cols + k] * x[t * cols + k]);
      }
      y[t * rows + r] = sum;
      bound = Math.max(bound, magnitude);
    }
  }
  return { y, bound };
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe("bit unpacking", () => {
  for (const { bits, bytes, codes } of unpackingVectors) {
    it(`decodes the ${bits}-bit unit vector`, () => {
      const native = testing.quantUnpack(Uint8Array.from(bytes), bits, codes.length);
      expect([...native]).toEqual(codes);
      const ours = new Uint8Array(codes.length);
      unpackCodes(Uint8Array.from(bytes), bits, 0, codes.length, ours);
      expect([...ours]).toEqual(codes);
    });

    it(`packs 0..${codes.length - 1} into the ${bits}-bit unit vector`, () => {
      const packed = new Uint8Array(bytes.length);
      packCodes(Uint8Array.from(codes), codes.length, bits, packed, 0);
      expect([...packed]).toEqual(bytes);
    });
  }

  it("decodes the 2-bit word 0xE4E4E4E4 as four repeats", () => {
    const codes = testing.quantUnpack(Uint8Array.from([0xe4, 0xe4, 0xe4, 0xe4]), 2, 16);
    expect([...codes]).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
  });

  it("round-trips random codes across word boundaries", () => {
    for (const bits of allBits) {
      const random = createRandom(bits);
      const count = 128;
      const codes = Uint8Array.from({ length: count }, () => Math.floor(random() * (1 << bits)));
      const packed = new Uint8Array((count * bits) / 8);
      packCodes(codes, count, bits, packed, 0);
      expect([...testing.quantUnpack(packed, bits, count)], `${bits} bits`).toEqual([...codes]);
    }
  });

  it("rejects a count the bytes cannot hold", () => {
    expect(() => testing.quantUnpack(new Uint8Array(3), 5, 8)).toThrow(/8 codes of 5 bits need 5 bytes but packed has 3/);
  });
});

describe("affine quantizer", () => {
  it("puts the larger-magnitude minimum on code 0", () => {
    // min -1.5 outweighs max 0.5. The first scale 2/15 puts min at code -11.25, so the scale
    // becomes 1.5/11 to land min exactly on code 11 below the bias -1.5.
    const w = new Float32Array(32).fill(0);
    w[0] = -1.5;
    w[1] = 0.5;
    const params = groupParams(w, 0, 32, 4);
    expect(params.scale).toBeCloseTo(1.5 / 11, 6);
    expect(params.bias).toBe(-1.5);
    const codes = new Uint8Array(32);
    quantizeGroup(w, 0, 32, 4, params, codes);
    expect(codes[0]).toBe(0);
    expect(codes[1]).toBe(15);
    expect(codes[2]).toBe(11);
  });

  it("uses a negative scale when the maximum is the edge", () => {
    // max 1.5 outweighs min 0: scale -0.1, bias 1.5, so w = 0 takes code 15.
    const w = new Float32Array(32).fill(0);
    w[3] = 1.5;
    const params = groupParams(w, 0, 32, 4);
    expect(params.scale).toBeCloseTo(-0.1, 6);
    expect(params.bias).toBe(1.5);
    const codes = new Uint8Array(32);
    quantizeGroup(w, 0, 32, 4, params, codes);
    expect(codes[0]).toBe(15);
    expect(codes[3]).toBe(0);
  });

  it("keeps a zero group at zero", () => {
    const params = groupParams(new Float32Array(64), 0, 64, 8);
    expect(params.bias).toBe(0);
    const rows = quantizeRows(new Float32Array(64), 1, 64, 8, 64);
    expect([...dequantizeRows(rows.packed, rows.scales, rows.biases, 1, 64, 8, 64)].every((value) => value === 0)).toBe(true);
  });

  it("bounds the rounding error by half a step", () => {
    for (const bits of allBits) {
      const cols = 128;
      const w = randomValues(4 * cols, 100 + bits);
      const rows = quantizeRows(w, 4, cols, bits, 32);
      const restored = dequantizeRows(rows.packed, rows.scales, rows.biases, 4, cols, bits, 32);
      const codes = new Uint8Array(4 * cols);
      for (let r = 0; r < 4; r++) unpackCodes(rows.packed.subarray((r * cols * bits) / 8), bits, 0, cols, codes.subarray(r * cols));
      const top = (1 << bits) - 1;
      for (let i = 0; i < w.length; i++) {
        // The rescaled step can push the far end of a group past the top code, where it is clamped.
        if (codes[i] === top) continue;
        const step = Math.abs(rows.scales[Math.floor(i / 32)]);
        expect(Math.abs(restored[i] - w[i]), `${bits} bits, element ${i}`).toBeLessThanOrEqual(0.5 * step * (1 + 1e-5) + 1e-7);
      }
    }
  });
});

describe("native dequantization", () => {
  it("computes scale · q + bias with a positive and a negative scale", () => {
    // Row 0: scale 0.5, bias -1, every code 3 → 0.5. Row 1: scale -0.25, bias 2, code 4 → 1.
    const codes = new Uint8Array(64);
    codes.fill(3, 0, 32);
    codes.fill(4, 32, 64);
    const packed = new Uint8Array((64 * 4) / 8);
    packCodes(codes.subarray(0, 32), 32, 4, packed.subarray(0, 16), 0);
    packCodes(codes.subarray(32), 32, 4, packed.subarray(16), 0);
    for (const path of simdPaths) {
      const out = withSimdPathSync(path, () => testing.quantDequantize(packed, Float32Array.of(0.5, -0.25), Float32Array.of(-1, 2), 4, 32, 2, 32));
      expect([...out.subarray(0, 32)].every((value) => value === 0.5), path).toBe(true);
      expect([...out.subarray(32)].every((value) => value === 1), path).toBe(true);
    }
  });

  it("rejects inconsistent arguments", () => {
    const bad: [() => unknown, RegExp][] = [
      [() => testing.quantMatVec(new Uint8Array(16), new Float32Array(1), new Float32Array(1), 7, 32, 1, 32, new Float32Array(32)), /bits 7 and groupSize 32 must be in/],
      [() => testing.quantMatVec(new Uint8Array(16), new Float32Array(1), new Float32Array(1), 4, 32, 1, 48, new Float32Array(48)), /cols 48 is not a multiple of groupSize 32/],
      [() => testing.quantMatVec(new Uint8Array(15), new Float32Array(1), new Float32Array(1), 4, 32, 1, 32, new Float32Array(32)), /packed has 15 bytes but 16 are needed/],
      [() => testing.quantMatVec(new Uint8Array(16), new Float32Array(2), new Float32Array(1), 4, 32, 1, 32, new Float32Array(32)), /scales has 2 elements but 1 are needed/],
    ];
    for (const [call, message] of bad) {
      let caught: unknown;
      try {
        call();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(Error);
      expect((caught as NessoError).message).toMatch(message);
    }
  });
});

/** Runs a synchronous body with NESSO_MCP_SIMD set to `path`. */
function withSimdPathSync<T>(path: string, body: () => T): T {
  const previous = process.env.NESSO_MCP_SIMD;
  process.env.NESSO_MCP_SIMD = path;
  try {
    return body();
  } finally {
    if (previous === undefined) delete process.env.NESSO_MCP_SIMD;
    else process.env.NESSO_MCP_SIMD = previous;
  }
}

describe("native quantized products", () => {
  // 37 rows: not a multiple of the 4-row or 16-row blocks, so every tail path runs.
  const rows = 37;
  const cols = 256;

  for (const path of simdPaths) {
    for (const bits of allBits) {
      it(`matVec and matMul match the reference at ${bits} bits on ${path}`, async () => {
        for (const groupSize of allGroupSizes) {
          const w = randomValues(rows * cols, bits * 1000 + groupSize, 0.05);
          const quantized = quantizeRows(w, rows, cols, bits, groupSize);
          const dequantized = dequantizeRows(quantized.packed, quantized.scales, quantized.biases, rows, cols, bits, groupSize);
          const packed = unaligned(quantized.packed, 3);
          const tokens = 5;
          const x = randomValues(tokens * cols, bits + groupSize);

          const single = await withSimdPath(path, () => testing.quantMatVec(packed, quantized.scales, quantized.biases, bits, groupSize, rows, cols, x.subarray(0, cols)));
          const reference = referenceMatMul(dequantized, rows, cols, x.subarray(0, cols), 1);
          // Float32 accumulation over 256 products: a few ulps of the magnitude sum.
          expect(maxDifference(single, reference.y), `g${groupSize} matVec`).toBeLessThanOrEqual(2e-6 * reference.bound);

          const batch = await withSimdPath(path, () => testing.quantMatMul(packed, quantized.scales, quantized.biases, bits, groupSize, rows, cols, x, tokens));
          const batchReference = referenceMatMul(dequantized, rows, cols, x, tokens);
          expect(maxDifference(batch, batchReference.y), `g${groupSize} matMul`).toBeLessThanOrEqual(2e-6 * batchReference.bound);

          const rowsOut = await withSimdPath(path, () => testing.quantDequantize(packed, quantized.scales, quantized.biases, bits, groupSize, rows, cols));
          expect(maxDifference(rowsOut, dequantized), `g${groupSize} dequantize`).toBe(0);
        }
      });
    }
  }
});
