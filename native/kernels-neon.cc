// NEON kernels for AArch64 (4 floats per vector). Advanced SIMD is part of the AArch64 base
// architecture, so this file needs no extra compiler flags.
//
// NOTE: this file has not been compiled or run on arm64 yet. The tests run the same algorithms
// (kernels-simd.h) at this width and tile through kernels-emulated.cc, so only the intrinsics in
// the traits below are unchecked.

#if defined(__aarch64__)

#include <arm_neon.h>

#include "half.h"
#include "kernels.h"

namespace nesso {

namespace {

struct Neon {
  using Vec = float32x4_t;
  static constexpr size_t kWidth = 4;
  // 4 rows x 4 tokens = 16 accumulators, plus 4 token vectors and 1 weight vector, of 32
  // registers.
  static constexpr int kTokenTile = 4;

  static Vec zero() { return vdupq_n_f32(0.0f); }
  static Vec set1(float value) { return vdupq_n_f32(value); }
  static Vec load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, Vec v) { vst1q_f32(p, v); }
  static uint16x4_t loadHalves(const uint8_t* p) {
    // vld1_u8 has no alignment requirement; the reinterpret keeps the byte order.
    return vreinterpret_u16_u8(vld1_u8(p));
  }
  static Vec loadBf16(const uint8_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(loadHalves(p), 16)); }
  static Vec loadF16(const uint8_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(loadHalves(p))); }
  static Vec fma(Vec a, Vec b, Vec c) { return vfmaq_f32(c, a, b); }
  static Vec add(Vec a, Vec b) { return vaddq_f32(a, b); }
  static Vec sub(Vec a, Vec b) { return vsubq_f32(a, b); }
  static Vec mul(Vec a, Vec b) { return vmulq_f32(a, b); }
  static Vec div(Vec a, Vec b) { return vdivq_f32(a, b); }
  static Vec min(Vec a, Vec b) { return vminq_f32(a, b); }
  static Vec max(Vec a, Vec b) { return vmaxq_f32(a, b); }
  static Vec round(Vec v) { return vrndnq_f32(v); }
  static Vec exp2Integer(Vec n) {
    int32x4_t exponent = vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127));
    return vreinterpretq_f32_s32(vshlq_n_s32(exponent, 23));
  }
  static Vec keepWhereAtLeast(Vec value, Vec x, float limit) {
    uint32x4_t keep = vcgeq_f32(x, vdupq_n_f32(limit));
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(value), keep));
  }
  static float reduce(Vec v) { return vaddvq_f32(v); }
};

#include "kernels-simd.h"

constexpr Kernels kNeonKernels = makeKernels<Neon>("neon");

}  // namespace

const Kernels* neonKernels() {
  return &kNeonKernels;
}

}  // namespace nesso

#endif
