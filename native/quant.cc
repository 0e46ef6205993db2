#include "quant.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "activations.h"
#include "errors.h"
#include "log.h"

namespace nesso {

bool isAffineBits(int bits) {
  return bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8;
}

bool isAffineGroupSize(int groupSize) {
  return groupSize == 32 || groupSize == 64 || groupSize == 128;
}

void unpackCodes(const uint8_t* row, int bits, size_t first, size_t n, uint8_t* q) {
  const unsigned mask = (1u << bits) - 1u;
  for (size_t j = 0; j < n; j++) {
    // Two bytes always suffice: a code has at most 8 bits and starts at bit 0..7 of its byte.
    const size_t bit = (first + j) * size_t(bits);
    const size_t byte = bit >> 3;
    const unsigned shift = unsigned(bit & 7);
    unsigned window = row[byte];
    if (shift + unsigned(bits) > 8) window |= unsigned(row[byte + 1]) << 8;
    q[j] = uint8_t((window >> shift) & mask);
  }
}

void sumGroups(const float* x, size_t groupSize, size_t groups, float* groupSums) {
  for (size_t g = 0; g < groups; g++) {
    float sum = 0.0f;
    for (size_t i = 0; i < groupSize; i++) sum += x[g * groupSize + i];
    groupSums[g] = sum;
  }
}

#if !defined(NESSO_HAVE_AVX2)
const QuantKernels* avx2QuantKernels() {
  return nullptr;
}
#endif

#if !defined(NESSO_HAVE_AVX512)
const QuantKernels* avx512QuantKernels() {
  return nullptr;
}
#endif

namespace {

// `base` with the integer kernels attached.
QuantKernels withInt8(const QuantKernels& base, const Int8QuantKernels& int8) {
  QuantKernels kernels = base;
  kernels.int8 = &int8;
  return kernels;
}

// Whether NESSO_MCP_QUANT_ACTIVATIONS requests float32 activations. An unknown value is logged
// once and treated as the default, int8, like an unknown NESSO_MCP_SIMD.
bool floatActivationsRequested() {
  const char* variable = std::getenv("NESSO_MCP_QUANT_ACTIVATIONS");
  const std::string value = variable == nullptr ? "" : variable;
  if (value.empty() || value == "int8") return false;
  if (value == "float") return true;
  static std::mutex mutex;
  static std::string lastWarned;
  std::lock_guard<std::mutex> lock(mutex);
  if (value != lastWarned) {
    lastWarned = value;
    logMessage(LogLevel::Warn, concat("NESSO_MCP_QUANT_ACTIVATIONS=", value, " is not one of int8, float; using int8"));
  }
  return false;
}

}  // namespace

const ActivationBatch& quantizeRows(const Int8QuantKernels& kernels, const QuantizedMatrix& weights, const float* x,
                                    size_t tokens, ActivationBuffers& buffers) {
  const size_t cols = weights.cols;
  const size_t blocks = cols / kActivationBlock;
  const size_t chunks = (blocks + 1) / 2;
  const size_t groups = weights.groupsPerRow;
  buffers.values.resize(tokens * cols);
  buffers.blockScales.resize(tokens * blocks);
  buffers.groupSums.resize(tokens * groups);
  buffers.groupOffsets.resize(tokens * groups);
  buffers.chunkScales.resize(tokens * chunks * 8);
  buffers.rows.resize(tokens);
  for (size_t t = 0; t < tokens; t++) {
    QuantizedActivations& row = buffers.rows[t];
    row.values = buffers.values.data() + t * cols;
    row.blockScales = buffers.blockScales.data() + t * blocks;
    row.groupSums = buffers.groupSums.data() + t * groups;
    row.groupOffsets = buffers.groupOffsets.data() + t * groups;
    row.chunkScales = buffers.chunkScales.data() + t * chunks * 8;
    kernels.quantize(x + t * cols, cols, weights.bits, size_t(weights.groupSize), row);
  }

  ActivationBatch& batch = buffers.batch;
  batch.rows = buffers.rows.data();
  batch.tokens = tokens;
  batch.tokenStride = (tokens + 3) / 4 * 4;
  buffers.groupSumsByGroup.assign(groups * batch.tokenStride, 0.0f);
  buffers.groupOffsetsByGroup.assign(groups * batch.tokenStride, 0.0f);
  for (size_t t = 0; t < tokens; t++) {
    for (size_t g = 0; g < groups; g++) {
      buffers.groupSumsByGroup[g * batch.tokenStride + t] = buffers.rows[t].groupSums[g];
      buffers.groupOffsetsByGroup[g * batch.tokenStride + t] = buffers.rows[t].groupOffsets[g];
    }
  }
  batch.groupSumsByGroup = buffers.groupSumsByGroup.data();
  batch.groupOffsetsByGroup = buffers.groupOffsetsByGroup.data();
  return batch;
}

namespace {

// Whether the matrix-vector product (matrixProduct false) or the matrix-matrix product of
// `weights` takes the integer kernels.
bool takesInt8Path(const QuantKernels& quantKernels, const LinearWeights& weights, bool matrixProduct) {
  if (!weights.isQuantized || quantKernels.int8 == nullptr) return false;
  return matrixProduct ? hasInt8MatMul(weights.quantized.bits) : hasInt8Path(weights.quantized.bits);
}

// The calling thread's buffers for products that were not given prepared activations.
const ActivationBatch& quantizeRowsLocally(const Int8QuantKernels& kernels, const QuantizedMatrix& weights,
                                           const float* x, size_t tokens) {
  thread_local ActivationBuffers buffers;
  return quantizeRows(kernels, weights, x, tokens, buffers);
}

}  // namespace

const QuantKernels& quantKernelsFor(const Kernels& kernels) {
  const QuantKernels* chosen = nullptr;
  if (std::strcmp(kernels.name, "avx512") == 0) chosen = avx512QuantKernels();
  if (std::strcmp(kernels.name, "avx2") == 0) chosen = avx2QuantKernels();
  // TODO: a NEON variant; arm64 runs the portable quantized kernels for now.
  const QuantKernels& floatKernels = chosen != nullptr ? *chosen : portableQuantKernels();
  if (floatActivationsRequested()) return floatKernels;

  // AVX-512 CPUs also run the AVX2 integer kernels.
  if (chosen != nullptr && avx2Int8QuantKernels() != nullptr) {
    static const QuantKernels avx2 = withInt8(*avx2QuantKernels(), *avx2Int8QuantKernels());
    if (std::strcmp(chosen->name, "avx2") == 0) return avx2;
    static const QuantKernels avx512 = withInt8(*avx512QuantKernels(), *avx2Int8QuantKernels());
    return avx512;
  }
  static const QuantKernels portable = withInt8(portableQuantKernels(), portableInt8QuantKernels());
  return portable;
}

const ActivationBatch* SharedActivations::prepare(const QuantKernels& quantKernels, const LinearWeights& weights,
                                                  const float* x, size_t tokens) {
  prepared_ = nullptr;
  // forward() multiplies one token with the matrix-vector product and more with the matrix one.
  if (!takesInt8Path(quantKernels, weights, tokens > 1)) return nullptr;
  const QuantizedMatrix& quantized = weights.quantized;
  prepared_ = &quantizeRows(*quantKernels.int8, quantized, x, tokens, buffers_);
  bits_ = quantized.bits;
  groupSize_ = quantized.groupSize;
  cols_ = quantized.cols;
  return prepared_;
}

const ActivationBatch* SharedActivations::batchFor(const LinearWeights& weights) const {
  if (prepared_ == nullptr || !weights.isQuantized) return nullptr;
  const QuantizedMatrix& quantized = weights.quantized;
  if (quantized.bits != bits_ || quantized.groupSize != groupSize_ || quantized.cols != cols_) return nullptr;
  return prepared_;
}

void linearMatVec(const Kernels& kernels, const QuantKernels& quantKernels, const LinearWeights& weights,
                  size_t rowBegin, size_t rowEnd, const float* x, float* y, const ActivationBatch* prepared) {
  if (takesInt8Path(quantKernels, weights, false)) {
    const ActivationBatch& batch =
        prepared != nullptr ? *prepared : quantizeRowsLocally(*quantKernels.int8, weights.quantized, x, 1);
    quantKernels.int8->matVec(weights.quantized, rowBegin, rowEnd, *batch.rows, y);
  } else if (weights.isQuantized) {
    // Σ x per group costs `cols` additions per call, small next to the rows · cols products.
    const QuantizedMatrix& quantized = weights.quantized;
    thread_local std::vector<float> groupSums;
    groupSums.resize(quantized.groupsPerRow);
    sumGroups(x, size_t(quantized.groupSize), quantized.groupsPerRow, groupSums.data());
    quantKernels.matVec(quantized, rowBegin, rowEnd, x, groupSums.data(), y);
  } else {
    kernels.matVec(weights.dense, rowBegin, rowEnd, x, y);
  }
}

void linearMatMul(const Kernels& kernels, const QuantKernels& quantKernels, const LinearWeights& weights,
                  size_t rowBegin, size_t rowEnd, const float* x, size_t tokens, float* y, size_t ldy, float* scratch,
                  const ActivationBatch* prepared) {
  if (!weights.isQuantized) {
    kernels.matMul(weights.dense, rowBegin, rowEnd, x, tokens, y, ldy, scratch);
    return;
  }
  const QuantizedMatrix& quantized = weights.quantized;
  if (takesInt8Path(quantKernels, weights, true)) {
    const ActivationBatch& batch =
        prepared != nullptr ? *prepared : quantizeRowsLocally(*quantKernels.int8, quantized, x, tokens);
    quantKernels.int8->matMul(quantized, rowBegin, rowEnd, batch, y, ldy);
    return;
  }
  const size_t cols = quantized.cols;
  // The dequantized block [kMatMulRowBlock, cols], float32 and aligned, so the float kernel reads
  // it in place without converting it again.
  thread_local std::vector<float> block;
  if (block.size() < kMatMulRowBlock * cols) block.resize(kMatMulRowBlock * cols);

  for (size_t blockBegin = rowBegin; blockBegin < rowEnd; blockBegin += kMatMulRowBlock) {
    const size_t rows = rowEnd - blockBegin < kMatMulRowBlock ? rowEnd - blockBegin : kMatMulRowBlock;
    for (size_t r = 0; r < rows; r++) quantKernels.dequantizeRow(quantized, blockBegin + r, block.data() + r * cols);
    kernels.matMul(makeMatrix(block.data(), Dtype::F32, rows, cols), 0, rows, x, tokens, y + blockBegin, ldy, scratch);
  }
}

void linearRow(const Kernels& kernels, const QuantKernels& quantKernels, const LinearWeights& weights, size_t row,
               float* out) {
  if (weights.isQuantized) {
    quantKernels.dequantizeRow(weights.quantized, row, out);
  } else {
    kernels.toFloat(weights.dense.data + row * weights.dense.rowBytes, weights.dense.dtype, weights.dense.cols, out);
  }
}

}  // namespace nesso
