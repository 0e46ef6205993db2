// Model geometry and hyperparameters, as src/engine/ resolves them from config.json (mlx-lm
// defaults applied) and passes them in NativeModelConfig.
#pragma once

#include <cstddef>
#include <vector>

namespace nesso {

struct ModelConfig {
  int dim = 0;       // hidden size
  int nLayers = 0;
  int nHeads = 0;    // query heads
  int nKvHeads = 0;  // key/value heads; query head h uses kv head h / (nHeads / nKvHeads)
  int headDim = 0;
  int ffnDim = 0;    // intermediate size of the SwiGLU MLP
  int vocabSize = 0;           // rows of model.embed_tokens.weight
  int tokenizerVocabSize = 0;  // logits of ids >= this are -inf
  float rmsNormEps = 1e-5f;
  double ropeTheta = 10000.0;
  bool ropeTraditional = false;       // true: pairs (2i, 2i+1); false: pairs (i, i + headDim/2)
  std::vector<float> ropeFreqFactors;  // [headDim/2] divisors of the frequencies, or empty
  double ropePositionScale = 1.0;      // multiplies positions before the angle is computed
  bool tieWordEmbeddings = true;
  bool attentionBias = false;
  bool mlpBias = false;
  int maxContextSize = 0;

  size_t queryDim() const { return size_t(nHeads) * size_t(headDim); }
  size_t kvDim() const { return size_t(nKvHeads) * size_t(headDim); }
  int queryHeadsPerKvHead() const { return nHeads / nKvHeads; }
};

// Engine limits on the geometry. They bound allocations and index arithmetic; no Llama-style
// model of the sizes this engine targets comes near them.
constexpr int kMaxDim = 1 << 16;
constexpr int kMaxLayers = 1024;
constexpr int kMaxHeads = 1024;
constexpr int kMaxHeadDim = 1024;
constexpr int kMaxFfnDim = 1 << 18;
constexpr int kMaxVocabSize = 1 << 24;
constexpr int kMaxContextSize = 1 << 20;

// Throws InvalidArgument naming the first field that is out of range or inconsistent.
void validateConfig(const ModelConfig& config);

}  // namespace nesso
