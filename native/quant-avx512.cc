// AVX-512 quantized kernels (16 floats per vector). Compiled with the AVX-512 F/BW/VL flags and
// called only when the CPU reports them.
// NOTE: the build machine of this code had no AVX-512, so this path is compiled but was not run.

#include <immintrin.h>

#include <cstring>

#include "quant.h"
#include "quant-unpack.h"

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
  template <int Bits>
  static Vec codesOfPacks(const uint64_t* packs) {
    // Each group of 4 codes fits in 32 bits: broadcast each to four lanes and shift.
    constexpr int half = 4 * Bits;
    const uint64_t halfMask = (uint64_t(1) << half) - 1;
    const int a = int(uint32_t(packs[0] & halfMask));
    const int b = int(uint32_t((packs[0] >> half) & halfMask));
    const int c = int(uint32_t(packs[1] & halfMask));
    const int d = int(uint32_t((packs[1] >> half) & halfMask));
    const __m512i shifts = _mm512_setr_epi32(0, Bits, 2 * Bits, 3 * Bits, 0, Bits, 2 * Bits, 3 * Bits, 0, Bits, 2 * Bits,
                                             3 * Bits, 0, Bits, 2 * Bits, 3 * Bits);
    __m512i fields = _mm512_srlv_epi32(_mm512_setr_epi32(a, a, a, a, b, b, b, b, c, c, c, c, d, d, d, d), shifts);
    return _mm512_cvtepi32_ps(_mm512_and_si512(fields, _mm512_set1_epi32((1 << Bits) - 1)));
  }
  static Vec nibbles(const uint8_t* packed) {
    // 16 codes: the first 32-bit word in lanes 0-7, the second in lanes 8-15, each shifted by
    // 4 · lane so that its nibble lands in the low bits.
    uint32_t low, high;
    std::memcpy(&low, packed, 4);
    std::memcpy(&high, packed + 4, 4);
    __m512i words = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(int(low))), _mm256_set1_epi32(int(high)), 1);
    const __m512i shifts = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    __m512i fields = _mm512_srlv_epi32(words, shifts);
    return _mm512_cvtepi32_ps(_mm512_and_si512(fields, _mm512_set1_epi32(0x0f)));
  }
};

#include "quant-simd.h"

constexpr QuantKernels kAvx512QuantKernels = {"avx512", simdQuantMatVec<Avx512>, simdDequantizeRow<Avx512>};

}  // namespace

const QuantKernels* avx512QuantKernels() {
  return &kAvx512QuantKernels;
}

}  // namespace nesso
