// The SIMD algorithms of kernels-simd.h compiled over plain C++ "vectors" of 16 and 4 floats, so
// that tests on any CPU run them with the widths and tiles of the AVX-512 (16 floats, 6 tokens)
// and NEON (4 floats, 4 tokens) files. NESSO_MCP_SIMD=emulated16 or emulated4 selects them; they
// are never chosen automatically.

#include <cmath>
#include <cstring>

#include "half.h"
#include "kernels.h"

namespace nesso {

namespace {

template <int Width, int TokenTile>
struct Emulated {
  struct Vec {
    float lane[Width];
  };
  static constexpr size_t kWidth = Width;
  static constexpr int kTokenTile = TokenTile;

  template <typename Function>
  static Vec map(Function function) {
    Vec out;
    for (int i = 0; i < Width; i++) out.lane[i] = function(i);
    return out;
  }

  static Vec zero() { return set1(0.0f); }
  static Vec set1(float value) {
    return map([&](int) { return value; });
  }
  static Vec load(const float* p) {
    Vec out;
    std::memcpy(out.lane, p, sizeof out.lane);
    return out;
  }
  static void store(float* p, Vec v) { std::memcpy(p, v.lane, sizeof v.lane); }
  static Vec loadBf16(const uint8_t* p) {
    return map([&](int i) { return loadElement(p, int(Dtype::BF16), size_t(i)); });
  }
  static Vec loadF16(const uint8_t* p) {
    return map([&](int i) { return loadElement(p, int(Dtype::F16), size_t(i)); });
  }
  static Vec fma(Vec a, Vec b, Vec c) {
    return map([&](int i) { return std::fma(a.lane[i], b.lane[i], c.lane[i]); });
  }
  static Vec add(Vec a, Vec b) {
    return map([&](int i) { return a.lane[i] + b.lane[i]; });
  }
  static Vec sub(Vec a, Vec b) {
    return map([&](int i) { return a.lane[i] - b.lane[i]; });
  }
  static Vec mul(Vec a, Vec b) {
    return map([&](int i) { return a.lane[i] * b.lane[i]; });
  }
  static Vec div(Vec a, Vec b) {
    return map([&](int i) { return a.lane[i] / b.lane[i]; });
  }
  // Like x86 min/max: the second operand when either is NaN.
  static Vec min(Vec a, Vec b) {
    return map([&](int i) { return a.lane[i] < b.lane[i] ? a.lane[i] : b.lane[i]; });
  }
  static Vec max(Vec a, Vec b) {
    return map([&](int i) { return a.lane[i] > b.lane[i] ? a.lane[i] : b.lane[i]; });
  }
  static Vec round(Vec v) {
    return map([&](int i) { return std::nearbyint(v.lane[i]); });
  }
  static Vec exp2Integer(Vec n) {
    return map([&](int i) {
      uint32_t bits = uint32_t(int32_t(n.lane[i]) + 127) << 23;
      float value;
      std::memcpy(&value, &bits, sizeof value);
      return value;
    });
  }
  static Vec keepWhereAtLeast(Vec value, Vec x, float limit) {
    return map([&](int i) { return x.lane[i] >= limit ? value.lane[i] : 0.0f; });
  }
  static float reduce(Vec v) {
    float sum = 0.0f;
    for (int i = 0; i < Width; i++) sum += v.lane[i];
    return sum;
  }
};

#include "kernels-simd.h"

constexpr Kernels kEmulated16Kernels = makeKernels<Emulated<16, 6>>("emulated16");
constexpr Kernels kEmulated4Kernels = makeKernels<Emulated<4, 4>>("emulated4");

}  // namespace

const Kernels& emulatedKernels(int width) {
  return width == 16 ? kEmulated16Kernels : kEmulated4Kernels;
}

}  // namespace nesso
