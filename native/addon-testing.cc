// addon.testing: single kernels exposed to unit tests, run with the kernels selectKernels() picks
// at the time of the call (so NESSO_MCP_SIMD switches the path between calls).

#include "addon-testing.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "config.h"
#include "forward.h"
#include "half.h"
#include "js-values.h"
#include "kernels.h"
#include "quant-testing.h"
#include "rope.h"

namespace nesso {

namespace {

constexpr int64_t kMaxTestSize = int64_t(1) << 28;

const float* floatData(const Napi::Value& value, const char* operation, const char* field, size_t* length) {
  Napi::Float32Array array = requireTypedArray(value, napi_float32_array, operation, field).As<Napi::Float32Array>();
  *length = array.ElementLength();
  return array.Data();
}

Napi::Float32Array toJs(Napi::Env env, const std::vector<float>& values) {
  Napi::Float32Array array = Napi::Float32Array::New(env, values.size());
  std::memcpy(array.Data(), values.data(), values.size() * sizeof(float));
  return array;
}

void requireLength(const char* operation, const char* field, size_t actual, size_t expected) {
  if (actual != expected) {
    fail(ErrorCode::InvalidArgument, operation, ": ", field, " has ", actual, " elements but ", expected, " are needed");
  }
}

// rmsNorm(x, weight, eps)
Napi::Value rmsNorm(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "testing.rmsNorm";
  size_t n, weightLength;
  const float* x = floatData(info[0], operation, "x", &n);
  const float* weight = floatData(info[1], operation, "weight", &weightLength);
  requireLength(operation, "weight", weightLength, n);
  if (n == 0) fail(ErrorCode::InvalidArgument, operation, ": x is empty");
  float eps = float(requireNumberInRange(info[2], operation, "eps", 0, 1));
  std::vector<float> out(n);
  selectKernels().rmsNorm(x, weight, n, eps, out.data());
  return toJs(info.Env(), out);
}

// rope(x, position, theta, traditional, freqFactors?)
Napi::Value rope(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "testing.rope";
  size_t headDim;
  const float* x = floatData(info[0], operation, "x", &headDim);
  if (headDim < 2 || headDim % 2 != 0 || headDim > size_t(kMaxHeadDim)) {
    fail(ErrorCode::InvalidArgument, operation, ": x has ", headDim, " elements but must have an even count in [2, ",
         kMaxHeadDim, "]");
  }
  size_t position = size_t(requireInteger(info[1], operation, "position", 0, kMaxContextSize));
  double theta = requireNumberInRange(info[2], operation, "theta", 1.0000001, 1e12);
  bool traditional = requireBoolean(info[3], operation, "traditional");
  std::vector<float> factors;
  if (!isMissing(info[4])) {
    size_t count;
    const float* data = floatData(info[4], operation, "freqFactors", &count);
    requireLength(operation, "freqFactors", count, headDim / 2);
    factors.assign(data, data + count);
  }

  Rope rotation(int(headDim), theta, traditional, factors, 1.0);
  std::vector<float> cos(headDim / 2), sin(headDim / 2);
  rotation.angles(position, cos.data(), sin.data());
  std::vector<float> out(x, x + headDim);
  rotation.rotate(out.data(), cos.data(), sin.data());
  return toJs(info.Env(), out);
}

// attention(q [nHeads, headDim], k [nKvHeads, T, headDim], v [nKvHeads, T, headDim], nHeads, nKvHeads, headDim, T,
//           kvType = "f32"): with kvType "f16", k and v are rounded to float16 first (saturating at ±65504) and
// attended in that form, as a context with an f16 KV cache stores them.
Napi::Value attention(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "testing.attention";
  size_t queryLength, keyLength, valueLength;
  const float* q = floatData(info[0], operation, "q", &queryLength);
  const float* k = floatData(info[1], operation, "k", &keyLength);
  const float* v = floatData(info[2], operation, "v", &valueLength);
  size_t nHeads = size_t(requireInteger(info[3], operation, "nHeads", 1, kMaxHeads));
  size_t nKvHeads = size_t(requireInteger(info[4], operation, "nKvHeads", 1, int64_t(nHeads)));
  size_t headDim = size_t(requireInteger(info[5], operation, "headDim", 1, kMaxHeadDim));
  size_t positions = size_t(requireInteger(info[6], operation, "T", 1, kMaxContextSize));
  if (nHeads % nKvHeads != 0) {
    fail(ErrorCode::InvalidArgument, operation, ": nHeads ", nHeads, " is not a multiple of nKvHeads ", nKvHeads);
  }
  requireLength(operation, "q", queryLength, nHeads * headDim);
  requireLength(operation, "k", keyLength, nKvHeads * positions * headDim);
  requireLength(operation, "v", valueLength, nKvHeads * positions * headDim);

  Dtype kvDtype = Dtype::F32;
  if (!isMissing(info[7])) {
    const std::string kvType = requireString(info[7], operation, "kvType");
    if (kvType == "f16") {
      kvDtype = Dtype::F16;
    } else if (kvType != "f32") {
      fail(ErrorCode::InvalidArgument, operation, ": kvType is \"", kvType, "\"; use \"f16\" or \"f32\"");
    }
  }
  const uint8_t* keys = reinterpret_cast<const uint8_t*>(k);
  const uint8_t* values = reinterpret_cast<const uint8_t*>(v);
  std::vector<uint16_t> halfKeys, halfValues;
  if (kvDtype == Dtype::F16) {
    for (size_t i = 0; i < keyLength; i++) halfKeys.push_back(floatToF16BitsSaturated(k[i]));
    for (size_t i = 0; i < valueLength; i++) halfValues.push_back(floatToF16BitsSaturated(v[i]));
    keys = reinterpret_cast<const uint8_t*>(halfKeys.data());
    values = reinterpret_cast<const uint8_t*>(halfValues.data());
  }
  const size_t headBytes = positions * headDim * dtypeSize(kvDtype);

  const Kernels& kernels = selectKernels();
  const size_t group = nHeads / nKvHeads;
  const float scale = 1.0f / std::sqrt(float(headDim));
  std::vector<float> scores(group * positions), scaledQueries(group * headDim), matMulScratch(kMatMulRowBlock * headDim);
  std::vector<float> out(nHeads * headDim);
  for (size_t kvHead = 0; kvHead < nKvHeads; kvHead++) {
    const size_t offset = kvHead * group * headDim;
    attendGroup(kernels, q + offset, keys + kvHead * headBytes, values + kvHead * headBytes, kvDtype, positions, headDim,
                group, scale, {scores.data(), scaledQueries.data(), matMulScratch.data()}, out.data() + offset);
  }
  return toJs(info.Env(), out);
}

// softmax(x)
Napi::Value softmax(const Napi::CallbackInfo& info) {
  size_t n;
  const float* x = floatData(info[0], "testing.softmax", "x", &n);
  std::vector<float> out(x, x + n);
  selectKernels().softmax(out.data(), n);
  return toJs(info.Env(), out);
}

// siluMul(gate, up) = silu(gate) ⊙ up
Napi::Value siluMul(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "testing.siluMul";
  size_t n, upLength;
  const float* gate = floatData(info[0], operation, "gate", &n);
  const float* up = floatData(info[1], operation, "up", &upLength);
  requireLength(operation, "up", upLength, n);
  std::vector<float> out(gate, gate + n);
  selectKernels().siluMul(out.data(), up, n);
  return toJs(info.Env(), out);
}

Matrix weightMatrix(const Napi::CallbackInfo& info, const char* operation, size_t* rows, size_t* cols) {
  Napi::Uint8Array bytes = requireTypedArray(info[0], napi_uint8_array, operation, "weights").As<Napi::Uint8Array>();
  std::string dtypeText = requireString(info[1], operation, "dtype");
  Dtype dtype;
  if (!parseDtype(dtypeText, &dtype)) {
    fail(ErrorCode::InvalidArgument, operation, ": dtype \"", dtypeText, "\" is not one of F32, F16, BF16");
  }
  *rows = size_t(requireInteger(info[2], operation, "rows", 1, kMaxTestSize));
  *cols = size_t(requireInteger(info[3], operation, "cols", 1, kMaxTestSize));
  requireLength(operation, "weights (bytes)", bytes.ByteLength(), *rows * *cols * dtypeSize(dtype));
  return makeMatrix(bytes.Data(), dtype, *rows, *cols);
}

// matVec(weights, dtype, rows, cols, x [cols]) -> [rows]
Napi::Value matVec(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "testing.matVec";
  size_t rows, cols, xLength;
  Matrix weights = weightMatrix(info, operation, &rows, &cols);
  const float* x = floatData(info[4], operation, "x", &xLength);
  requireLength(operation, "x", xLength, cols);
  std::vector<float> y(rows);
  selectKernels().matVec(weights, 0, rows, x, y.data());
  return toJs(info.Env(), y);
}

// matMul(weights, dtype, rows, cols, x [tokens, cols], tokens) -> [tokens, rows]
Napi::Value matMul(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "testing.matMul";
  size_t rows, cols, xLength;
  Matrix weights = weightMatrix(info, operation, &rows, &cols);
  const float* x = floatData(info[4], operation, "x", &xLength);
  size_t tokens = size_t(requireInteger(info[5], operation, "tokens", 1, kMaxTestSize));
  requireLength(operation, "x", xLength, tokens * cols);
  std::vector<float> y(tokens * rows), scratch(kMatMulRowBlock * cols);
  selectKernels().matMul(weights, 0, rows, x, tokens, y.data(), rows, scratch.data());
  return toJs(info.Env(), y);
}

template <Napi::Value (*Function)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  return translateErrors(info.Env(), [&] { return Function(info); });
}

}  // namespace

Napi::Object createTestingObject(Napi::Env env) {
  Napi::Object testing = Napi::Object::New(env);
  testing.Set("rmsNorm", Napi::Function::New(env, guarded<rmsNorm>, "rmsNorm"));
  testing.Set("rope", Napi::Function::New(env, guarded<rope>, "rope"));
  testing.Set("attention", Napi::Function::New(env, guarded<attention>, "attention"));
  testing.Set("matVec", Napi::Function::New(env, guarded<matVec>, "matVec"));
  testing.Set("matMul", Napi::Function::New(env, guarded<matMul>, "matMul"));
  testing.Set("softmax", Napi::Function::New(env, guarded<softmax>, "softmax"));
  testing.Set("siluMul", Napi::Function::New(env, guarded<siluMul>, "siluMul"));
  addQuantTesting(env, testing);
  return testing;
}

}  // namespace nesso
