// Activations quantized to int8 once per parallel product and read by every thread, so the
// chunks of one product do not each quantize the same input again. Included by quant.cc and
// forward.h only, never by the SIMD files, because it contains standard containers.
#pragma once

#include <cstddef>
#include <vector>

#include "quant.h"

namespace nesso {

// Storage of the quantized activations of one call: rows [tokens] and the batch that views them.
struct ActivationBuffers {
  std::vector<int8_t> values;
  std::vector<float> blockScales;
  std::vector<float> groupSums;
  std::vector<float> groupOffsets;
  std::vector<float> chunkScales;
  std::vector<float> groupSumsByGroup;
  std::vector<float> groupOffsetsByGroup;
  std::vector<QuantizedActivations> rows;
  ActivationBatch batch;
};

// Quantizes the rows x [tokens, cols] into `buffers` for the weight's bit width and group size.
const ActivationBatch& quantizeRows(const Int8QuantKernels& kernels, const QuantizedMatrix& weights, const float* x,
                                    size_t tokens, ActivationBuffers& buffers);

// One input quantized for the integer kernels, shared by the threads of a parallel product.
class SharedActivations {
 public:
  // Quantizes x [tokens, cols] and returns the batch when `weights` takes the integer path for
  // this token count. Returns null and keeps nothing when the float path applies.
  const ActivationBatch* prepare(const QuantKernels& quantKernels, const LinearWeights& weights, const float* x,
                                 size_t tokens);

  // The prepared batch when it suits `weights` (same bit width, group size and columns), else null.
  const ActivationBatch* batchFor(const LinearWeights& weights) const;

 private:
  ActivationBuffers buffers_;
  const ActivationBatch* prepared_ = nullptr;
  int bits_ = 0;
  int groupSize_ = 0;
  size_t cols_ = 0;
};

}  // namespace nesso
