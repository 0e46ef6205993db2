// The addon.testing object: single kernels for unit tests with hand-computed values.
#pragma once

#include <napi.h>

namespace nesso {

Napi::Object createTestingObject(Napi::Env env);

}  // namespace nesso
