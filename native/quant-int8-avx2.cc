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

float reduceMax(__m256 v) {
  __m128 max = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  max = _mm_max_ps(max, _mm_movehl_ps(max, max));
  max = _mm_max_ss(max, _mm_movehdup_ps(max));
  return _mm_cvtss_f32(max);
}

int32_t reduceInt(__m256i v) {
  __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0x4e));
  sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0xb1));
  return _mm_cvtsi128_si32(sum);
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

// Sums of the lanes of four vectors: lane i of the result is the sum of v_i.
inline __m128 reduceFour(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
  const __m256 sums = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
  return _mm_add_ps(_mm256_castps256_ps128(sums), _mm256_extractf128_ps(sums, 1));
}

// Tokens per tile of the matrix-matrix kernel (a multiple of 4), and weight rows per tile. Each
// unpacked weight vector serves kTileTokens tokens. The 32 accumulators exceed the 16 AVX2
// registers, yet 4 × 8 ran faster than 2 × 4, 3 × 4 and 4 × 4 on an AMD EPYC (Zen 3). That was
// one thread on 2560 × 960 weights and 128 tokens, on a loaded machine, so it is an estimate.
constexpr size_t kTileTokens = 8;
constexpr size_t kTileRows = 4;
// Tokens whose activations stay in cache while every row of the range passes over them.
constexpr size_t kTokenBlock = 64;

// y[t * ldy + r] of 4-bit weights for the Rows rows from firstRow and the 4 tokens from firstToken (of which only
// the first `valid` exist; the others repeat the last valid token and are not stored).
template <size_t Rows>
void matMul4Tile(const QuantizedMatrix& weights, size_t firstRow, const ActivationBatch& x, size_t firstToken,
                size_t valid, float* y, size_t ldy) {
  const size_t groupSize = size_t(weights.groupSize);
  const size_t groups = weights.groupsPerRow;
  const size_t cols = weights.cols;

  const uint8_t* rows[Rows];
  const float* scales[Rows];
  for (size_t r = 0; r < Rows; r++) {
    rows[r] = weights.packed + (firstRow + r) * weights.packedRowBytes;
    scales[r] = weights.scales + (firstRow + r) * groups;
  }
  const QuantizedActivations* tokens[kTileTokens];
  for (size_t t = 0; t < kTileTokens; t++) tokens[t] = &x.rows[firstToken + (t < valid ? t : valid - 1)];

  __m256 total[Rows][kTileTokens];
  for (size_t r = 0; r < Rows; r++) {
    for (size_t t = 0; t < kTileTokens; t++) total[r][t] = _mm256_setzero_ps();
  }

  const __m256i ones = _mm256_set1_epi16(1);
  {
    const __m256i mask = _mm256_set1_epi8(0x0f);
    const size_t chunks = cols / (2 * kActivationBlock);
    for (size_t c = 0; c < chunks; c++) {
      const size_t first = c * 2 * kActivationBlock;
      __m256i low[Rows], high[Rows];
      __m256 weightScales[Rows];
      for (size_t r = 0; r < Rows; r++) {
        const __m256i bytes = loadBytes(rows[r] + first / 2);
        low[r] = _mm256_and_si256(bytes, mask);
        high[r] = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), mask);
        weightScales[r] = groupSize == kActivationBlock ? pairScales(scales[r] + 2 * c)
                                                        : _mm256_set1_ps(scales[r][first / groupSize]);
      }
      for (size_t t = 0; t < kTileTokens; t++) {
        const __m256i xEven = loadBytes(tokens[t]->values + first);
        const __m256i xOdd = loadBytes(tokens[t]->values + first + kActivationBlock);
        const __m256 blockScales = _mm256_loadu_ps(tokens[t]->chunkScales + 8 * c);
        for (size_t r = 0; r < Rows; r++) {
          const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(low[r], xEven), _mm256_maddubs_epi16(high[r], xOdd));
          const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
          total[r][t] = _mm256_fmadd_ps(dot, _mm256_mul_ps(blockScales, weightScales[r]), total[r][t]);
        }
      }
    }
    if (cols % (2 * kActivationBlock) != 0) {
      const size_t first = chunks * 2 * kActivationBlock;
      for (size_t t = 0; t < kTileTokens; t++) {
        const __m256i xBlock = loadBytes(tokens[t]->values + first);
        const float blockScale = tokens[t]->blockScales[first / kActivationBlock];
        for (size_t r = 0; r < Rows; r++) {
          const __m256 dot = _mm256_cvtepi32_ps(dotNibblesBlock(rows[r] + first / 2, xBlock));
          total[r][t] = _mm256_fmadd_ps(dot, _mm256_set1_ps(blockScale * scales[r][first / groupSize]), total[r][t]);
        }
      }
    }
  }

  for (size_t r = 0; r < Rows; r++) {
    const float* biases = weights.biases + (firstRow + r) * groups;
    alignas(16) float out[kTileTokens];
    for (size_t t = 0; t < valid; t += 4) {
      // The bias terms of 4 tokens at once: Σ_g bias · Σ x.
      // The transposed sums are padded to a multiple of 4 tokens, so these loads stay inside.
      __m128 biasTerm = _mm_setzero_ps();
      for (size_t g = 0; g < groups; g++) {
        const __m128 sums = _mm_loadu_ps(x.groupSumsByGroup + g * x.tokenStride + firstToken + t);
        biasTerm = _mm_fmadd_ps(_mm_set1_ps(biases[g]), sums, biasTerm);
      }
      const __m128 sums = reduceFour(total[r][t], total[r][t + 1], total[r][t + 2], total[r][t + 3]);
      _mm_store_ps(out + t, _mm_add_ps(sums, biasTerm));
    }
    for (size_t t = 0; t < valid; t++) y[(firstToken + t) * ldy + firstRow + r] = out[t];
  }
}

