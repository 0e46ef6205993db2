// AVX2 integer kernels for 4- and 8-bit weights times int8 activations. Compiled with -mavx2
// -mfma and called only when the CPU reports both. The AVX-512 path uses them as well.
//
// _mm256_maddubs_epi16 multiplies unsigned bytes by signed bytes and adds adjacent pairs into
// saturating int16, and _mm256_madd_epi16 with ones widens those pairs into int32 sums:
// - 4-bit codes (0..15) times codes in [-127, 127] give pairs of at most 2 · 15 · 127 = 3810, and
//   the sum of the even and odd halves at most 7620, so nothing saturates.
// - 8-bit codes (0..255) would overflow, so the kernel uses q - 128 in [-128, 127], moves its sign
//   onto the activation (|q - 128| · ±x, pairs of at most 2 · 128 · 127 = 32512) and adds the
//   missing 128 · Σ x through QuantizedActivations::groupOffsets.

#include <immintrin.h>

#include "quant.h"

namespace nesso {

namespace {

// As in the float decode kernels: the hardware prefetchers alone leave read bandwidth unused.
constexpr size_t kPrefetchDistance = 8192;
// Rows per tile of the matrix-vector kernel; they share each activation load.
constexpr size_t kRowTile = 4;

float reduce(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

__m256i loadBytes(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// 64 4-bit codes (32 packed bytes) times one two-block chunk of activations in the 4-bit kernel
// layout. Lanes 0-3 of the int32 result sum block 0 and lanes 4-7 block 1, because the packed
// bytes of block 1 are the upper 128-bit half and neither instruction crosses halves.
inline __m256i dotNibbles(const uint8_t* packed, __m256i xEven, __m256i xOdd) {
  const __m256i bytes = loadBytes(packed);
  const __m256i mask = _mm256_set1_epi8(0x0f);
  const __m256i low = _mm256_and_si256(bytes, mask);
  const __m256i high = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), mask);
  const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(low, xEven), _mm256_maddubs_epi16(high, xOdd));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// 32 4-bit codes (16 packed bytes) of a lone trailing block; every lane sums that block.
inline __m256i dotNibblesBlock(const uint8_t* packed, __m256i x) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m256i codes = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask), _mm_and_si128(bytes, mask));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, x), _mm256_set1_epi16(1));
}

// Σ (q - 128) · x over 32 8-bit codes, in 8 int32 lanes.
inline __m256i dotCentered(const uint8_t* q, __m256i x) {
  const __m256i centered = _mm256_xor_si256(loadBytes(q), _mm256_set1_epi8(char(0x80)));
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(centered), _mm256_sign_epi8(x, centered));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// The float scales of one 64-element chunk: block 0 in lanes 0-3, block 1 in lanes 4-7.
inline __m256 pairScales(const float* scales) {
  return _mm256_set_m128(_mm_set1_ps(scales[1]), _mm_set1_ps(scales[0]));
}

template <size_t Rows>
void matVec4Tile(const QuantizedMatrix& weights, size_t firstRow, const QuantizedActivations& x, float* y) {
  const size_t groupSize = size_t(weights.groupSize);
  const size_t groups = weights.groupsPerRow;
  const size_t cols = weights.cols;
  const size_t chunks = cols / (2 * kActivationBlock);

  const uint8_t* rows[Rows];
  const float* scales[Rows];
  __m256 total[Rows];
  for (size_t r = 0; r < Rows; r++) {
    rows[r] = weights.packed + (firstRow + r) * weights.packedRowBytes;
    scales[r] = weights.scales + (firstRow + r) * groups;
    total[r] = _mm256_setzero_ps();
  }

  for (size_t c = 0; c < chunks; c++) {
    const size_t first = c * 2 * kActivationBlock;
    // A chunk is 32 packed bytes, so every other chunk starts a new cache line.
    if (c % 2 == 0) {
      for (size_t r = 0; r < Rows; r++) __builtin_prefetch(rows[r] + first / 2 + kPrefetchDistance);
    }
    const __m256i xEven = loadBytes(x.values + first);
    const __m256i xOdd = loadBytes(x.values + first + kActivationBlock);
    const __m256 blockScales = pairScales(x.blockScales + 2 * c);
    for (size_t r = 0; r < Rows; r++) {
      // With 32-element groups the two blocks have their own weight scales.
      const __m256 weightScales = groupSize == kActivationBlock ? pairScales(scales[r] + 2 * c)
                                                                : _mm256_set1_ps(scales[r][first / groupSize]);
      const __m256 dot = _mm256_cvtepi32_ps(dotNibbles(rows[r] + first / 2, xEven, xOdd));
      total[r] = _mm256_fmadd_ps(dot, _mm256_mul_ps(blockScales, weightScales), total[r]);
    }
  }
  if (cols % (2 * kActivationBlock) != 0) {
    const size_t first = chunks * 2 * kActivationBlock;
    const __m256i xBlock = loadBytes(x.values + first);
    const float blockScale = x.blockScales[first / kActivationBlock];
    for (size_t r = 0; r < Rows; r++) {
      const __m256 dot = _mm256_cvtepi32_ps(dotNibblesBlock(rows[r] + first / 2, xBlock));
      total[r] = _mm256_fmadd_ps(dot, _mm256_set1_ps(blockScale * scales[r][first / groupSize]), total[r]);
    }
  }

  for (size_t r = 0; r < Rows; r++) {
    const float* biases = weights.biases + (firstRow + r) * groups;
    float biasTerm = 0.0f;
    for (size_t g = 0; g < groups; g++) biasTerm += biases[g] * x.groupSums[g];
    y[firstRow + r] = reduce(total[r]) + biasTerm;
  }
}

