// AVX-512 quantized kernels (16 floats per vector). Compiled with the AVX-512 F/BW/VL flags and
// called only when the CPU reports them.
// NOTE: the build machine of this code had no AVX-512, so this path is compiled but was not run.

#include <immintrin.h>

#include "quant.h"

namespace nesso {

namespace {

struct Avx512 {
  using Vec = __m512;
  static constexpr size_t kWidth = 16;

  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec set1(float value) { return _mm512_set1_ps(value); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static float reduce(Vec v) { return _mm512_reduce_add_ps(v); }
  static Vec codes(const uint8_t* q) {
    __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
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

constexpr QuantKernels kAvx512QuantKernels = {"avx512", simdQuantMatVec<Avx512>, simdDequantizeRow<Avx512>};

}  // namespace

const QuantKernels* avx512QuantKernels() {
  return &kAvx512QuantKernels;
}

}  // namespace nesso
