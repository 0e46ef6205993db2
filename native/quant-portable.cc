// Plain C++ quantized kernels: the reference path, and the fallback without a SIMD variant.

#include <cmath>

#include "quant.h"
#include "quant-unpack.h"

namespace nesso {

namespace {

// Largest group size; unpacked codes of one group fit in a stack buffer of this size.
constexpr size_t kMaxGroupSize = 128;

void unpackGroupOf(int bits, const uint8_t* row, size_t first, size_t groupSize, uint8_t* q) {
  switch (bits) {
    case 2: unpackGroup<2>(row, first, groupSize, q); break;
    case 3: unpackGroup<3>(row, first, groupSize, q); break;
    case 4: unpackGroup<4>(row, first, groupSize, q); break;
    case 5: unpackGroup<5>(row, first, groupSize, q); break;
    case 6: unpackGroup<6>(row, first, groupSize, q); break;
    default: unpackGroup<8>(row, first, groupSize, q); break;
  }
}

void matVec(const QuantizedMatrix& weights, size_t rowBegin, size_t rowEnd, const float* x, const float* groupSums,
            float* y) {
  const size_t groupSize = size_t(weights.groupSize);
  const size_t groups = weights.groupsPerRow;

  uint8_t codes[kMaxGroupSize];
  for (size_t r = rowBegin; r < rowEnd; r++) {
    const uint8_t* row = weights.packed + r * weights.packedRowBytes;
    const float* scales = weights.scales + r * groups;
    const float* biases = weights.biases + r * groups;
    float sum = 0.0f;
    for (size_t g = 0; g < groups; g++) {
      unpackGroupOf(weights.bits, row, g * groupSize, groupSize, codes);
      const float* xGroup = x + g * groupSize;
      float dot = 0.0f;
      for (size_t i = 0; i < groupSize; i++) dot += float(codes[i]) * xGroup[i];
      sum += scales[g] * dot + biases[g] * groupSums[g];
    }
    y[r] = sum;
  }
}

void dequantizeRow(const QuantizedMatrix& weights, size_t row, float* out) {
  const size_t groupSize = size_t(weights.groupSize);
  const uint8_t* packed = weights.packed + row * weights.packedRowBytes;
  const float* scales = weights.scales + row * weights.groupsPerRow;
  const float* biases = weights.biases + row * weights.groupsPerRow;
  uint8_t codes[kMaxGroupSize];
  for (size_t g = 0; g < weights.groupsPerRow; g++) {
    unpackGroupOf(weights.bits, packed, g * groupSize, groupSize, codes);
    for (size_t i = 0; i < groupSize; i++) out[g * groupSize + i] = std::fma(scales[g], float(codes[i]), biases[g]);
  }
}

}  // namespace

const QuantKernels& portableQuantKernels() {
  static constexpr QuantKernels kernels = {"portable", matVec, dequantizeRow};
  return kernels;
}

}  // namespace nesso
