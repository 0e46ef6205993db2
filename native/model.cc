#include "model.h"

#include "errors.h"
#include "log.h"

namespace nesso {

namespace {

// Validation has to run before the members that depend on a valid config are built.
const ModelConfig& validated(const ModelConfig& config) {
  validateConfig(config);
  return config;
}

}  // namespace

Model::Model(const ModelConfig& config, const std::vector<std::string>& files, const std::vector<TensorSpec>& tensors,
             int threads)
    : config(validated(config)),
      weights(files, tensors, config),
      kernels(selectKernels()),
      quantKernels(quantKernelsFor(kernels)),
      rope(config.headDim, config.ropeTheta, config.ropeTraditional, config.ropeFreqFactors, config.ropePositionScale),
      pool(threads) {
  logMessage(LogLevel::Info, concat("loaded model: ", config.nLayers, " layers, dim ", config.dim, ", vocabSize ",
                                    config.vocabSize, ", ", weights.mappedBytes(), " bytes mapped, ", pool.size(),
                                    " threads, ", kernels.name, " kernels, ", weights.quantizedCount(),
                                    " quantized weights"));
}

}  // namespace nesso
