// Module entry point of nesso_native.node: loadModel, setLogger, simdPath, physicalCores, testing,
// and the token-mask classes GrammarVocabulary and TokenMasker.
// The JS-side contract is src/engine/native-api.ts.

#include <napi.h>

#include "addon-context.h"
#include "addon-data.h"
#include "addon-grammar.h"
#include "addon-model.h"
#include "addon-testing.h"
#include "cpu.h"
#include "js-values.h"
#include "kernels.h"
#include "log.h"

namespace nesso {

namespace {

Napi::Value setLogger(const Napi::CallbackInfo& info) {
  return translateErrors(info.Env(), [&]() -> Napi::Value {
    Napi::Value callback = info[0];
    if (!isMissing(callback) && !callback.IsFunction()) {
      fail(ErrorCode::InvalidArgument, "setLogger: callback must be a function or null but is ", describe(callback));
    }
    setLogCallback(info.Env(), callback);
    return info.Env().Undefined();
  });
}

Napi::Value simdPath(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), selectKernels().name);
}

Napi::Value physicalCores(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), physicalCoreCount());
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);
  ModelWrap::define(env, *data);
  ContextWrap::define(env, *data);

  exports.Set("loadModel", Napi::Function::New(env, ModelWrap::loadModel, "loadModel"));
  exports.Set("setLogger", Napi::Function::New(env, setLogger, "setLogger"));
  exports.Set("simdPath", Napi::Function::New(env, simdPath, "simdPath"));
  exports.Set("physicalCores", Napi::Function::New(env, physicalCores, "physicalCores"));
  exports.Set("testing", createTestingObject(env));
  exports.Set("GrammarVocabulary", GrammarVocabularyWrap::define(env));
  exports.Set("TokenMasker", TokenMaskerWrap::define(env));
  return exports;
}

}  // namespace

}  // namespace nesso

// NODE_API_MODULE pastes the function name into an identifier, so it needs an unqualified one.
static Napi::Object initNessoNative(Napi::Env env, Napi::Object exports) {
  return nesso::init(env, exports);
}

NODE_API_MODULE(nesso_native, initNessoNative)
