// A loaded model: config, mmapped weights, the chosen kernels, RoPE tables and the compute
// threads. Contexts and in-flight workers hold it through shared_ptr, so dispose() from JS only
// drops a reference and the weights stay mapped until the last eval that uses them finishes.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "config.h"
#include "kernels.h"
#include "quant.h"
#include "rope.h"
#include "thread-pool.h"
#include "weights.h"

namespace nesso {

class Model {
 public:
  // Validates the config, maps the files and resolves the tensors; throws nesso::Error.
  Model(const ModelConfig& config, const std::vector<std::string>& files, const std::vector<TensorSpec>& tensors,
        int threads);

  const ModelConfig config;
  const ModelWeights weights;
  const Kernels& kernels;
  const QuantKernels& quantKernels;  // the same SIMD path as `kernels`, for quantized weights
  const Rope rope;
  ThreadPool pool;
  // Held for each forward chunk: contexts of one model share the thread pool.
  std::mutex computeMutex;
};

}  // namespace nesso
