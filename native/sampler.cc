#include "sampler.h"

#include <algorithm>
#include <cmath>

#include "errors.h"

namespace nesso {

namespace {

// splitmix64: turns any seed, including 0 and consecutive integers, into well-mixed bits.
uint64_t mixSeed(uint64_t seed) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A uniform double in [0, 1) from the seed, identical on every platform.
double uniformFromSeed(uint64_t seed) {
  return double(mixSeed(seed) >> 11) * 0x1.0p-53;
}

void applyRepeatPenalty(std::vector<float>& logits, const SamplerParams& params) {
  if (params.repeatPenalty == 1.0f || params.penaltyTokens.empty()) return;
  std::vector<int32_t> unique = params.penaltyTokens;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  for (int32_t id : unique) {
    if (id < 0 || size_t(id) >= logits.size()) continue;
    float& logit = logits[size_t(id)];
    logit = logit > 0 ? logit / params.repeatPenalty : logit * params.repeatPenalty;
  }
}

// Descending logit, then ascending id, so equal inputs always give the same order.
bool ranksHigher(const SamplerCandidate& a, const SamplerCandidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// Puts the `count` highest-ranked candidates first, in order.
void sortLeading(std::vector<SamplerCandidate>& candidates, size_t count) {
  if (count < candidates.size()) {
    std::partial_sort(candidates.begin(), candidates.begin() + std::ptrdiff_t(count), candidates.end(), ranksHigher);
  } else {
    std::sort(candidates.begin(), candidates.end(), ranksHigher);
  }
}

// Keeps the shortest prefix in descending order whose probability mass reaches topP. Sorting all
// 128k candidates takes milliseconds, so it sorts growing prefixes until one contains enough mass.
void applyTopP(std::vector<SamplerCandidate>& candidates, float topP) {
  size_t sorted = 0;
  for (size_t prefix = 64;; prefix *= 8) {
    size_t count = std::min(prefix, candidates.size());
    if (count > sorted) {
      sortLeading(candidates, count);
      sorted = count;
    }
    double mass = 0.0;
    for (size_t i = 0; i < count; i++) {
      mass += candidates[i].probability;
      if (mass >= topP) {
        candidates.resize(i + 1);
        return;
      }
    }
    // Rounding can leave the total just under topP; then everything stays.
    if (count == candidates.size()) return;
  }
}

}  // namespace

int32_t sampleToken(const float* logits, size_t allowedVocabSize, const SamplerParams& params, const uint8_t* mask,
                    size_t maskLength, SamplerScratch& scratch) {
  // The penalty works on a copy, made only when it applies.
  const float* values = logits;
  if (params.repeatPenalty != 1.0f && !params.penaltyTokens.empty()) {
    scratch.logits.assign(logits, logits + allowedVocabSize);
    applyRepeatPenalty(scratch.logits, params);
    values = scratch.logits.data();
  }
  // NaN and -inf logits are never chosen (NaN > -inf is false).
  auto allowed = [&](size_t id) {
    return (mask == nullptr || (id < maskLength && mask[id] != 0)) && values[id] > -INFINITY;
  };
  auto nothingAllowed = [&]() {
    // NaN logits come from the weights (or an overflow in the forward pass), not from the caller.
    size_t nanCount = 0;
    for (size_t id = 0; id < allowedVocabSize; id++) {
      if (std::isnan(values[id])) nanCount++;
    }
    if (nanCount > 0) {
      fail(ErrorCode::InvalidModel, "sample: ", nanCount, " of ", allowedVocabSize,
           " logits are NaN, so no token can be chosen; the checkpoint's weights contain NaN or infinite values "
           "or an activation overflowed (re-download or re-convert the model, or try kvCacheType \"f32\")");
    }
    fail(ErrorCode::InvalidArgument, "sample: no token is allowed (the mask forbids all ", allowedVocabSize,
         " ids or every allowed logit is -inf); allow at least one id");
  };

  // Greedy: the highest logit, the lowest id on ties.
  if (params.temperature <= 0.0f) {
    size_t best = allowedVocabSize;
    for (size_t id = 0; id < allowedVocabSize; id++) {
      if (allowed(id) && (best == allowedVocabSize || values[id] > values[best])) best = id;
    }
    if (best == allowedVocabSize) nothingAllowed();
    return int32_t(best);
  }

  // Candidates: the top k in descending order when top-k is on (a bounded heap whose front is the
  // weakest kept candidate), else every allowed id.
  std::vector<SamplerCandidate>& candidates = scratch.candidates;
  candidates.clear();
  const size_t topK = size_t(params.topK);
  if (topK > 0 && topK < allowedVocabSize) {
    for (size_t id = 0; id < allowedVocabSize; id++) {
      if (!allowed(id)) continue;
      SamplerCandidate candidate{uint32_t(id), values[id], 0.0f};
      if (candidates.size() < topK) {
        candidates.push_back(candidate);
        std::push_heap(candidates.begin(), candidates.end(), ranksHigher);
      } else if (ranksHigher(candidate, candidates.front())) {
        std::pop_heap(candidates.begin(), candidates.end(), ranksHigher);
        candidates.back() = candidate;
        std::push_heap(candidates.begin(), candidates.end(), ranksHigher);
      }
    }
    std::sort_heap(candidates.begin(), candidates.end(), ranksHigher);
  } else {
    for (size_t id = 0; id < allowedVocabSize; id++) {
      if (allowed(id)) candidates.push_back({uint32_t(id), values[id], 0.0f});
    }
  }
  if (candidates.empty()) nothingAllowed();

  // Softmax of logit / temperature over the candidates.
  float maxLogit = -INFINITY;
  for (const SamplerCandidate& candidate : candidates) maxLogit = std::max(maxLogit, candidate.logit);
  double sum = 0.0;
  for (SamplerCandidate& candidate : candidates) {
    candidate.probability = std::exp((candidate.logit - maxLogit) / params.temperature);
    sum += candidate.probability;
  }
  for (SamplerCandidate& candidate : candidates) candidate.probability = float(candidate.probability / sum);

  if (params.topP < 1.0f) applyTopP(candidates, params.topP);

  // Min-p drops candidates below minP times the most likely one.
  if (params.minP > 0.0f) {
    float maxProbability = 0.0f;
    for (const SamplerCandidate& candidate : candidates) maxProbability = std::max(maxProbability, candidate.probability);
    const float threshold = params.minP * maxProbability;
    candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                    [&](const SamplerCandidate& candidate) { return candidate.probability < threshold; }),
                     candidates.end());
  }

  // One draw over what is left.
  double total = 0.0;
  for (const SamplerCandidate& candidate : candidates) total += candidate.probability;
  const double target = uniformFromSeed(params.seed) * total;
  double cumulative = 0.0;
  for (const SamplerCandidate& candidate : candidates) {
    cumulative += candidate.probability;
    if (target < cumulative) return int32_t(candidate.id);
  }
  return int32_t(candidates.back().id);
}

}  // namespace nesso
