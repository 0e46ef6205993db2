// The integer kernels for 4- and 8-bit weights: activations quantized to int8 blocks of 32, then
// integer dot products. Kernel tests compare every SIMD path with a JS model of the same algorithm
// (exact codes, double sums) and with the exact float product under the quantization error bound.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dequantizeRows, quantizeRows, unpackCodes } from "../../src/convert/affine.js";
import { buildModelSpec, readCheckpointTensors } from "../../src/engine/checkpoint.js";
import { parseConfigText } from "../../src/engine/config.js";
import { loadNativeAddon } from "../../src/engine/native.js";
import { TextTokenizer } from "../../src/engine/tokenizer.js";
import { nessoVocabSize } from "../fixtures/checkpoint.js";
import { createRandom, fillNormal } from "../fixtures/random.js";
import { argmax, maxAbs, maxAbsDifference, withSimdPath } from "./native-helpers.js";
import { quantizedPair } from "./quant-fixtures.js";

const addon = loadNativeAddon();
const { testing } = addon;
const fround = Math.fround;

const simdPaths = ["portable", "avx2", "avx512"].filter((path) => {
  const previous = process.env.NESSO_MCP_SIMD;
  process.env.NESSO_MCP_SIMD = path;
  const chosen = addon.simdPath();
  if (previous === undefined) delete process.env.NESSO_MCP_SIMD;
  else process.env.NESSO_MCP_SIMD = previous;
  return chosen === path;
});

const block = 32;

/** Rounds half to even, as nearbyint and the SIMD conversions do in the default rounding mode. */
function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

interface QuantizedX {
  /** Codes in natural order. */
  codes: Int32Array;
  scales: Float64Array;
}

/** Quantizes x as the engine does, in float32 arithmetic: codes round(x · 127 / max |x|). */
function quantizeX(x: Float32Array): QuantizedX {
  const codes = new Int32Array(x.length);
  const scales = new Float64Array(x.length / block);
  for (let b = 0; b < scales.length; b++) {
    let maxAbs = 0;
    for (let i = 0; i < block; i++) maxAbs = Math.max(maxAbs, Math.abs(x[b * block + i]));
    let inverse = maxAbs > 0 ? fround(127 / maxAbs) : 0;
    if (!Number.isFinite(inverse)) inverse = 0;
    scales[b] = inverse > 0 ? fround(maxAbs / 127) : 0;
    for (let i = 0; i < block; i++) codes[b * block + i] = roundHalfEven(fround(x[b * block + i] * inverse));
  }
  return { codes, scales };
}

interface Weights {
  rows: number;
  cols: number;
  bits: number;
  groupSize: number;
  packed: Uint8Array;
  scales: Float32Array;
  biases: Float32Array;
  codes: Uint8Array;
  dequantized: Float32Array;
}

function randomValues(length: number, seed: number, std = 1): Float32Array {
  const values = new Float32Array(length);
  fillNormal(values, createRandom(seed), std);
  return values;
}

function makeWeights(rows: number, cols: number, bits: number, groupSize: number, seed: number): Weights {
  const w = randomValues(rows * cols, seed, 0.05);
  const { packed, scales, biases } = quantizeRows(w, rows, cols, bits, groupSize);
  const codes = new Uint8Array(rows * cols);
  const rowBytes = (cols * bits) / 8;
  for (let r = 0; r < rows; r++) unpackCodes(packed.subarray(r * rowBytes), bits, 0, cols, codes.subarray(r * cols));
  const dequantized = dequantizeRows(packed, scales, biases, rows, cols, bits, groupSize);
  return { rows, cols, bits, groupSize, packed, scales, biases, codes, dequantized };
}

interface Expected {
  /** The integer algorithm in double precision. */
  y: Float64Array;
  /** Per row: the sum of the magnitudes of its terms, for the float32 rounding bound. */
  magnitude: Float64Array;
  /** Per row: Σ |scale · q| · (max error of the quantized x) for the accuracy bound. */
  quantizationBound: Float64Array;
  /** Dequantized W · x in double precision, and per row Σ |w · x|. */
  exact: Float64Array;
  exactMagnitude: Float64Array;
}

