#include "config.h"

#include <cmath>

#include "errors.h"

namespace nesso {

namespace {

void checkRange(const char* field, int value, int min, int max) {
  if (value < min || value > max) {
    fail(ErrorCode::InvalidArgument, "loadModel: config.", field, " is ", value, " but must be in [", min, ", ", max, "]");
  }
}

}  // namespace

void validateConfig(const ModelConfig& config) {
  checkRange("dim", config.dim, 1, kMaxDim);
  checkRange("nLayers", config.nLayers, 1, kMaxLayers);
  checkRange("nHeads", config.nHeads, 1, kMaxHeads);
  checkRange("nKvHeads", config.nKvHeads, 1, config.nHeads);
  checkRange("headDim", config.headDim, 2, kMaxHeadDim);
  checkRange("ffnDim", config.ffnDim, 1, kMaxFfnDim);
  checkRange("vocabSize", config.vocabSize, 1, kMaxVocabSize);
  checkRange("tokenizerVocabSize", config.tokenizerVocabSize, 1, config.vocabSize);
  checkRange("maxContextSize", config.maxContextSize, 1, kMaxContextSize);

  if (config.nHeads % config.nKvHeads != 0) {
    fail(ErrorCode::InvalidArgument, "loadModel: config.nHeads ", config.nHeads, " is not a multiple of config.nKvHeads ",
         config.nKvHeads, " (grouped-query attention needs whole groups)");
  }
  if (config.headDim % 2 != 0) {
    fail(ErrorCode::InvalidArgument, "loadModel: config.headDim ", config.headDim, " is odd but RoPE rotates pairs of dimensions");
  }
  if (!(std::isfinite(config.rmsNormEps) && config.rmsNormEps > 0)) {
    fail(ErrorCode::InvalidArgument, "loadModel: config.rmsNormEps ", config.rmsNormEps, " must be a positive finite number");
  }
  if (!(std::isfinite(config.ropeTheta) && config.ropeTheta > 1)) {
    fail(ErrorCode::InvalidArgument, "loadModel: config.ropeTheta ", config.ropeTheta, " must be a finite number above 1");
  }
  if (!(std::isfinite(config.ropePositionScale) && config.ropePositionScale > 0)) {
    fail(ErrorCode::InvalidArgument, "loadModel: config.ropePositionScale ", config.ropePositionScale,
         " must be a positive finite number");
  }
  if (!config.ropeFreqFactors.empty()) {
    if (config.ropeFreqFactors.size() != size_t(config.headDim / 2)) {
      fail(ErrorCode::InvalidArgument, "loadModel: config.ropeFreqFactors has ", config.ropeFreqFactors.size(),
           " entries but headDim ", config.headDim, " needs ", config.headDim / 2);
    }
    for (size_t i = 0; i < config.ropeFreqFactors.size(); i++) {
      float factor = config.ropeFreqFactors[i];
      if (!(std::isfinite(factor) && factor > 0)) {
        fail(ErrorCode::InvalidArgument, "loadModel: config.ropeFreqFactors[", i, "] is ", factor,
             " but must be a positive finite number");
      }
    }
  }
}

}  // namespace nesso
