// MLX affine quantization of float rows: the quantizer, the LSB-first bit packing and the
// dequantizer, computed in float32 as MLX computes them.
//
// Quantizer, per group of G values (affine_quantize in mlx/backend/metal/kernels/quantized.h and
// mlx/backend/cpu/quantized.cpp, mlx 0.29):
//   w_min = min(w), w_max = max(0, max(w))   (the kernel starts w_max at 0)
//   scale = max((w_max - w_min) / (2^bits - 1), 1e-7)
//   edge  = whichever of w_min, w_max has the larger magnitude; scale takes the sign that maps the
//           edge onto a code (negative when the edge is w_max)
//   q0 = round(edge / scale); if q0 != 0 then scale = edge / q0 and bias = edge, else bias = 0
//   q = clamp(round((w - bias) / scale), 0, 2^bits - 1)
// The scale and bias are then stored in the checkpoint's float dtype (BF16 for a bf16 model).
//
// Packing: each row is a little-endian bit stream. Element j occupies bits [j·bits, (j+1)·bits),
// least significant bit first, so 3-, 5- and 6-bit codes straddle byte and word boundaries.

const fround = Math.fround;

/** Rounds half away from zero, as Metal's and C's round() do (Math.round rounds half up). */
function roundHalfAway(value: number): number {
  return value < 0 ? -Math.round(-value) : Math.round(value);
}

/** Scale and bias of one group, in float32 before any rounding to the storage dtype. */
export interface GroupParams {
  scale: number;
  bias: number;
}

/** Computes MLX's scale and bias for the values w[begin, begin + groupSize). */
export function groupParams(w: Float32Array, begin: number, groupSize: number, bits: number): GroupParams {
  let min = Infinity;
  let max = 0;
  for (let i = begin; i < begin + groupSize; i++) {
    const value = w[i];
    if (value < min) min = value;
    if (value > max) max = value;
  }
  const bins = (1 << bits) - 1;
  let scale = fround(Math.max(fround(fround(max - min) / bins), fround(1e-7)));
  const minIsEdge = Math.abs(min) > Math.abs(max);
  if (!minIsEdge) scale = -scale;
  const edge = minIsEdge ? min : max;
  const q0 = roundHalfAway(fround(edge / scale));
  if (q0 === 0) return { scale, bias: 0 };
  return { scale: fround(edge / q0), bias: edge };
}

/** Quantizes w[begin, begin + groupSize) with the float32 scale and bias into codes[0, groupSize). */
export function quantizeGroup(w: Float32Array, begin: number, groupSize: number, bits: number, params: GroupParams, codes: Uint8Array): void {
  const bins = (1 << bits) - 1;
  for (let i = 0; i < groupSize; i++) {
    const q = roundHalfAway(fround(fround(w[begin + i] - params.bias) / params.scale));
    codes[i] = Math.min(Math.max(q, 0), bins);
  }
}

/** Writes `count` codes into the packed row `out` starting at element `first`. */
export function packCodes(codes: Uint8Array, count: number, bits: number, out: Uint8Array, first: number): void {
  for (let j = 0; j < count; j++) {
    const bit = (first + j) * bits;
    const byte = bit >>> 3;
    const shift = bit & 7;
    const shifted = codes[j] << shift;
    out[byte] |= shifted & 0xff;
    if (shift + bits > 8) out[byte + 1] |= shifted >>> 8;
  }
}

/** Reads `count` codes of the packed row `row` starting at element `first` into codes[0, count). */
export function unpackCodes(row: Uint8Array, bits: number, first: number, count: number, codes: Uint8Array): void {
  const mask = (1 << bits) - 1;
  for (let j = 0; j < count; j++) {
    const bit = (first + j) * bits;
    const byte = bit >>> 3;
    const shift = bit & 7;
    let window = row[byte];
    if (shift + bits > 8) window |= row[byte + 1] << 8;
    codes[j] = (window >>> shift) & mask;
  }
}

/** A quantized [rows, cols] matrix: packed rows and float32 group parameters. */
export interface QuantizedRows {
  /** [rows, cols · bits / 8] bytes, which is [rows, cols · bits / 32] little-endian U32 words. */
  packed: Uint8Array;
  /** [rows, cols / groupSize] float32 scales before rounding to the storage dtype. */
  scales: Float32Array;
  /** [rows, cols / groupSize] float32 biases before rounding to the storage dtype. */
  biases: Float32Array;
}

/**
 * Quantizes a row-major [rows, cols] float32 matrix. cols must be a multiple of groupSize, which
 * the caller checks (mlx-lm leaves other weights in float).
 */
export function quantizeRows(w: Float32Array, rows: number, cols: number, bits: number, groupSize: number): QuantizedRows {
  const rowBytes = (cols * bits) / 8;
  const groups = cols / groupSize;
  const packed = new Uint8Array(rows * rowBytes);
  const scales = new Float32Array(rows * groups);
  const biases = new Float32Array(rows * groups);
  const codes = new Uint8Array(groupSize);
  for (let r = 0; r < rows; r++) {
    const row = packed.subarray(r * rowBytes, (r + 1) * rowBytes);
    for (let g = 0; g < groups; g++) {
      const begin = r * cols + g * groupSize;
      const params = groupParams(w, begin, groupSize, bits);
      quantizeGroup(w, begin, groupSize, bits, params, codes);
      packCodes(codes, groupSize, bits, row, g * groupSize);
      scales[r * groups + g] = params.scale;
      biases[r * groups + g] = params.bias;
    }
  }
  return { packed, scales, biases };
}

/**
 * Dequantizes packed rows to float32: w = scale · q + bias, rounded once to float32 (the value a
 * fused multiply-add gives, since scale · q is exact in double precision).
 */
export function dequantizeRows(packed: Uint8Array, scales: Float32Array, biases: Float32Array, rows: number, cols: number, bits: number, groupSize: number): Float32Array {
  const rowBytes = (cols * bits) / 8;
  const groups = cols / groupSize;
  const out = new Float32Array(rows * cols);
  const codes = new Uint8Array(groupSize);
  for (let r = 0; r < rows; r++) {
    const row = packed.subarray(r * rowBytes, (r + 1) * rowBytes);
    for (let g = 0; g < groups; g++) {
      unpackCodes(row, bits, g * groupSize, groupSize, codes);
      const scale = scales[r * groups + g];
      const bias = biases[r * groups + g];
      const base = r * cols + g * groupSize;
      for (let i = 0; i < groupSize; i++) out[base + i] = scale * codes[i] + bias;
    }
  }
  return out;
}