function expected(weights: Weights, x: Float32Array): Expected {
  const { rows, cols, groupSize } = weights;
  const quantized = quantizeX(x);
  const y = new Float64Array(rows);
  const magnitude = new Float64Array(rows);
  const quantizationBound = new Float64Array(rows);
  const exact = new Float64Array(rows);
  const exactMagnitude = new Float64Array(rows);
  const groups = cols / groupSize;
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const scale = weights.scales[r * groups + g];
      const bias = weights.biases[r * groups + g];
      let sumX = 0;
      let sumAbsX = 0;
      for (let i = g * groupSize; i < (g + 1) * groupSize; i++) {
        const b = Math.floor(i / block);
        const q = weights.codes[r * cols + i];
        const blockMax = quantized.scales[b] * 127;
        // Half a step, or the whole value for a block stored as zeros.
        const error = quantized.scales[b] > 0 ? quantized.scales[b] / 2 : Math.abs(x[i]);
        y[r] += scale * quantized.scales[b] * q * quantized.codes[i];
        // The SIMD 8-bit kernel sums (q - 128) · code and 128 · code separately.
        magnitude[r] += Math.abs(scale) * quantized.scales[b] * (q + 128) * Math.abs(quantized.codes[i]) + Math.abs(bias * x[i]);
        quantizationBound[r] += Math.abs(scale * q) * error + 1e-6 * Math.abs(scale * q) * blockMax;
        exact[r] += weights.dequantized[r * cols + i] * x[i];
        exactMagnitude[r] += Math.abs(weights.dequantized[r * cols + i] * x[i]);
        sumX += x[i];
        sumAbsX += Math.abs(x[i]);
      }
      y[r] += bias * sumX;
      magnitude[r] += Math.abs(bias) * sumAbsX;
    }
  }
  return { y, magnitude, quantizationBound, exact, exactMagnitude };
}

/** Runs the native matVec of one activation row on `path` with the default (int8) activations. */
async function nativeMatVec(path: string, weights: Weights, x: Float32Array): Promise<Float32Array> {
  return withSimdPath(path, () =>
    testing.quantMatVec(weights.packed, weights.scales, weights.biases, weights.bits, weights.groupSize, weights.rows, weights.cols, x),
  );
}

/** Asserts |native - algorithm| within float32 rounding and |native - exact| within the quantization bound. */
function checkRows(native: ArrayLike<number>, reference: Expected, label: string): void {
  expect(native.length, label).toBe(reference.y.length);
  for (let r = 0; r < reference.y.length; r++) {
    // Float32 sums of at most a few thousand terms: a few ulps of their magnitude.
    expect(Math.abs(native[r] - reference.y[r]), `${label} row ${r} vs algorithm`).toBeLessThanOrEqual(4e-6 * reference.magnitude[r] + 1e-30);
    expect(Math.abs(native[r] - reference.exact[r]), `${label} row ${r} vs exact`).toBeLessThanOrEqual(
      reference.quantizationBound[r] + 4e-6 * reference.magnitude[r] + 1e-30,
    );
  }
}

/** Shapes: odd row counts, rows not a multiple of the 4-row tile, and an odd number of blocks. */
const shapes: { rows: number; cols: number; groupSizes: number[] }[] = [
  { rows: 37, cols: 256, groupSizes: [32, 64, 128] },
  { rows: 1, cols: 128, groupSizes: [32, 64, 128] },
  { rows: 6, cols: 96, groupSizes: [32] },
  { rows: 5, cols: 960, groupSizes: [32, 64] },
  { rows: 3, cols: 384, groupSizes: [128] },
];

