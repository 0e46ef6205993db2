// Per-environment data of the addon (one per Node.js main thread or worker thread).
#pragma once

#include <napi.h>

namespace nesso {

struct AddonData {
  Napi::FunctionReference modelConstructor;
  Napi::FunctionReference contextConstructor;
};

}  // namespace nesso
