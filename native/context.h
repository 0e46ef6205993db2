// A context: one sequence's KV cache, activation buffers and last logits over a shared model.
// The bindings allow one eval, saveState or loadState at a time per context (the busy flag).
// cancel() may be called from the JS thread while an eval runs on a worker thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "forward.h"
#include "kv-cache.h"
#include "model.h"
#include "sampler.h"

namespace nesso {

struct EvalResult {
  size_t evaluated = 0;  // tokens now in the cache from this call
  bool cancelled = false;
};

class Context {
 public:
  // kvDtype is Dtype::F32 or Dtype::F16.
  Context(std::shared_ptr<Model> model, size_t contextSize, Dtype kvDtype);

  Model& model() { return *model_; }
  const KvCache& cache() const { return cache_; }
  size_t length() const { return cache_.length(); }
  bool hasLogits() const { return hasLogits_; }
  // [vocabSize] logits of the last evaluated position; valid while hasLogits().
  const std::vector<float>& logits() const { return logits_; }

  // Evaluates tokens in chunks of chunkSize, checking the cancel flag before each chunk. Runs on a
  // worker thread; the caller has validated ids, chunk size and room in the context.
  EvalResult evaluate(const std::vector<int32_t>& tokens, size_t chunkSize);

  // Keeps the first n cached tokens (n <= length()).
  void rewind(size_t n);

  int32_t sample(const SamplerParams& params, const uint8_t* mask, size_t maskLength);

  // Logits travel with a saved state only when it covers every cached token.
  size_t stateSize(size_t tokens) const;
  void saveState(size_t tokens, uint8_t* out) const;
  void loadState(const uint8_t* state, size_t size);

  std::atomic<bool> cancelRequested{false};
  std::atomic<bool> busy{false};

 private:
  size_t savedLogitCount(size_t tokens) const;

  std::shared_ptr<Model> model_;
  KvCache cache_;
  ForwardBuffers buffers_;
  std::vector<float> logits_;
  bool hasLogits_ = false;
  SamplerScratch samplerScratch_;
};

}  // namespace nesso
