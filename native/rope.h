// Rotary position embedding (RoPE) as mlx-lm applies it to Llama queries and keys.
#pragma once

#include <cstddef>
#include <vector>

namespace nesso {

class Rope {
 public:
  // inverseFrequency[i] = theta^(-2i / headDim) / freqFactors[i] (factors 1 when empty), and the
  // angle at position p is (p * positionScale) * inverseFrequency[i].
  Rope(int headDim, double theta, bool traditional, const std::vector<float>& freqFactors, double positionScale);

  int headDim() const { return headDim_; }

  // Fills cos[i] and sin[i] (i < headDim/2) for one position. Angles are computed in double, so
  // positions in the thousands keep full float32 accuracy.
  void angles(size_t position, float* cos, float* sin) const;

  // Rotates one head vector [headDim] in place. Non-traditional ("rotate-half") pairs element i
  // with i + headDim/2; traditional pairs 2i with 2i + 1.
  void rotate(float* head, const float* cos, const float* sin) const;

 private:
  int headDim_;
  bool traditional_;
  double positionScale_;
  std::vector<double> inverseFrequency_;  // [headDim/2]
};

}  // namespace nesso
