// MLX affine-quantized weights: the packed matrix view, unpacking, dequantization and the
// quantized matrix-vector (decode) and matrix-matrix (prefill) products.
//
// Format (mlx/backend/cpu/quantized.cpp, mlx 0.29): W [rows, cols] is stored as
//   packed  U32 [rows, cols · bits / 32]. Each row is a little-endian bit stream. Element j is in
//           bits [j · bits, (j + 1) · bits), least significant bit first, so 3-, 5- and 6-bit
//           values straddle byte and word boundaries.
//   scales, biases [rows, cols / groupSize] in the checkpoint's float dtype.
// and element j of row r is w = scales[r, j / G] · q + biases[r, j / G]. The scale may be negative.
//
// Like tensor.h, this header declares only plain structs and out-of-line functions, because the
// SIMD files that include it are compiled with extra target flags.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels.h"
#include "tensor.h"

namespace nesso {

// A quantized [rows, cols] matrix. `packed` points into the mmapped file and may be unaligned;
// the group parameters are converted to float32 at load time.
struct QuantizedMatrix {
  const uint8_t* packed = nullptr;  // [rows, packedRowBytes]
  const float* scales = nullptr;    // [rows, groupsPerRow]
  const float* biases = nullptr;    // [rows, groupsPerRow]
  int bits = 0;                     // 2, 3, 4, 5, 6 or 8
  int groupSize = 0;                // 32, 64 or 128
  size_t rows = 0;
  size_t cols = 0;
  size_t packedRowBytes = 0;  // cols * bits / 8
  size_t groupsPerRow = 0;    // cols / groupSize
};

// The weight of a linear layer or embedding: float (a Matrix in the checkpoint dtype) or quantized.
struct LinearWeights {
  Matrix dense;
  QuantizedMatrix quantized;
  bool isQuantized = false;

  size_t rows() const { return isQuantized ? quantized.rows : dense.rows; }
  size_t cols() const { return isQuantized ? quantized.cols : dense.cols; }
};

bool isAffineBits(int bits);
bool isAffineGroupSize(int groupSize);

// groupSums[g] = Σ x[g · groupSize + i] over i < groupSize, for `groups` groups.
void sumGroups(const float* x, size_t groupSize, size_t groups, float* groupSums);

// Unpacks n codes of a packed row starting at element `first` (a multiple of 8) into q[0, n).
void unpackCodes(const uint8_t* row, int bits, size_t first, size_t n, uint8_t* q);

// Elements per int8 activation block: each block of 32 consecutive elements of x has its own
// float scale, as in the Q8_0 format of llama.cpp. Every group size is a multiple of it.
constexpr size_t kActivationBlock = 32;

// One activation row x [cols] quantized for the integer kernels. Block b has the scale
// blockScales[b] = max |x| / 127 over the block and codes round(x / blockScales[b]) in
// [-127, 127], so x ≈ blockScales[b] · code.
//
// `values` is in the kernel layout of the weight's bit width, given by activationPosition(). For
// 8 bits it is the natural order. For 4 bits every 64 elements (two blocks) are stored as the 16
// even elements of block 0, the 16 even of block 1, the 16 odd of block 0, the 16 odd of block 1.
// That matches the packing, where byte t contains element 2t in its low nibble and 2t + 1 in its
// high nibble, so the kernels split nibbles without shuffling them back into order. A trailing
// lone block (cols / 32 odd) is stored as its 16 even then its 16 odd elements.
struct QuantizedActivations {
  int8_t* values = nullptr;       // [cols] in the kernel layout
  float* blockScales = nullptr;   // [cols / kActivationBlock]
  float* groupSums = nullptr;     // [cols / groupSize] Σ x over each group, from the float x
  float* groupOffsets = nullptr;  // [cols / groupSize] 128 · Σ_b blockScales[b] · Σ codes of block b
  // For 4 bits: [ceil(cols / 64)][8], each 64-element chunk's two block scales, the first in
  // lanes 0-3 and the second in lanes 4-7 (a trailing lone block fills all 8 lanes).
  float* chunkScales = nullptr;
};

// The activations of several tokens for the matrix-matrix kernels.
struct ActivationBatch {
  const QuantizedActivations* rows = nullptr;  // [tokens]
  size_t tokens = 0;
  // groupSums and groupOffsets transposed to [groups][tokenStride], so that consecutive tokens
  // of a group are adjacent. tokenStride is `tokens` rounded up to a multiple of 4, and the
  // padding is zero.
  const float* groupSumsByGroup = nullptr;
  const float* groupOffsetsByGroup = nullptr;
  size_t tokenStride = 0;
};

// The position of element `index` of an activation row in the kernel layout for `bits`.
size_t activationPosition(int bits, size_t cols, size_t index);

// Whether the integer kernels handle this bit width in the matrix-vector product (4 and 8
// bits) and in the matrix-matrix product (4 bits). Other cases use float activations.
bool hasInt8Path(int bits);
bool hasInt8MatMul(int bits);

// Quantizes x [cols] into `out` in the kernel layout for `bits` (cols a multiple of groupSize).
void quantizeActivations(const float* x, size_t cols, int bits, size_t groupSize, const QuantizedActivations& out);

// Products of quantized weights with int8 activations, for bit widths where hasInt8Path().
struct Int8QuantKernels {
  const char* name;  // the SIMD path: "portable" or "avx2"

