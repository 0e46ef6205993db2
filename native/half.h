// Scalar bfloat16 and IEEE binary16 to float32 conversion. The functions have internal linkage
// (static) so that a copy compiled with SIMD target flags is never shared with other files.
#pragma once

#include <cstdint>
#include <cstring>

namespace nesso {

// bfloat16 is the upper half of a float32 bit pattern.
static inline float bf16BitsToFloat(uint16_t bits) {
  uint32_t wide = uint32_t(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

static inline float f16BitsToFloat(uint16_t bits) {
  uint32_t sign = uint32_t(bits & 0x8000) << 16;
  uint32_t exponent = (bits >> 10) & 0x1f;
  uint32_t mantissa = bits & 0x3ff;
  uint32_t wide;
  if (exponent == 0x1f) {
    // Infinity or NaN keeps its payload.
    wide = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    wide = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    wide = sign;
  } else {
    // Subnormal half: shift the mantissa up until its leading one becomes the implicit bit.
    int shift = 0;
    while ((mantissa & 0x400) == 0) {
      mantissa <<= 1;
      shift++;
    }
    mantissa &= 0x3ff;
    wide = sign | (uint32_t(127 - 15 + 1 - shift) << 23) | (mantissa << 13);
  }
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

// float32 to IEEE binary16, rounding to nearest even: values past the largest half (65504) become
// infinity, values under half the smallest subnormal become zero, NaN stays NaN.
static inline uint16_t floatToF16Bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t exponent = (bits >> 23) & 0xffu;
  uint32_t mantissa = bits & 0x7fffffu;
  if (exponent == 0xff) return uint16_t(sign | 0x7c00u | (mantissa != 0 ? 0x200u | (mantissa >> 13) : 0u));
  const int halfExponent = int(exponent) - 127 + 15;
  if (halfExponent >= 0x1f) return uint16_t(sign | 0x7c00u);
  uint32_t shift = 13;
  uint32_t high = uint32_t(halfExponent) << 10;
  if (halfExponent <= 0) {
    // A subnormal half: the implicit one becomes explicit and the mantissa shifts further.
    if (halfExponent < -10) return uint16_t(sign);
    mantissa |= 0x800000u;
    shift = uint32_t(14 - halfExponent);
    high = 0;
  }
  uint32_t half = high | (mantissa >> shift);
  const uint32_t remainder = mantissa & ((1u << shift) - 1u);
  const uint32_t halfway = 1u << (shift - 1);
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (remainder > halfway || (remainder == halfway && (half & 1u) != 0)) half++;
  return uint16_t(sign | half);
}

// float32 to binary16 for the KV cache: values beyond ±65504 become ±65504 instead of infinity, so
// one large activation does not turn every later attention score into NaN. NaN stays NaN.
static inline uint16_t floatToF16BitsSaturated(float value) {
  const float limit = 65504.0f;
  if (value > limit) value = limit;
  if (value < -limit) value = -limit;
  return floatToF16Bits(value);
}

// Reads element i of a little-endian array of `dtype` (as a Dtype code) that may be unaligned.
static inline float loadElement(const uint8_t* data, int dtypeCode, size_t i) {
  if (dtypeCode == 0) {
    float value;
    std::memcpy(&value, data + 4 * i, 4);
    return value;
  }
  uint16_t bits;
  std::memcpy(&bits, data + 2 * i, 2);
  return dtypeCode == 1 ? f16BitsToFloat(bits) : bf16BitsToFloat(bits);
}

}  // namespace nesso