describe("int8 activation kernels", () => {
  for (const path of simdPaths) {
    for (const bits of [4, 8]) {
      it(`matVec follows the integer algorithm at ${bits} bits on ${path}`, async () => {
        for (const { rows, cols, groupSizes } of shapes) {
          for (const groupSize of groupSizes) {
            const weights = makeWeights(rows, cols, bits, groupSize, bits * 7919 + rows * 31 + groupSize);
            const x = randomValues(cols, rows + cols + groupSize);
            const native = await nativeMatVec(path, weights, x);
            checkRows(native, expected(weights, x), `${rows}x${cols} g${groupSize}`);
          }
        }
      });

      it(`matVec handles extreme blocks at ${bits} bits on ${path}`, async () => {
        const rows = 9;
        const cols = 256;
        for (const groupSize of [32, 64, 128]) {
          const weights = makeWeights(rows, cols, bits, groupSize, 17 * bits + groupSize);
          const x = randomValues(cols, 5);
          x.fill(0, 0, 32); // a zero block
          for (let i = 32; i < 64; i++) x[i] *= 1e20; // a large block
          for (let i = 64; i < 96; i++) x[i] *= 1e-30; // a tiny block
          for (let i = 96; i < 128; i++) x[i] *= 1e-41; // subnormal: 127 / max overflows
          x[128] = 1e4; // one outlier that flattens the rest of its block to zero codes
          for (let i = 160; i < 192; i++) x[i] = i % 2 === 0 ? 3 : -3; // exactly ±127 codes
          const native = await nativeMatVec(path, weights, x);
          checkRows(native, expected(weights, x), `extreme g${groupSize}`);
        }
      });

      // 8-bit prefill keeps float activations (the integer tile was slower), so it must match
      // the exact product to float32 rounding instead.
      const matMulName = bits === 4 ? "follows the integer algorithm" : "keeps float activations";
      it(`matMul ${matMulName} at ${bits} bits on ${path}`, async () => {
        // Token counts below one 4-token tile, with a partial tile, and past one 64-token block.
        const cases = [
          { rows: 13, cols: 320, tokens: 7, groupSizes: [32, 64] },
          { rows: 3, cols: 96, tokens: 2, groupSizes: [32] },
          { rows: 4, cols: 256, tokens: 70, groupSizes: [128] },
        ];
        for (const { rows, cols, tokens, groupSizes } of cases) {
          for (const groupSize of groupSizes) {
            const weights = makeWeights(rows, cols, bits, groupSize, 3 * bits + groupSize + rows);
            const x = randomValues(tokens * cols, 11 + groupSize + tokens);
            const batch = await withSimdPath(path, () =>
              testing.quantMatMul(weights.packed, weights.scales, weights.biases, bits, groupSize, rows, cols, x, tokens),
            );
            expect(batch.length).toBe(tokens * rows);
            for (let t = 0; t < tokens; t++) {
              const label = `${rows}x${cols} g${groupSize} token ${t}`;
              const tokenY = batch.subarray(t * rows, (t + 1) * rows);
              const reference = expected(weights, x.subarray(t * cols, (t + 1) * cols));
              if (bits === 4) {
                checkRows(tokenY, reference, label);
              } else {
                for (let r = 0; r < rows; r++) {
                  expect(Math.abs(tokenY[r] - reference.exact[r]), `${label} row ${r}`).toBeLessThanOrEqual(2e-6 * reference.exactMagnitude[r]);
                }
              }
            }
          }
        }
      });
    }
  }

  it("turns an infinite activation into NaN outputs", async () => {
    const weights = makeWeights(4, 64, 4, 32, 1);
    const x = randomValues(64, 2);
    x[3] = Infinity;
    const native = await nativeMatVec(simdPaths[simdPaths.length - 1], weights, x);
    expect([...native].every((value) => Number.isNaN(value))).toBe(true);
  });

  it("keeps float activations when NESSO_MCP_QUANT_ACTIVATIONS is float", async () => {
    // The float path multiplies x itself, while int8 activations round x to multiples of
    // max |x| / 127 per block, so the two outputs differ.
    const weights = makeWeights(2, 64, 8, 32, 4);
    const x = randomValues(64, 9);
    const previous = process.env.NESSO_MCP_QUANT_ACTIVATIONS;
    process.env.NESSO_MCP_QUANT_ACTIVATIONS = "float";
    let floatY: Float32Array;
    try {
      floatY = testing.quantMatVec(weights.packed, weights.scales, weights.biases, 8, 32, 2, 64, x);
    } finally {
      if (previous === undefined) delete process.env.NESSO_MCP_QUANT_ACTIVATIONS;
      else process.env.NESSO_MCP_QUANT_ACTIVATIONS = previous;
    }
    const intY = testing.quantMatVec(weights.packed, weights.scales, weights.biases, 8, 32, 2, 64, x);
    const reference = expected(weights, x);
    for (let r = 0; r < 2; r++) {
      expect(Math.abs(floatY[r] - reference.exact[r]), `float row ${r}`).toBeLessThanOrEqual(2e-6 * reference.exactMagnitude[r]);
      expect(Math.abs(intY[r] - reference.y[r]), `int8 row ${r}`).toBeLessThanOrEqual(4e-6 * reference.magnitude[r]);
      // The two paths differ by the activation rounding, which this seed makes visible.
      expect(floatY[r], `row ${r}`).not.toBe(intY[r]);
    }
  });
});

