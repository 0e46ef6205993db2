// AVX2 + FMA quantized kernels (8 floats per vector). Compiled with -mavx2 -mfma and called only
// when the CPU reports both.

#include <immintrin.h>

#include "quant.h"

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
  static void unpack4(const uint8_t* packed, uint8_t* q) {
    const __m128i mask = _mm_set1_epi8(0x0f);
    __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
    __m128i low = _mm_and_si128(bytes, mask);
    __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm_unpacklo_epi8(low, high));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm_unpackhi_epi8(low, high));
  }
};

#include "quant-simd.h"

constexpr QuantKernels kAvx2QuantKernels = {"avx2", simdQuantMatVec<Avx2>, simdDequantizeRow<Avx2>};

}  // namespace

const QuantKernels* avx2QuantKernels() {
  return &kAvx2QuantKernels;
}

}  // namespace nesso
