// AVX-512 (F, BW, VL) + FMA + F16C kernels (16 floats per vector). Compiled with the AVX-512 flags
// and called only when the CPU reports AVX-512 F/BW/VL, so nothing here may run at load time.
//
// NOTE: this file compiles but has not run on an AVX-512 CPU yet. The tests run the same
// algorithms (kernels-simd.h) at this width and tile through kernels-emulated.cc, so only the
// intrinsics in the traits below are unchecked.
// TODO: a BF16 path with _mm512_dpbf16_ps (bf16 activations) for prefill.

#include <immintrin.h>

#include "half.h"
#include "kernels.h"

namespace nesso {

namespace {

struct Avx512 {
  using Vec = __m512;
  static constexpr size_t kWidth = 16;
  // 4 rows x 6 tokens = 24 accumulators, plus 6 token vectors and 1 weight vector, of 32 zmm
  // registers.
  static constexpr int kTokenTile = 6;

  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec set1(float value) { return _mm512_set1_ps(value); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static Vec loadBf16(const uint8_t* p) {
    __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
  }
  static Vec loadF16(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec div(Vec a, Vec b) { return _mm512_div_ps(a, b); }
  static Vec min(Vec a, Vec b) { return _mm512_min_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
  static Vec round(Vec v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static Vec exp2Integer(Vec n) {
    __m512i exponent = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(exponent, 23));
  }
  static Vec keepWhereAtLeast(Vec value, Vec x, float limit) {
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(limit), _CMP_GE_OQ);
    return _mm512_maskz_mov_ps(keep, value);
  }
  static float reduce(Vec v) { return _mm512_reduce_add_ps(v); }
};

#include "kernels-simd.h"

constexpr Kernels kAvx512Kernels = makeKernels<Avx512>("avx512");

}  // namespace

const Kernels* avx512Kernels() {
  return &kAvx512Kernels;
}

}  // namespace nesso