const greedySteps = 16;
const promptText = "<|im_start|>user\nQual è la capitale d'Italia? Answer in one word 🙂<|im_end|>\n<|im_start|>assistant\n";
let promptIds: Int32Array | null = null;

interface Run {
  /** Logits after the prompt (prefill) and after the last greedy token (decode). */
  logits: Float32Array[];
  tokens: number[];
}

/** Greedy decoding of `greedySteps` tokens on the native addon. */
async function greedyRun(dir: string): Promise<Run> {
  promptIds ??= Int32Array.from((await TextTokenizer.load(dir)).encode(promptText));
  const config = parseConfigText(readFileSync(join(dir, "config.json"), "utf8"));
  const spec = buildModelSpec(config, await readCheckpointTensors(dir), { tokenizerVocabSize: nessoVocabSize });
  const model = await addon.loadModel({ ...spec, threads: 2 });
  try {
    const context = model.createContext({ contextSize: 128 });
    await context.eval(promptIds);
    const logits: Float32Array[] = [context.getLogits()];
    const tokens: number[] = [];
    for (let step = 0; step < greedySteps; step++) {
      tokens.push(argmax(context.getLogits()));
      await context.eval(Int32Array.of(tokens[step]));
    }
    logits.push(context.getLogits());
    return { logits, tokens };
  } finally {
    model.dispose();
  }
}

function relativeDifference(a: Run, b: Run): number {
  let difference = 0;
  let magnitude = 0;
  for (let i = 0; i < a.logits.length; i++) {
    difference = Math.max(difference, maxAbsDifference(a.logits[i], b.logits[i]));
    magnitude = Math.max(magnitude, maxAbs(b.logits[i]));
  }
  return difference / magnitude;
}

/**
 * Bounds on max |Δlogit| / max |logit| between a quantized fixture run with int8 activations and
 * the same weights dequantized to F32 run in float32: 3× the largest ratio measured over the three
 * group sizes (4 bits: 3.6e-2 to 5.1e-2, 8 bits: 2.0e-2 to 3.4e-2, all 16 greedy tokens equal).
 * The difference is the activation rounding, up to half a step of max |x| / 127 per 32-element
 * block, in every projection of the random fixture, whose logits are all of similar size.
 */
const int8Tolerance: Record<number, number> = { 4: 0.15, 8: 0.1 };

describe("int8 activations in quantized checkpoints", () => {
  for (const bits of [4, 8]) {
    it(`stay close to the dequantized weights at ${bits} bits`, { timeout: 120_000 }, async () => {
      for (const groupSize of [32, 64, 128]) {
        const { quantized, dequantized } = await quantizedPair(bits, groupSize);
        const ours = await greedyRun(quantized);
        const reference = await greedyRun(dequantized);
        const ratio = relativeDifference(ours, reference);
        const sameTokens = ours.tokens.filter((token, i) => token === reference.tokens[i]).length;
        console.info(`int8 ${bits}-bit g${groupSize}: max |Δlogit| / max |logit| = ${ratio.toExponential(2)}, ${sameTokens}/${greedySteps} greedy tokens equal`);
        expect(ratio, `g${groupSize}`).toBeLessThanOrEqual(int8Tolerance[bits]);
        expect(ratio, `g${groupSize} uses int8 activations`).toBeGreaterThan(1e-5);
        if (bits === 8) expect(ours.tokens, `g${groupSize}`).toEqual(reference.tokens);
      }
    });
  }
});
