// AVX2 + FMA quantized kernels (8 floats per vector). Compiled with -mavx2 -mfma and called only
// when the CPU reports both.

#include <immintrin.h>

#include <cstring>

#include "quant.h"
#include "quant-unpack.h"

namespace nesso {

namespace {

struct Avx2 {
  using Vec = __m256;
  static constexpr size_t kWidth = 8;

  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec set1(float value) { return _mm256_set1_ps(value); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static float reduce(Vec v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
  }
  static Vec codes(const uint8_t* q) {
    __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q));
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
  }
  template <int Bits>
  static Vec codesOfPacks(const uint64_t* packs) {
    // Codes 0-3 and 4-7 fit in 32 bits each: broadcast each half to four lanes and shift.
    constexpr int half = 4 * Bits;
    const uint64_t halfMask = (uint64_t(1) << half) - 1;
    const int low = int(uint32_t(packs[0] & halfMask));
    const int high = int(uint32_t((packs[0] >> half) & halfMask));
    const __m256i shifts = _mm256_setr_epi32(0, Bits, 2 * Bits, 3 * Bits, 0, Bits, 2 * Bits, 3 * Bits);
    __m256i fields = _mm256_srlv_epi32(_mm256_setr_epi32(low, low, low, low, high, high, high, high), shifts);
    return _mm256_cvtepi32_ps(_mm256_and_si256(fields, _mm256_set1_epi32((1 << Bits) - 1)));
  }
  static Vec nibbles(const uint8_t* packed) {
    // 8 codes of one 32-bit word: broadcast it and shift lane i right by 4 · i.
    uint32_t word;
    std::memcpy(&word, packed, 4);
    const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    __m256i fields = _mm256_srlv_epi32(_mm256_set1_epi32(int(word)), shifts);
    return _mm256_cvtepi32_ps(_mm256_and_si256(fields, _mm256_set1_epi32(0x0f)));
  }
};

#include "quant-simd.h"

constexpr QuantKernels kAvx2QuantKernels = {"avx2", simdQuantMatVec<Avx2>, simdDequantizeRow<Avx2>};

}  // namespace

const QuantKernels* avx2QuantKernels() {
  return &kAvx2QuantKernels;
}

}  // namespace nesso
