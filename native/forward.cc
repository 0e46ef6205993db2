#include "forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>

namespace nesso {

// Output rows per unit of work split across threads: 16 floats are one 64-byte cache line, so two
// threads never write the same line of an output row.
constexpr size_t kRowGrain = 16;

void ForwardBuffers::reserve(const ModelConfig& config, size_t tokens, int threads, size_t contextSize) {
  if (tokens > capacity) {
    residual.resize(tokens * size_t(config.dim));
    normed.resize(tokens * size_t(config.dim));
    query.resize(tokens * config.queryDim());
    key.resize(tokens * config.kvDim());
    value.resize(tokens * config.kvDim());
    attention.resize(tokens * config.queryDim());
    projected.resize(tokens * size_t(config.dim));
    gate.resize(tokens * size_t(config.ffnDim));
    up.resize(tokens * size_t(config.ffnDim));
    ropeCos.resize(tokens * size_t(config.headDim / 2));
    ropeSin.resize(tokens * size_t(config.headDim / 2));
    capacity = tokens;
  }
  finalNormed.resize(size_t(config.dim));
  const size_t group = size_t(config.queryHeadsPerKvHead());
  if (scores.size() != size_t(threads) || scores[0].size() < group * contextSize) {
    scores.assign(size_t(threads), std::vector<float>(group * contextSize));
    scaledQueries.assign(size_t(threads), std::vector<float>(config.queryDim()));
  }
  const size_t widestInput = std::max({size_t(config.dim), config.queryDim(), size_t(config.ffnDim)});
  if (matMulScratch.size() != size_t(threads)) {
    matMulScratch.assign(size_t(threads), std::vector<float>(kMatMulRowBlock * widestInput));
  }
}

void attendGroup(const Kernels& kernels, const float* queries, const uint8_t* keys, const uint8_t* values, Dtype kvDtype,
                 size_t n, size_t headDim, size_t group, float scale, AttentionScratch scratch, float* out) {
  // scores[g, j] = (scale · q_g) · k_j over the n visible positions (the causal mask is
  // n = position + 1), in one pass over the keys for all heads of the group.
  for (size_t i = 0; i < group * headDim; i++) scratch.scaledQueries[i] = queries[i] * scale;
  kernels.matMul(makeMatrix(keys, kvDtype, n, headDim), 0, n, scratch.scaledQueries, group, scratch.scores, n,
                 scratch.matMul);

  // p[g, :] = softmax(scores[g, :])
  for (size_t g = 0; g < group; g++) kernels.softmax(scratch.scores + g * n, n);

  // out[g] = p[g, :] V, reading each value row once for the whole group.
  kernels.weightedSum(scratch.scores, group, values, kvDtype, n, headDim, out);
}

namespace {

// One matrix applied to the same input as others in a single parallel job.
struct Projection {
  const LinearWeights& weights;
  float* out;                       // [T, ld]
  size_t ld;                        // floats between the rows of consecutive tokens
  const std::vector<float>& bias;  // [rows] or empty
};

void addBias(const Projection& projection, size_t tokens) {
  if (projection.bias.empty()) return;
  for (size_t t = 0; t < tokens; t++) {
    float* row = projection.out + t * projection.ld;
    for (size_t r = 0; r < projection.weights.rows(); r++) row[r] += projection.bias[r];
  }
}

// Computes out = input Wᵀ for every projection. Their output rows form one range that is split
// evenly across the threads, so each weight row is streamed once by one thread.
void project(Model& model, ForwardBuffers& buffers, const float* input, size_t tokens,
             std::initializer_list<Projection> projections) {
  size_t totalRows = 0;
  for (const Projection& projection : projections) totalRows += projection.weights.rows();
  // Quantized once here for every chunk, when the products take the integer path.
  SharedActivations& shared = buffers.sharedActivations;
  shared.prepare(model.quantKernels, projections.begin()->weights, input, tokens);

  model.pool.parallelFor(totalRows, kRowGrain, [&](size_t begin, size_t end, int thread) {
    size_t base = 0;
    for (const Projection& projection : projections) {
      const size_t rows = projection.weights.rows();
      const size_t first = std::max(begin, base);
      const size_t last = std::min(end, base + rows);
      if (first < last) {
        const ActivationBatch* prepared = shared.batchFor(projection.weights);
        if (tokens == 1) {
          linearMatVec(model.kernels, model.quantKernels, projection.weights, first - base, last - base, input,
                       projection.out, prepared);
        } else {
          linearMatMul(model.kernels, model.quantKernels, projection.weights, first - base, last - base, input, tokens,
                       projection.out, projection.ld, buffers.matMulScratch[size_t(thread)].data(), prepared);
        }
      }
      base += rows;
    }
  });
  for (const Projection& projection : projections) addBias(projection, tokens);
}

// gate = silu(input Wgᵀ) ⊙ (input Wuᵀ), each thread taking the same rows of both matrices.
void gatedProjection(Model& model, ForwardBuffers& buffers, const LayerWeights& layer, size_t tokens) {
  const size_t ffnDim = size_t(model.config.ffnDim);
  const Kernels& kernels = model.kernels;
  const QuantKernels& quantKernels = model.quantKernels;
  const float* input = buffers.normed.data();
  float* gate = buffers.gate.data();
  float* up = buffers.up.data();
  SharedActivations& shared = buffers.sharedActivations;
  shared.prepare(quantKernels, layer.gate, input, tokens);

  model.pool.parallelFor(ffnDim, kRowGrain, [&](size_t begin, size_t end, int thread) {
    if (tokens == 1) {
      linearMatVec(kernels, quantKernels, layer.gate, begin, end, input, gate, shared.batchFor(layer.gate));
      linearMatVec(kernels, quantKernels, layer.up, begin, end, input, up, shared.batchFor(layer.up));
    } else {
      float* scratch = buffers.matMulScratch[size_t(thread)].data();
      linearMatMul(kernels, quantKernels, layer.gate, begin, end, input, tokens, gate, ffnDim, scratch,
                   shared.batchFor(layer.gate));
      linearMatMul(kernels, quantKernels, layer.up, begin, end, input, tokens, up, ffnDim, scratch,
                   shared.batchFor(layer.up));
    }
    for (size_t t = 0; t < tokens; t++) {
      float* gateRow = gate + t * ffnDim;
      float* upRow = up + t * ffnDim;
      if (!layer.gateBias.empty()) {
        for (size_t r = begin; r < end; r++) {
          gateRow[r] += layer.gateBias[r];
          upRow[r] += layer.upBias[r];
        }
      }
      kernels.siluMul(gateRow + begin, upRow + begin, end - begin);
    }
  });
}

void addResidual(ForwardBuffers& buffers, size_t count) {
  float* residual = buffers.residual.data();
  const float* projected = buffers.projected.data();
  for (size_t i = 0; i < count; i++) residual[i] += projected[i];
}

// Causal attention of every new token over the cache, one (token, kv head) pair per chunk. The
// query heads that share a kv head read its keys and values together. Threads claim pairs one at
// a time, which balances the longer rows of later tokens.
void attendAll(Model& model, KvCache& cache, ForwardBuffers& buffers, int layer, size_t position, size_t tokens) {
  const ModelConfig& config = model.config;
  const size_t headDim = size_t(config.headDim);
  const size_t queryDim = config.queryDim();
  const size_t group = size_t(config.queryHeadsPerKvHead());
  const size_t kvHeads = size_t(config.nKvHeads);
  const float scale = 1.0f / std::sqrt(float(headDim));

  model.pool.run(tokens * kvHeads, [&](size_t item, int thread) {
    const size_t t = item / kvHeads;
    const int kvHead = int(item % kvHeads);
    // Query heads kvHead * group .. (kvHead + 1) * group - 1 are adjacent in the query row.
    const size_t offset = t * queryDim + size_t(kvHead) * group * headDim;
    attendGroup(model.kernels, buffers.query.data() + offset, cache.keys(layer, kvHead), cache.values(layer, kvHead),
                cache.dtype(), position + t + 1, headDim, group, scale, buffers.attentionScratch(thread),
                buffers.attention.data() + offset);
  });
}

// Rotates the new queries and keys and appends keys and values to the cache.
void rotateAndCache(Model& model, KvCache& cache, ForwardBuffers& buffers, int layer, size_t position, size_t tokens) {
  const ModelConfig& config = model.config;
  const size_t headDim = size_t(config.headDim);
  const size_t half = headDim / 2;
  const size_t queryDim = config.queryDim();
  const size_t kvDim = config.kvDim();

  for (size_t t = 0; t < tokens; t++) {
    const float* cos = buffers.ropeCos.data() + t * half;
    const float* sin = buffers.ropeSin.data() + t * half;
    for (int head = 0; head < config.nHeads; head++) {
      model.rope.rotate(buffers.query.data() + t * queryDim + size_t(head) * headDim, cos, sin);
    }
    for (int kvHead = 0; kvHead < config.nKvHeads; kvHead++) {
      float* key = buffers.key.data() + t * kvDim + size_t(kvHead) * headDim;
      const float* value = buffers.value.data() + t * kvDim + size_t(kvHead) * headDim;
      model.rope.rotate(key, cos, sin);
      cache.store(layer, kvHead, position + t, key, value);
    }
  }
}

}  // namespace

void forward(Model& model, KvCache& cache, ForwardBuffers& buffers, const int32_t* tokens, size_t count) {
  const ModelConfig& config = model.config;
  const Kernels& kernels = model.kernels;
  const ModelWeights& weights = model.weights;
  const size_t dim = size_t(config.dim);
  const size_t queryDim = config.queryDim();
  const size_t kvDim = config.kvDim();
  const size_t position = cache.length();
  const size_t half = size_t(config.headDim / 2);
  buffers.reserve(config, count, model.pool.size(), cache.contextSize());

  // h = Embed(ids)
  for (size_t t = 0; t < count; t++) {
    linearRow(kernels, model.quantKernels, weights.embedding, size_t(tokens[t]), buffers.residual.data() + t * dim);
  }

  // RoPE angles of the new positions, shared by all layers and heads.
  for (size_t t = 0; t < count; t++) {
    model.rope.angles(position + t, buffers.ropeCos.data() + t * half, buffers.ropeSin.data() + t * half);
  }

  for (int layerIndex = 0; layerIndex < config.nLayers; layerIndex++) {
    const LayerWeights& layer = weights.layers[size_t(layerIndex)];

    // Attention block: h = h + Wo · attention(RoPE(Wq x), RoPE(Wk x), Wv x), x = RMSNorm(h)
    for (size_t t = 0; t < count; t++) {
      kernels.rmsNorm(buffers.residual.data() + t * dim, layer.attentionNorm.data(), dim, config.rmsNormEps,
                      buffers.normed.data() + t * dim);
    }
    project(model, buffers, buffers.normed.data(), count,
            {{layer.query, buffers.query.data(), queryDim, layer.queryBias},
             {layer.key, buffers.key.data(), kvDim, layer.keyBias},
             {layer.value, buffers.value.data(), kvDim, layer.valueBias}});
    rotateAndCache(model, cache, buffers, layerIndex, position, count);
    attendAll(model, cache, buffers, layerIndex, position, count);
    project(model, buffers, buffers.attention.data(), count, {{layer.output, buffers.projected.data(), dim, layer.outputBias}});
    addResidual(buffers, count * dim);

    // MLP block: h = h + Wd · (silu(Wg x) ⊙ Wu x), x = RMSNorm(h)
    for (size_t t = 0; t < count; t++) {
      kernels.rmsNorm(buffers.residual.data() + t * dim, layer.ffnNorm.data(), dim, config.rmsNormEps,
                      buffers.normed.data() + t * dim);
    }
    gatedProjection(model, buffers, layer, count);
    project(model, buffers, buffers.gate.data(), count, {{layer.down, buffers.projected.data(), dim, layer.downBias}});
    addResidual(buffers, count * dim);
  }
  cache.setLength(position + count);
  buffers.lastCount = count;
}

void computeLogits(Model& model, ForwardBuffers& buffers, float* logits) {
  const ModelConfig& config = model.config;
  const Kernels& kernels = model.kernels;
  const ModelWeights& weights = model.weights;
  const size_t dim = size_t(config.dim);

  // logits = RMSNorm(h_last) · Eᵀ (or lm_headᵀ)
  kernels.rmsNorm(buffers.residual.data() + (buffers.lastCount - 1) * dim, weights.finalNorm.data(), dim,
                  config.rmsNormEps, buffers.finalNormed.data());
  const float* finalNormed = buffers.finalNormed.data();
  const ActivationBatch* prepared =
      buffers.sharedActivations.prepare(model.quantKernels, weights.outputHead, finalNormed, 1);
  model.pool.parallelFor(size_t(config.vocabSize), kRowGrain, [&](size_t begin, size_t end, int thread) {
    linearMatVec(kernels, model.quantKernels, weights.outputHead, begin, end, finalNormed, logits, prepared);
  });
  for (size_t id = size_t(config.tokenizerVocabSize); id < size_t(config.vocabSize); id++) logits[id] = -INFINITY;
}

}  // namespace nesso
