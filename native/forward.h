// The Llama forward pass over a run of new tokens, as mlx-lm's llama.py computes it, with float32
// activations and accumulation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "activations.h"
#include "kernels.h"
#include "kv-cache.h"
#include "model.h"

namespace nesso {

// Per-thread working memory of attendGroup.
struct AttentionScratch {
  float* scores;         // [group, n]
  float* scaledQueries;  // [group, headDim]
  float* matMul;         // kMatMulRowBlock * headDim floats for the matMul kernel
};

// Activation buffers of one context, grown to the largest token count evaluated so far.
struct ForwardBuffers {
  size_t capacity = 0;           // tokens the buffers below hold
  size_t lastCount = 0;          // tokens of the latest forward(); its last row feeds computeLogits
  std::vector<float> residual;   // [T, dim] the residual stream h
  std::vector<float> normed;     // [T, dim] RMSNorm(h)
  std::vector<float> query;      // [T, nHeads * headDim]
  std::vector<float> key;        // [T, nKvHeads * headDim]
  std::vector<float> value;      // [T, nKvHeads * headDim]
  std::vector<float> attention;  // [T, nHeads * headDim] heads concatenated in order
  std::vector<float> projected;  // [T, dim] o_proj or down_proj output before the residual add
  std::vector<float> gate;       // [T, ffnDim] silu(gate) * up after the MLP's first half
  std::vector<float> up;         // [T, ffnDim]
  std::vector<float> ropeCos;    // [T, headDim / 2]
  std::vector<float> ropeSin;    // [T, headDim / 2]
  std::vector<float> finalNormed;                // [dim]
  std::vector<std::vector<float>> scores;         // per thread [group, contextSize] attention weights
  std::vector<std::vector<float>> scaledQueries;  // per thread [group, headDim]
  std::vector<std::vector<float>> matMulScratch;  // per thread [kMatMulRowBlock * widest input]
  SharedActivations sharedActivations;            // the input of the current product, as int8

  void reserve(const ModelConfig& config, size_t tokens, int threads, size_t contextSize);
  AttentionScratch attentionScratch(int thread) {
    return {scores[size_t(thread)].data(), scaledQueries[size_t(thread)].data(), matMulScratch[size_t(thread)].data()};
  }
};

// Evaluates `count` tokens at positions cache.length() .. cache.length() + count - 1: appends
// their keys and values to the cache and advances its length. The hidden state of the last token
// stays in buffers.residual until the next call. The caller holds model.computeMutex and has
// checked the ids and the room in the context.
void forward(Model& model, KvCache& cache, ForwardBuffers& buffers, const int32_t* tokens, size_t count);

// Writes logits[vocabSize] of the last token of the latest forward() (ids >= tokenizerVocabSize
// set to -inf). Prefill calls it once after its last chunk, not after every chunk.
void computeLogits(Model& model, ForwardBuffers& buffers, float* logits);

// Attention of the `group` query heads [group, headDim] that share one kv head over n cached
// positions (keys and values are [n, headDim] rows of kvDtype, float32 or float16):
// out[g] = softmax(scale · K q_g) · V, written to out [group, headDim].
void attendGroup(const Kernels& kernels, const float* queries, const uint8_t* keys, const uint8_t* values, Dtype kvDtype,
                 size_t n, size_t headDim, size_t group, float scale, AttentionScratch scratch, float* out);

}  // namespace nesso
