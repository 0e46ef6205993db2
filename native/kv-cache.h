// The KV cache of one context: post-RoPE keys and raw values of every layer and kv head, in
// float32 or float16 (the context's choice), laid out
// [nLayers][key|value][nKvHeads][contextSize][headDim].
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "tensor.h"

namespace nesso {

class KvCache {
 public:
  // The memory is zero-filled lazily by the OS (calloc), so a large context costs resident memory
  // only for the positions that are used. Throws Internal when the allocation fails.
  // dtype is Dtype::F32 or Dtype::F16 (values are rounded to nearest when stored).
  KvCache(int nLayers, int nKvHeads, int headDim, size_t contextSize, Dtype dtype);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  size_t contextSize() const { return contextSize_; }
  Dtype dtype() const { return dtype_; }
  int headDim() const { return headDim_; }
  // Tokens whose keys and values are stored (positions 0 .. length-1).
  // Atomic because JS may read it while an eval on a worker thread advances it.
  size_t length() const { return length_.load(std::memory_order_acquire); }
  // Drops positions >= n (prefix reuse) or marks freshly written positions as stored.
  void setLength(size_t n) { length_.store(n, std::memory_order_release); }

  // Rows [contextSize, headDim] of one layer and kv head, in dtype().
  const uint8_t* keys(int layer, int head) const { return data_ + offsetOf(layer, 0, head) * elementSize_; }
  const uint8_t* values(int layer, int head) const { return data_ + offsetOf(layer, 1, head) * elementSize_; }

  // Writes the key and value rows [headDim] of one layer and kv head at `position`.
  void store(int layer, int head, size_t position, const float* key, const float* value);

  // Serialized state: a header recording the geometry and the model fingerprint, the keys and
  // values of the first `tokens` positions, then `logitCount` logits (0 when none are saved).
  size_t stateSize(size_t tokens, size_t logitCount) const;
  void saveState(size_t tokens, uint64_t fingerprint, const float* logits, size_t logitCount, uint8_t* out) const;

  // Restores a state written by saveState and returns how many logits it carried (0 or
  // logitCapacity), copied into `logits`. Throws InvalidArgument when the state is malformed or
  // belongs to another model, ContextFull when it contains more tokens than this context.
  size_t loadState(const uint8_t* state, size_t size, uint64_t fingerprint, float* logits, size_t logitCapacity);

 private:
  size_t offsetOf(int layer, int kind, int head) const {
    return ((size_t(layer) * 2 + size_t(kind)) * size_t(nKvHeads_) + size_t(head)) * contextSize_ * size_t(headDim_);
  }

  int nLayers_;
  int nKvHeads_;
  int headDim_;
  size_t contextSize_;
  Dtype dtype_;
  size_t elementSize_;
  std::atomic<size_t> length_{0};
  uint8_t* data_ = nullptr;
};

}  // namespace nesso
