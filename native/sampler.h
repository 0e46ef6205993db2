// Picks the next token from the logits of the last evaluated position.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nesso {

struct SamplerParams {
  float temperature = 0.0f;     // 0 = greedy (argmax)
  int topK = 0;                 // 0 = off
  float topP = 1.0f;            // 1 = off
  float minP = 0.0f;            // 0 = off
  float repeatPenalty = 1.0f;   // 1 = off
  std::vector<int32_t> penaltyTokens;  // ids the penalty applies to (duplicates count once)
  uint64_t seed = 0;
};

// Reusable candidate storage, so sampling allocates nothing after the first call.
struct SamplerCandidate {
  uint32_t id;
  float logit;
  float probability;
};

struct SamplerScratch {
  std::vector<float> logits;
  std::vector<SamplerCandidate> candidates;
};

// Returns the chosen id. Steps, in order: ids >= allowedVocabSize and ids the mask forbids
// (mask[id] == 0; ids at or past maskLength are forbidden when a mask is given) are excluded;
// the repeat penalty divides positive logits and multiplies negative ones of penaltyTokens;
// temperature 0 returns the argmax (lowest id on ties); otherwise logits are divided by the
// temperature, then top-k, softmax, top-p (smallest set whose mass reaches topP) and min-p
// (probability >= minP * max probability) filter, and one draw from a generator seeded with
// `seed` picks among the rest. Throws InvalidArgument when no id is left to choose.
int32_t sampleToken(const float* logits, size_t allowedVocabSize, const SamplerParams& params, const uint8_t* mask,
                    size_t maskLength, SamplerScratch& scratch);

}  // namespace nesso