  // quantizeActivations() with the same codes and scales; only the float sums may differ in order.
  void (*quantize)(const float* x, size_t cols, int bits, size_t groupSize, const QuantizedActivations& out);

  // y[r] = Σ_g scale[r, g] · Σ_{b in g} blockScales[b] · (q[r, b, :] · codes[b, :]) + bias[r, g] · groupSums[g]
  // for r in [rowBegin, rowEnd). The integer dot products are exact, so paths differ only in the
  // order of the float sums.
  void (*matVec)(const QuantizedMatrix& weights, size_t rowBegin, size_t rowEnd, const QuantizedActivations& x,
                 float* y);

  // y[t * ldy + r] for every token t, with x.rows[t] the activations of token t, for bit widths
  // where hasInt8MatMul().
  void (*matMul)(const QuantizedMatrix& weights, size_t rowBegin, size_t rowEnd, const ActivationBatch& x, float* y,
                 size_t ldy);
};

const Int8QuantKernels& portableInt8QuantKernels();
// Null when the build has no AVX2 path. The AVX-512 path uses these too.
const Int8QuantKernels* avx2Int8QuantKernels();

struct QuantKernels {
  const char* name;  // the SIMD path: "portable", "avx2" or "avx512"

  // y[r] = dequant(W)[r, :] · x for r in [rowBegin, rowEnd), accumulated per group in float32 as
  // scale · Σ q_i x_i + bias · Σ x_i. groupSums [groupsPerRow] contains Σ x_i of each group.
  void (*matVec)(const QuantizedMatrix& weights, size_t rowBegin, size_t rowEnd, const float* x,
                 const float* groupSums, float* y);

  // out[0, cols) = dequant(W)[row, :] in float32.
  void (*dequantizeRow)(const QuantizedMatrix& weights, size_t row, float* out);

  // The integer kernels used for bit widths where hasInt8Path(), or null to multiply every bit
  // width with float32 activations.
  const Int8QuantKernels* int8 = nullptr;
};

const QuantKernels& portableQuantKernels();
// Null when the build has no such path.
const QuantKernels* avx2QuantKernels();
const QuantKernels* avx512QuantKernels();

// The quantized kernels that go with a float kernel table (same SIMD path, or portable when the
// path has no quantized variant, such as NEON for now). The environment variable
// NESSO_MCP_QUANT_ACTIVATIONS, read on each call (so once per model load), chooses how 4- and
// 8-bit weights are multiplied. "int8" (the default) quantizes the activations to int8 blocks and
// uses the integer kernels. "float" keeps float32 activations for every bit width.
const QuantKernels& quantKernelsFor(const Kernels& kernels);

// y[r] = W[r, :] · x over [rowBegin, rowEnd) for a float or quantized weight. `prepared` is x
// already quantized for this weight (SharedActivations in activations.h) or null.
void linearMatVec(const Kernels& kernels, const QuantKernels& quantKernels, const LinearWeights& weights,
                  size_t rowBegin, size_t rowEnd, const float* x, float* y, const ActivationBatch* prepared = nullptr);

// y[t * ldy + r] = W[r, :] · x[t, :] for every token t. A quantized weight on the integer path
// multiplies int8 activations: `prepared`, or x quantized here when it is null. On the float path
// it is dequantized kMatMulRowBlock rows at a time into a per-thread buffer and multiplied with
// the float kernel, so each row is unpacked once per call whatever the token count. `scratch` is
// the float kernel's kMatMulRowBlock * cols floats.
void linearMatMul(const Kernels& kernels, const QuantKernels& quantKernels, const LinearWeights& weights,
                  size_t rowBegin, size_t rowEnd, const float* x, size_t tokens, float* y, size_t ldy, float* scratch,
                  const ActivationBatch* prepared = nullptr);

// out[0, cols) = row `row` of the weight in float32 (the embedding gather).
void linearRow(const Kernels& kernels, const QuantKernels& quantKernels, const LinearWeights& weights, size_t row,
               float* out);

}  // namespace nesso
