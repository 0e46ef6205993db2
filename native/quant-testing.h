// The quantized kernels on the addon.testing object, for unit tests with hand-checked values.
#pragma once

#include <napi.h>

namespace nesso {

// Adds quantUnpack, quantMatVec, quantMatMul and quantDequantize to `testing`.
void addQuantTesting(Napi::Env env, Napi::Object testing);

}  // namespace nesso
