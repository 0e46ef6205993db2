// addon.testing's quantized kernels, run with the SIMD path selectKernels() picks at the time of
// the call (NESSO_MCP_SIMD switches it between calls).

#include "quant-testing.h"

#include <cstring>
#include <vector>

#include "config.h"
#include "errors.h"
#include "js-values.h"
#include "kernels.h"
#include "quant.h"

namespace nesso {

namespace {

constexpr int64_t kMaxTestSize = int64_t(1) << 28;

Napi::Float32Array toJs(Napi::Env env, const std::vector<float>& values) {
  Napi::Float32Array array = Napi::Float32Array::New(env, values.size());
  std::memcpy(array.Data(), values.data(), values.size() * sizeof(float));
  return array;
}

const float* floatData(const Napi::Value& value, const char* operation, const char* field, size_t expected) {
  Napi::Float32Array array = requireTypedArray(value, napi_float32_array, operation, field).As<Napi::Float32Array>();
  if (array.ElementLength() != expected) {
    fail(ErrorCode::InvalidArgument, operation, ": ", field, " has ", array.ElementLength(), " elements but ", expected,
         " are needed");
  }
  return array.Data();
}

// Arguments 0..6: packed (Uint8Array, may start at any byte offset), scales, biases
// (Float32Array [rows, cols / groupSize]), bits, groupSize, rows, cols.
QuantizedMatrix quantizedArgument(const Napi::CallbackInfo& info, const char* operation) {
  QuantizedMatrix matrix;
  matrix.bits = int(requireInteger(info[3], operation, "bits", 2, 8));
  matrix.groupSize = int(requireInteger(info[4], operation, "groupSize", 32, 128));
  if (!isAffineBits(matrix.bits) || !isAffineGroupSize(matrix.groupSize)) {
    fail(ErrorCode::InvalidArgument, operation, ": bits ", matrix.bits, " and groupSize ", matrix.groupSize,
         " must be in {2, 3, 4, 5, 6, 8} and {32, 64, 128}");
  }
  matrix.rows = size_t(requireInteger(info[5], operation, "rows", 1, kMaxTestSize));
  matrix.cols = size_t(requireInteger(info[6], operation, "cols", 1, kMaxTestSize));
  if (matrix.cols % size_t(matrix.groupSize) != 0) {
    fail(ErrorCode::InvalidArgument, operation, ": cols ", matrix.cols, " is not a multiple of groupSize ", matrix.groupSize);
  }
  matrix.packedRowBytes = matrix.cols * size_t(matrix.bits) / 8;
  matrix.groupsPerRow = matrix.cols / size_t(matrix.groupSize);

  Napi::Uint8Array packed = requireTypedArray(info[0], napi_uint8_array, operation, "packed").As<Napi::Uint8Array>();
  if (packed.ByteLength() != matrix.rows * matrix.packedRowBytes) {
    fail(ErrorCode::InvalidArgument, operation, ": packed has ", packed.ByteLength(), " bytes but ",
         matrix.rows * matrix.packedRowBytes, " are needed");
  }
  matrix.packed = packed.Data();
  matrix.scales = floatData(info[1], operation, "scales", matrix.rows * matrix.groupsPerRow);
  matrix.biases = floatData(info[2], operation, "biases", matrix.rows * matrix.groupsPerRow);
  return matrix;
}

LinearWeights linearOf(const QuantizedMatrix& matrix) {
  LinearWeights weights;
  weights.isQuantized = true;
  weights.quantized = matrix;
  return weights;
}

// quantUnpack(packed, bits, count) -> Uint8Array of `count` codes
Napi::Value quantUnpack(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "testing.quantUnpack";
  Napi::Uint8Array packed = requireTypedArray(info[0], napi_uint8_array, operation, "packed").As<Napi::Uint8Array>();
  int bits = int(requireInteger(info[1], operation, "bits", 2, 8));
  size_t count = size_t(requireInteger(info[2], operation, "count", 0, kMaxTestSize));
  // unpackCodes reads the byte after a code that straddles into it, so the codes must fit.
  if ((count * size_t(bits) + 7) / 8 > packed.ByteLength()) {
    fail(ErrorCode::InvalidArgument, operation, ": ", count, " codes of ", bits, " bits need ", (count * size_t(bits) + 7) / 8,
         " bytes but packed has ", packed.ByteLength());
  }
  Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), count);
  unpackCodes(packed.Data(), bits, 0, count, out.Data());
  return out;
}

// quantMatVec(packed, scales, biases, bits, groupSize, rows, cols, x [cols]) -> [rows]
Napi::Value quantMatVec(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "testing.quantMatVec";
  QuantizedMatrix matrix = quantizedArgument(info, operation);
  const float* x = floatData(info[7], operation, "x", matrix.cols);
  const Kernels& kernels = selectKernels();
  std::vector<float> y(matrix.rows);
  linearMatVec(kernels, quantKernelsFor(kernels), linearOf(matrix), 0, matrix.rows, x, y.data());
  return toJs(info.Env(), y);
}

// quantMatMul(packed, scales, biases, bits, groupSize, rows, cols, x [tokens, cols], tokens) -> [tokens, rows]
Napi::Value quantMatMul(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "testing.quantMatMul";
  QuantizedMatrix matrix = quantizedArgument(info, operation);
  size_t tokens = size_t(requireInteger(info[8], operation, "tokens", 1, kMaxTestSize));
  const float* x = floatData(info[7], operation, "x", tokens * matrix.cols);
  const Kernels& kernels = selectKernels();
  std::vector<float> y(tokens * matrix.rows), scratch(kMatMulRowBlock * matrix.cols);
  linearMatMul(kernels, quantKernelsFor(kernels), linearOf(matrix), 0, matrix.rows, x, tokens, y.data(), matrix.rows,
               scratch.data());
  return toJs(info.Env(), y);
}

// quantDequantize(packed, scales, biases, bits, groupSize, rows, cols) -> [rows, cols]
Napi::Value quantDequantize(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "testing.quantDequantize";
  QuantizedMatrix matrix = quantizedArgument(info, operation);
  const Kernels& kernels = selectKernels();
  std::vector<float> out(matrix.rows * matrix.cols);
  for (size_t r = 0; r < matrix.rows; r++) {
    linearRow(kernels, quantKernelsFor(kernels), linearOf(matrix), r, out.data() + r * matrix.cols);
  }
  return toJs(info.Env(), out);
}

template <Napi::Value (*Function)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  return translateErrors(info.Env(), [&] { return Function(info); });
}

}  // namespace

void addQuantTesting(Napi::Env env, Napi::Object testing) {
  testing.Set("quantUnpack", Napi::Function::New(env, guarded<quantUnpack>, "quantUnpack"));
  testing.Set("quantMatVec", Napi::Function::New(env, guarded<quantMatVec>, "quantMatVec"));
  testing.Set("quantMatMul", Napi::Function::New(env, guarded<quantMatMul>, "quantMatMul"));
  testing.Set("quantDequantize", Napi::Function::New(env, guarded<quantDequantize>, "quantDequantize"));
}

}  // namespace nesso
