// The numeric kernels of the forward pass, as a table of function pointers per instruction set.
// kernels-portable.cc is the plain C++ reference; kernels-avx2.cc, kernels-avx512.cc and
// kernels-neon.cc compile the same algorithms (kernels-simd.h) with wider vectors. The table is
// chosen at run time from the CPU and the NESSO_MCP_SIMD environment variable.
#pragma once

#include <cstddef>

#include "tensor.h"

namespace nesso {

// Rows of a weight matrix that matMul converts to float32 at a time; callers give each thread
// kMatMulRowBlock * cols floats of scratch.
constexpr size_t kMatMulRowBlock = 16;

struct Kernels {
  // The SIMD path name simdPath() reports: "portable", "avx2", "avx512" or "neon".
  const char* name;

  // y[r] = W[r, :] · x for r in [rowBegin, rowEnd).
  void (*matVec)(const Matrix& weights, size_t rowBegin, size_t rowEnd, const float* x, float* y);

  // y[t * ldy + r] = W[r, :] · x[t, :] for t in [0, tokens) and r in [rowBegin, rowEnd); x is
  // [tokens, cols]. `scratch` holds kMatMulRowBlock * cols floats.
  void (*matMul)(const Matrix& weights, size_t rowBegin, size_t rowEnd, const float* x, size_t tokens, float* y,
                 size_t ldy, float* scratch);

  float (*dot)(const float* a, const float* b, size_t n);

  // y += a * x
  void (*axpy)(float a, const float* x, float* y, size_t n);

  // out[g, :] = Σ_j weights[g, j] · rows[j, :] for g < groups: weights [groups, n], rows [n, width]
  // in `rowsDtype` (float32 or float16: the KV cache's values), out [groups, width] (attention's
  // p · V).
  void (*weightedSum)(const float* weights, size_t groups, const uint8_t* rows, Dtype rowsDtype, size_t n, size_t width,
                      float* out);

  // Converts n elements of `dtype` (possibly unaligned) to float32.
  void (*toFloat)(const uint8_t* source, Dtype dtype, size_t n, float* destination);

  // out = weight ⊙ (x / sqrt(mean(x²) + eps)); the mean of squares is accumulated in float32.
  void (*rmsNorm)(const float* x, const float* weight, size_t n, float eps, float* out);

  // gate = silu(gate) ⊙ up, with silu(z) = z / (1 + e^-z).
  void (*siluMul)(float* gate, const float* up, size_t n);

  // In-place softmax; entries of -inf get probability 0.
  void (*softmax)(float* values, size_t n);
};

// The element-wise kernels are shared by every table.
void portableRmsNorm(const float* x, const float* weight, size_t n, float eps, float* out);
void portableSiluMul(float* gate, const float* up, size_t n);
void portableSoftmax(float* values, size_t n);

const Kernels& portableKernels();
// Null when the build has no such kernels (NESSO_SIMD=OFF or another architecture).
const Kernels* avx2Kernels();
const Kernels* avx512Kernels();
const Kernels* neonKernels();

// The SIMD algorithms over plain C++ vectors of 16 or 4 floats (AVX-512's and NEON's widths and
// tiles), for tests on CPUs without those instruction sets.
const Kernels& emulatedKernels(int width);

// The best table this CPU supports, or the one NESSO_MCP_SIMD=portable|avx2|avx512|neon forces
// (emulated16 and emulated4 select the emulated tables).
// A forced path the CPU or the build lacks falls back to the best one with a warning in the log.
// Reads the environment on every call, so tests can switch paths between calls.
const Kernels& selectKernels();

}  // namespace nesso
