// Conversion between float32 and the float dtypes of safetensors checkpoints (F32, F16, BF16),
// little-endian, rounding to nearest even.

export type FloatDtype = "F32" | "F16" | "BF16";

export const floatDtypes: readonly FloatDtype[] = ["F32", "F16", "BF16"];

export const floatDtypeBytes: Readonly<Record<FloatDtype, number>> = { F32: 4, F16: 2, BF16: 2 };

const floatView = new Float32Array(1);
const bitsView = new Uint32Array(floatView.buffer);

function bf16BitsToFloat(bits: number): number {
  bitsView[0] = bits << 16;
  return floatView[0];
}

function f16BitsToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

export function floatToBf16Bits(value: number): number {
  floatView[0] = value;
  const bits = bitsView[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  const rounding = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + rounding) >>> 16) & 0xffff;
}

export function floatToF16Bits(value: number): number {
  floatView[0] = value;
  const bits = bitsView[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // A subnormal half (or zero): shift the mantissa with its implicit bit into place and round.
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let half = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && half & 1)) half += 1;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && half & 1)) half += 1;
  return sign | half;
}

// Typed arrays use the platform's byte order; every platform Node.js ships for (x86_64, arm64)
// is little-endian, like safetensors.
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Decodes little-endian bytes of `dtype` to float32. */
export function decodeFloats(bytes: Uint8Array, dtype: FloatDtype): Float32Array {
  if (!littleEndian) return decodeFloatsPortably(bytes, dtype);
  // Copying into a fresh buffer aligns the data for the typed-array views.
  const copy = bytes.slice();
  if (dtype === "F32") return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
  const halves = new Uint16Array(copy.buffer, 0, copy.byteLength / 2);
  const out = new Float32Array(halves.length);
  if (dtype === "BF16") {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < halves.length; i++) bits[i] = halves[i] << 16;
  } else {
    for (let i = 0; i < halves.length; i++) out[i] = f16BitsToFloat(halves[i]);
  }
  return out;
}

function decodeFloatsPortably(bytes: Uint8Array, dtype: FloatDtype): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = bytes.byteLength / floatDtypeBytes[dtype];
  const out = new Float32Array(count);
  if (dtype === "F32") {
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  } else {
    const decode = dtype === "BF16" ? bf16BitsToFloat : f16BitsToFloat;
    for (let i = 0; i < count; i++) out[i] = decode(view.getUint16(2 * i, true));
  }
  return out;
}

/** Encodes float32 values as little-endian bytes of `dtype`. */
export function encodeFloats(values: Float32Array, dtype: FloatDtype): Uint8Array {
  if (littleEndian) {
    if (dtype === "F32") return new Uint8Array(values.slice().buffer);
    const halves = new Uint16Array(values.length);
    const encode = dtype === "BF16" ? floatToBf16Bits : floatToF16Bits;
    for (let i = 0; i < values.length; i++) halves[i] = encode(values[i]);
    return new Uint8Array(halves.buffer);
  }
  const out = new Uint8Array(values.length * floatDtypeBytes[dtype]);
  const view = new DataView(out.buffer);
  if (dtype === "F32") {
    for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i], true);
  } else {
    const encode = dtype === "BF16" ? floatToBf16Bits : floatToF16Bits;
    for (let i = 0; i < values.length; i++) view.setUint16(2 * i, encode(values[i]), true);
  }
  return out;
}

/** Rounds float32 values to `dtype` and back, as storing and reloading them would. */
export function roundToDtype(values: Float32Array, dtype: FloatDtype): Float32Array {
  return dtype === "F32" ? values : decodeFloats(encodeFloats(values, dtype), dtype);
}
