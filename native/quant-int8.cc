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

// 8-bit prefill keeps float activations. Its codes need the sign trick of quant-int8-avx2.cc, one
// more operation per 32 products, and that integer tile ran at about 0.67× the speed of
// dequantizing to float32 plus the float GEMM (single thread, AMD EPYC Zen 3, an estimate).
bool hasInt8MatMul(int bits) {
  return bits == 4;
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
      float scale = inverse > 0.0f ? maxAbs / 127.0f : 0.0f;
      if (!finite) scale = std::nanf("");
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

  if (bits == 4 && out.chunkScales != nullptr) {
    const size_t blocks = cols / kActivationBlock;
    for (size_t c = 0; c < (blocks + 1) / 2; c++) {
      const float first = out.blockScales[2 * c];
      const float second = 2 * c + 1 < blocks ? out.blockScales[2 * c + 1] : first;
      for (size_t lane = 0; lane < 8; lane++) out.chunkScales[8 * c + lane] = lane < 4 ? first : second;
    }
  }
}

namespace {

// Codes of activation rows back in natural order, so the inner loops read both operands in order.
void naturalOrder(const QuantizedActivations* rows, size_t tokens, int bits, size_t cols, std::vector<int8_t>& out) {
  out.resize(tokens * cols);
  for (size_t t = 0; t < tokens; t++) {
    for (size_t i = 0; i < cols; i++) out[t * cols + i] = rows[t].values[activationPosition(bits, cols, i)];
  }
}

// Row `row` of the weights times the natural-order codes `x` of one token.
float rowDot(const QuantizedMatrix& weights, size_t row, const uint8_t* codes, const int8_t* x,
             const QuantizedActivations& activations) {
  const size_t groupSize = size_t(weights.groupSize);
  const size_t groups = weights.groupsPerRow;
  const float* scales = weights.scales + row * groups;
  const float* biases = weights.biases + row * groups;
  float sum = 0.0f;
  for (size_t g = 0; g < groups; g++) {
    float groupDot = 0.0f;
    for (size_t first = g * groupSize; first < (g + 1) * groupSize; first += kActivationBlock) {
      int32_t dot = 0;
      for (size_t i = first; i < first + kActivationBlock; i++) dot += int32_t(codes[i]) * x[i];
      groupDot += activations.blockScales[first / kActivationBlock] * float(dot);
    }
    sum += scales[g] * groupDot + biases[g] * activations.groupSums[g];
  }
  return sum;
}

// Unpacks every code of row `row` into `codes` [cols].
void unpackRow(const QuantizedMatrix& weights, size_t row, uint8_t* codes) {
  const uint8_t* packed = weights.packed + row * weights.packedRowBytes;
  if (weights.bits == 4) {
    unpackGroup<4>(packed, 0, weights.cols, codes);
  } else {
    unpackGroup<8>(packed, 0, weights.cols, codes);
  }
}

void matVec(const QuantizedMatrix& weights, size_t rowBegin, size_t rowEnd, const QuantizedActivations& x, float* y) {
  thread_local std::vector<int8_t> natural;
  thread_local std::vector<uint8_t> codes;
  naturalOrder(&x, 1, weights.bits, weights.cols, natural);
  codes.resize(weights.cols);
  for (size_t r = rowBegin; r < rowEnd; r++) {
    unpackRow(weights, r, codes.data());
    y[r] = rowDot(weights, r, codes.data(), natural.data(), x);
  }
}

// Each row is unpacked once and serves every token.
void matMul(const QuantizedMatrix& weights, size_t rowBegin, size_t rowEnd, const ActivationBatch& x, float* y,
            size_t ldy) {
  thread_local std::vector<int8_t> natural;
  thread_local std::vector<uint8_t> codes;
  naturalOrder(x.rows, x.tokens, weights.bits, weights.cols, natural);
  codes.resize(weights.cols);
  for (size_t r = rowBegin; r < rowEnd; r++) {
    unpackRow(weights, r, codes.data());
    for (size_t t = 0; t < x.tokens; t++) {
      y[t * ldy + r] = rowDot(weights, r, codes.data(), natural.data() + t * weights.cols, x.rows[t]);
    }
  }
}

}  // namespace

const Int8QuantKernels& portableInt8QuantKernels() {
  static constexpr Int8QuantKernels kernels = {"portable", quantizeActivations, matVec, matMul};
  return kernels;
}

#if !defined(NESSO_HAVE_AVX2)
const Int8QuantKernels* avx2Int8QuantKernels() {
  return nullptr;
}
#endif

}  // namespace nesso
