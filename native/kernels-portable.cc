// Plain C++ kernels: the reference path, and the fallback on CPUs without a SIMD path.

#include <cmath>
#include <cstring>

#include "half.h"
#include "kernels.h"

namespace nesso {

namespace {

template <int DtypeCode>
float dotRow(const uint8_t* row, const float* x, size_t cols) {
  float sum = 0.0f;
  for (size_t k = 0; k < cols; k++) sum += loadElement(row, DtypeCode, k) * x[k];
  return sum;
}

template <int DtypeCode>
void matVecTyped(const Matrix& weights, size_t rowBegin, size_t rowEnd, const float* x, float* y) {
  for (size_t r = rowBegin; r < rowEnd; r++) {
    y[r] = dotRow<DtypeCode>(weights.data + r * weights.rowBytes, x, weights.cols);
  }
}

void matVec(const Matrix& weights, size_t rowBegin, size_t rowEnd, const float* x, float* y) {
  switch (weights.dtype) {
    case Dtype::F32: matVecTyped<0>(weights, rowBegin, rowEnd, x, y); break;
    case Dtype::F16: matVecTyped<1>(weights, rowBegin, rowEnd, x, y); break;
    case Dtype::BF16: matVecTyped<2>(weights, rowBegin, rowEnd, x, y); break;
  }
}

// One matVec per token: slow but obviously right.
void matMul(const Matrix& weights, size_t rowBegin, size_t rowEnd, const float* x, size_t tokens, float* y, size_t ldy,
            float* scratch) {
  for (size_t t = 0; t < tokens; t++) {
    matVec(weights, rowBegin, rowEnd, x + t * weights.cols, y + t * ldy);
  }
}

float dot(const float* a, const float* b, size_t n) {
  float sum = 0.0f;
  for (size_t i = 0; i < n; i++) sum += a[i] * b[i];
  return sum;
}

void axpy(float a, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

void weightedSum(const float* weights, size_t groups, const uint8_t* rows, Dtype rowsDtype, size_t n, size_t width,
                 float* out) {
  const size_t rowBytes = width * dtypeSize(rowsDtype);
  for (size_t g = 0; g < groups; g++) {
    float* target = out + g * width;
    for (size_t d = 0; d < width; d++) target[d] = 0.0f;
    for (size_t j = 0; j < n; j++) {
      const float weight = weights[g * n + j];
      const uint8_t* row = rows + j * rowBytes;
      for (size_t d = 0; d < width; d++) target[d] += weight * loadElement(row, int(rowsDtype), d);
    }
  }
}

void toFloat(const uint8_t* source, Dtype dtype, size_t n, float* destination) {
  if (dtype == Dtype::F32) {
    std::memcpy(destination, source, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; i++) destination[i] = loadElement(source, int(dtype), i);
}

}  // namespace

void portableRmsNorm(const float* x, const float* weight, size_t n, float eps, float* out) {
  float sumOfSquares = 0.0f;
  for (size_t i = 0; i < n; i++) sumOfSquares += x[i] * x[i];
  float inverseRms = 1.0f / std::sqrt(sumOfSquares / float(n) + eps);
  for (size_t i = 0; i < n; i++) out[i] = weight[i] * (x[i] * inverseRms);
}

void portableSiluMul(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float z = gate[i];
    gate[i] = z / (1.0f + std::exp(-z)) * up[i];
  }
}

void portableSoftmax(float* values, size_t n) {
  float max = -INFINITY;
  for (size_t i = 0; i < n; i++) max = values[i] > max ? values[i] : max;
  if (max == -INFINITY) {
    // Nothing is allowed; callers never pass such a row, but keep the output defined.
    for (size_t i = 0; i < n; i++) values[i] = 0.0f;
    return;
  }
  float sum = 0.0f;
  for (size_t i = 0; i < n; i++) {
    values[i] = std::exp(values[i] - max);
    sum += values[i];
  }
  float inverse = 1.0f / sum;
  for (size_t i = 0; i < n; i++) values[i] *= inverse;
}

const Kernels& portableKernels() {
  static constexpr Kernels kernels = {
      "portable", matVec, matMul, dot, axpy, weightedSum, toFloat, portableRmsNorm, portableSiluMul, portableSoftmax,
  };
  return kernels;
}

}  // namespace nesso
