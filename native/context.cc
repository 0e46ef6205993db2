#include "context.h"

#include <algorithm>

namespace nesso {

Context::Context(std::shared_ptr<Model> model, size_t contextSize, Dtype kvDtype)
    : model_(std::move(model)),
      cache_(model_->config.nLayers, model_->config.nKvHeads, model_->config.headDim, contextSize, kvDtype),
      logits_(size_t(model_->config.vocabSize)) {}

EvalResult Context::evaluate(const std::vector<int32_t>& tokens, size_t chunkSize) {
  EvalResult result;
  while (result.evaluated < tokens.size()) {
    if (cancelRequested.load(std::memory_order_acquire)) {
      result.cancelled = true;
      break;
    }
    const size_t count = std::min(chunkSize, tokens.size() - result.evaluated);
    std::lock_guard<std::mutex> lock(model_->computeMutex);
    // The old logits no longer belong to the last cached position once a chunk is evaluated.
    hasLogits_ = false;
    forward(*model_, cache_, buffers_, tokens.data() + result.evaluated, count);
    result.evaluated += count;
  }

  // Logits of the last evaluated position only, whether the eval finished or was cancelled.
  if (result.evaluated > 0) {
    std::lock_guard<std::mutex> lock(model_->computeMutex);
    computeLogits(*model_, buffers_, logits_.data());
    hasLogits_ = true;
  }
  return result;
}

void Context::rewind(size_t n) {
  if (n == cache_.length()) return;
  cache_.setLength(n);
  hasLogits_ = false;
}

int32_t Context::sample(const SamplerParams& params, const uint8_t* mask, size_t maskLength) {
  return sampleToken(logits_.data(), size_t(model_->config.tokenizerVocabSize), params, mask, maskLength,
                     samplerScratch_);
}

size_t Context::savedLogitCount(size_t tokens) const {
  return tokens == cache_.length() && hasLogits_ ? logits_.size() : 0;
}

size_t Context::stateSize(size_t tokens) const {
  return cache_.stateSize(tokens, savedLogitCount(tokens));
}

void Context::saveState(size_t tokens, uint8_t* out) const {
  cache_.saveState(tokens, model_->weights.fingerprint(), logits_.data(), savedLogitCount(tokens), out);
}

void Context::loadState(const uint8_t* state, size_t size) {
  size_t logitCount = cache_.loadState(state, size, model_->weights.fingerprint(), logits_.data(), logits_.size());
  hasLogits_ = logitCount > 0;
}

}  // namespace nesso
