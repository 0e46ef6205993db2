// Int8 activations for the integer quantized kernels: the quantizer, the kernel layout and the
// plain C++ kernels, which are the reference for the SIMD ones and the path without AVX2.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "quant.h"
#include "quant-unpack.h"

namespace nesso {

bool hasInt8Path(int bits) {
  return bits == 4 || bits == 8;
}

size_t activationPosition(int bits, size_t cols, size_t index) {
  if (bits != 4) return index;
  const size_t chunk = index / (2 * kActivationBlock) * (2 * kActivationBlock);
  const size_t inBlock = index % kActivationBlock;
  const size_t odd = inBlock % 2;
  if (chunk + 2 * kActivationBlock > cols) {
    // The trailing lone block: 16 even, then 16 odd elements.
    return chunk + odd * (kActivationBlock / 2) + inBlock / 2;
  }
  const size_t block = (index - chunk) / kActivationBlock;
  return chunk + odd * kActivationBlock + block * (kActivationBlock / 2) + inBlock / 2;
}

void quantizeActivations(const float* x, size_t cols, int bits, size_t groupSize, const QuantizedActivations& out) {
  const size_t blocksPerGroup = groupSize / kActivationBlock;
  for (size_t g = 0; g < cols / groupSize; g++) {
    float sum = 0.0f;
    for (size_t i = 0; i < groupSize; i++) sum += x[g * groupSize + i];
    out.groupSums[g] = sum;

    float offset = 0.0f;
    for (size_t b = g * blocksPerGroup; b < (g + 1) * blocksPerGroup; b++) {
      const float* block = x + b * kActivationBlock;
      float maxAbs = 0.0f;
      bool finite = true;
      for (size_t i = 0; i < kActivationBlock; i++) {
        maxAbs = std::max(maxAbs, std::fabs(block[i]));
        finite = finite && std::isfinite(block[i]);
      }
      // A block whose 127 / max |x| overflows (max |x| below about 3e-37) is stored as zeros: its
      // contribution is below float32 resolution next to any normal activation. A block with an
      // infinity or NaN gets the scale NaN, so the products become NaN instead of finite garbage.
      float inverse = finite && maxAbs > 0.0f ? 127.0f / maxAbs : 0.0f;
      if (!std::isfinite(inverse)) inverse = 0.0f;
      const float scale = !finite ? std::nanf("") : inverse > 0.0f ? maxAbs / 127.0f : 0.0f;
      int32_t codeSum = 0;
      for (size_t i = 0; i < kActivationBlock; i++) {
        // nearbyint rounds half to even, like the SIMD conversion in the default rounding mode.
        const int32_t code = int32_t(std::nearbyint(block[i] * inverse));
        out.values[activationPosition(bits, cols, b * kActivationBlock + i)] = int8_t(code);
        codeSum += code;
      }
      out.blockScales[b] = scale;
      offset += scale * float(codeSum);
    }
    out.groupOffsets[g] = 128.0f * offset;
  }
}

namespace {

void unpackGroupOf(int bits, const uint8_t* row, size_t first, size_t groupSize, uint8_t* q) {
  if (bits == 4) {
    unpackGroup<4>(row, first, groupSize, q);
  } else {
    unpackGroup<8>(row, first, groupSize, q);
  }
}

void matVec(const QuantizedMatrix& weights, size_t rowBegin, size_t rowEnd, const QuantizedActivations& x, float* y) {
  constexpr size_t kMaxGroupSize = 128;
  const size_t groupSize = size_t(weights.groupSize);
  const size_t groups = weights.groupsPerRow;
  const size_t blocksPerGroup = groupSize / kActivationBlock;

  // The codes back in natural order, so the inner loop reads both operands in order.
  thread_local std::vector<int8_t> natural;
  natural.resize(weights.cols);
  for (size_t i = 0; i < weights.cols; i++) natural[i] = x.values[activationPosition(weights.bits, weights.cols, i)];

  uint8_t codes[kMaxGroupSize];
  for (size_t r = rowBegin; r < rowEnd; r++) {
    const uint8_t* row = weights.packed + r * weights.packedRowBytes;
    const float* scales = weights.scales + r * groups;
    const float* biases = weights.biases + r * groups;
    float sum = 0.0f;
    for (size_t g = 0; g < groups; g++) {
      unpackGroupOf(weights.bits, row, g * groupSize, groupSize, codes);
      float groupDot = 0.0f;
      for (size_t k = 0; k < blocksPerGroup; k++) {
        const size_t first = g * groupSize + k * kActivationBlock;
        int32_t dot = 0;
        for (size_t i = 0; i < kActivationBlock; i++) dot += int32_t(codes[k * kActivationBlock + i]) * natural[first + i];
        groupDot += x.blockScales[first / kActivationBlock] * float(dot);
      }
      sum += scales[g] * groupDot + biases[g] * x.groupSums[g];
    }
    y[r] = sum;
  }
}

void matMul(const QuantizedMatrix& weights, size_t rowBegin, size_t rowEnd, const QuantizedActivations* x,
            size_t tokens, float* y, size_t ldy) {
  for (size_t t = 0; t < tokens; t++) matVec(weights, rowBegin, rowEnd, x[t], y + t * ldy);
}

}  // namespace

const Int8QuantKernels& portableInt8QuantKernels() {
  static constexpr Int8QuantKernels kernels = {"portable", matVec, matMul};
  return kernels;
}

#if !defined(NESSO_HAVE_AVX2)
const Int8QuantKernels* avx2Int8QuantKernels() {
  return nullptr;
}
#endif

}  // namespace nesso