template <size_t Rows>
void matVec8Tile(const QuantizedMatrix& weights, size_t firstRow, const QuantizedActivations& x, float* y) {
  const size_t groupSize = size_t(weights.groupSize);
  const size_t groups = weights.groupsPerRow;
  const size_t blocksPerGroup = groupSize / kActivationBlock;

  const uint8_t* rows[Rows];
  const float* scales[Rows];
  const float* biases[Rows];
  __m256 total[Rows];
  float biasTerm[Rows];
  for (size_t r = 0; r < Rows; r++) {
    rows[r] = weights.packed + (firstRow + r) * weights.packedRowBytes;
    scales[r] = weights.scales + (firstRow + r) * groups;
    biases[r] = weights.biases + (firstRow + r) * groups;
    total[r] = _mm256_setzero_ps();
    biasTerm[r] = 0.0f;
  }

  for (size_t g = 0; g < groups; g++) {
    for (size_t r = 0; r < Rows; r++) {
      const uint8_t* ahead = rows[r] + g * groupSize + kPrefetchDistance;
      for (size_t line = 0; line < groupSize; line += 64) __builtin_prefetch(ahead + line);
    }
    __m256 groupDot[Rows];
    for (size_t r = 0; r < Rows; r++) groupDot[r] = _mm256_setzero_ps();
    for (size_t k = 0; k < blocksPerGroup; k++) {
      const size_t block = g * blocksPerGroup + k;
      const __m256i xBlock = loadBytes(x.values + block * kActivationBlock);
      const __m256 blockScale = _mm256_set1_ps(x.blockScales[block]);
      for (size_t r = 0; r < Rows; r++) {
        const __m256 dot = _mm256_cvtepi32_ps(dotCentered(rows[r] + block * kActivationBlock, xBlock));
        groupDot[r] = _mm256_fmadd_ps(dot, blockScale, groupDot[r]);
      }
    }
    for (size_t r = 0; r < Rows; r++) {
      total[r] = _mm256_fmadd_ps(_mm256_set1_ps(scales[r][g]), groupDot[r], total[r]);
      // The bias term, plus the 128 · Σ x that centering the codes took out.
      biasTerm[r] += biases[r][g] * x.groupSums[g] + scales[r][g] * x.groupOffsets[g];
    }
  }

  for (size_t r = 0; r < Rows; r++) y[firstRow + r] = reduce(total[r]) + biasTerm[r];
}

void matVec(const QuantizedMatrix& weights, size_t rowBegin, size_t rowEnd, const QuantizedActivations& x, float* y) {
  size_t r = rowBegin;
  if (weights.bits == 4) {
    for (; r + kRowTile <= rowEnd; r += kRowTile) matVec4Tile<kRowTile>(weights, r, x, y);
    for (; r < rowEnd; r++) matVec4Tile<1>(weights, r, x, y);
  } else {
    for (; r + kRowTile <= rowEnd; r += kRowTile) matVec8Tile<kRowTile>(weights, r, x, y);
    for (; r < rowEnd; r++) matVec8Tile<1>(weights, r, x, y);
  }
}

void matMul(const QuantizedMatrix& weights, size_t rowBegin, size_t rowEnd, const QuantizedActivations* x,
            size_t tokens, float* y, size_t ldy) {
  for (size_t t = 0; t < tokens; t++) matVec(weights, rowBegin, rowEnd, x[t], y + t * ldy);
}

constexpr Int8QuantKernels kAvx2Int8QuantKernels = {"avx2", matVec, matMul};

}  // namespace

const Int8QuantKernels* avx2Int8QuantKernels() {
  return &kAvx2Int8QuantKernels;
}

}  // namespace nesso