// The 4-bit matrix-matrix product (hasInt8MatMul).
void matMul(const QuantizedMatrix& weights, size_t rowBegin, size_t rowEnd, const ActivationBatch& x, float* y,
            size_t ldy) {
  for (size_t blockBegin = 0; blockBegin < x.tokens; blockBegin += kTokenBlock) {
    const size_t blockEnd = blockBegin + kTokenBlock < x.tokens ? blockBegin + kTokenBlock : x.tokens;
    size_t r = rowBegin;
    for (; r + kTileRows <= rowEnd; r += kTileRows) {
      for (size_t t = blockBegin; t < blockEnd; t += kTileTokens) {
        const size_t valid = blockEnd - t < kTileTokens ? blockEnd - t : kTileTokens;
        matMul4Tile<kTileRows>(weights, r, x, t, valid, y, ldy);
      }
    }
    for (; r < rowEnd; r++) {
      for (size_t t = blockBegin; t < blockEnd; t += kTileTokens) {
        const size_t valid = blockEnd - t < kTileTokens ? blockEnd - t : kTileTokens;
        matMul4Tile<1>(weights, r, x, t, valid, y, ldy);
      }
    }
  }
}

// Stores the 32 codes of block `b` in the kernel layout: natural order for 8 bits; for 4 bits the
// 16 even and the 16 odd elements each go to their half of the block's chunk.
inline void storeBlockCodes(__m256i codes, int bits, size_t cols, size_t b, int8_t* values) {
  if (bits != 4) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(values + b * kActivationBlock), codes);
    return;
  }
  // Within each 128-bit half: its 8 even bytes, then its 8 odd bytes. Then the 64-bit quarters
  // in the order (even 0-14, even 16-30, odd 1-15, odd 17-31).
  const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 14,
                                         1, 3, 5, 7, 9, 11, 13, 15);
  const __m256i ordered = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(codes, split), 0xd8);
  const size_t chunk = b / 2 * 2 * kActivationBlock;
  const bool lone = chunk + 2 * kActivationBlock > cols;
  const size_t even = lone ? chunk : chunk + (b % 2) * (kActivationBlock / 2);
  const size_t odd = lone ? chunk + kActivationBlock / 2 : even + kActivationBlock;
  _mm_storeu_si128(reinterpret_cast<__m128i*>(values + even), _mm256_castsi256_si128(ordered));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(values + odd), _mm256_extracti128_si256(ordered, 1));
}

