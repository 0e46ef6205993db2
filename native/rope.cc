#include "rope.h"

#include <cmath>

namespace nesso {

Rope::Rope(int headDim, double theta, bool traditional, const std::vector<float>& freqFactors, double positionScale)
    : headDim_(headDim), traditional_(traditional), positionScale_(positionScale) {
  const int half = headDim / 2;
  inverseFrequency_.resize(size_t(half));
  for (int i = 0; i < half; i++) {
    double inverse = std::pow(theta, -2.0 * double(i) / double(headDim));
    if (!freqFactors.empty()) inverse /= double(freqFactors[size_t(i)]);
    inverseFrequency_[size_t(i)] = inverse;
  }
}

void Rope::angles(size_t position, float* cos, float* sin) const {
  const double scaledPosition = double(position) * positionScale_;
  for (size_t i = 0; i < inverseFrequency_.size(); i++) {
    double angle = scaledPosition * inverseFrequency_[i];
    cos[i] = float(std::cos(angle));
    sin[i] = float(std::sin(angle));
  }
}

void Rope::rotate(float* head, const float* cos, const float* sin) const {
  const size_t half = size_t(headDim_ / 2);
  for (size_t i = 0; i < half; i++) {
    // (first, second) is the pair that rotates by angle i.
    float* first = traditional_ ? head + 2 * i : head + i;
    float* second = traditional_ ? head + 2 * i + 1 : head + i + half;
    float a = *first;
    float b = *second;
    *first = a * cos[i] - b * sin[i];
    *second = a * sin[i] + b * cos[i];
  }
}

}  // namespace nesso