// The quantizer of quantizeActivations() with the same operations per block (max |x|, 127 / max,
// x · inverse rounded half to even), so its codes and scales are identical. Only the float sums
// Σ x run in a different order. Rows with a block the fast path does not cover (an infinity, a
// NaN, or a max |x| so small that 127 / max overflows) go to quantizeActivations().
void quantize(const float* x, size_t cols, int bits, size_t groupSize, const QuantizedActivations& out) {
  const size_t blocks = cols / kActivationBlock;
  const size_t blocksPerGroup = groupSize / kActivationBlock;
  const __m256 signMask = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (size_t g = 0; g < cols / groupSize; g++) {
    __m256 sum = _mm256_setzero_ps();
    float offset = 0.0f;
    for (size_t b = g * blocksPerGroup; b < (g + 1) * blocksPerGroup; b++) {
      const float* block = x + b * kActivationBlock;
      __m256 v[4];
      __m256 maxAbs = _mm256_setzero_ps();
      for (size_t i = 0; i < 4; i++) {
        v[i] = _mm256_loadu_ps(block + 8 * i);
        sum = _mm256_add_ps(sum, v[i]);
        maxAbs = _mm256_max_ps(maxAbs, _mm256_andnot_ps(signMask, v[i]));
      }
      // Unordered compare: false for NaN lanes, and an infinity fails the finite-inverse check.
      const float blockMax = reduceMax(maxAbs);
      const bool hasNaN = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_add_ps(v[0], _mm256_add_ps(v[1], _mm256_add_ps(v[2], v[3]))),
                                                           _mm256_setzero_ps(), _CMP_UNORD_Q)) != 0;
      const float inverse = blockMax > 0.0f ? 127.0f / blockMax : 0.0f;
      if (hasNaN || !(blockMax <= 3.0e38f) || (blockMax > 0.0f && !(inverse <= 3.0e38f))) {
        quantizeActivations(x, cols, bits, groupSize, out);
        return;
      }
      const __m256 scaleBy = _mm256_set1_ps(inverse);
      __m256i codes32[4];
      for (size_t i = 0; i < 4; i++) codes32[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], scaleBy));
      const __m256i words = _mm256_packs_epi32(codes32[0], codes32[1]);
      const __m256i words2 = _mm256_packs_epi32(codes32[2], codes32[3]);
      const __m256i codes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(words, words2), order);
      storeBlockCodes(codes, bits, cols, b, out.values);

      const __m256i sums = _mm256_add_epi32(_mm256_add_epi32(codes32[0], codes32[1]), _mm256_add_epi32(codes32[2], codes32[3]));
      const float scale = blockMax > 0.0f ? blockMax / 127.0f : 0.0f;
      out.blockScales[b] = scale;
      offset += scale * float(reduceInt(sums));
    }
    out.groupSums[g] = reduce(sum);
    out.groupOffsets[g] = 128.0f * offset;
  }

  if (bits == 4 && out.chunkScales != nullptr) {
    for (size_t c = 0; c < (blocks + 1) / 2; c++) {
      const float first = out.blockScales[2 * c];
      const float second = 2 * c + 1 < blocks ? out.blockScales[2 * c + 1] : first;
      _mm256_storeu_ps(out.chunkScales + 8 * c, _mm256_set_m128(_mm_set1_ps(second), _mm_set1_ps(first)));
    }
  }
}

constexpr Int8QuantKernels kAvx2Int8QuantKernels = {"avx2", quantize, matVec, matMul};

}  // namespace

const Int8QuantKernels* avx2Int8QuantKernels() {
  return &kAvx2Int8QuantKernels;
}

}  // namespace nesso
