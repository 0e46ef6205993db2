// The JS class NativeContext: eval, logits, sampling, rewind, cancel, state save/load, dispose.
#pragma once

#include <napi.h>

#include <memory>

#include "addon-data.h"
#include "context.h"
#include "js-values.h"

namespace nesso {

class ModelWrap;

class ContextWrap : public Napi::ObjectWrap<ContextWrap> {
 public:
  static void define(Napi::Env env, AddonData& data);

  // Creates the JS object for a new context of `model` (the JS object is kept alive by it).
  static Napi::Object create(Napi::Env env, Napi::Object modelObject, std::shared_ptr<Model> model, size_t contextSize,
                             Dtype kvDtype);

  // Only create() constructs instances; `new` from JS throws.
  explicit ContextWrap(const Napi::CallbackInfo& info);
  ~ContextWrap() override;

  // Called by the model's dispose(): the same as dispose() from JS.
  void disposeNow();
  // Called when the model's JS object is finalized first (environment teardown).
  void detachModel() { modelWrap_ = nullptr; }

 private:
  template <Napi::Value (ContextWrap::*Method)(const Napi::CallbackInfo&)>
  Napi::Value guarded(const Napi::CallbackInfo& info) {
    return translateErrors(info.Env(), [&] { return (this->*Method)(info); });
  }

  // The context for an operation that needs it idle: throws Disposed or "busy".
  Context& idleContext(const char* operation);

  Napi::Value contextSize(const Napi::CallbackInfo& info);
  Napi::Value kvCacheType(const Napi::CallbackInfo& info);
  Napi::Value length(const Napi::CallbackInfo& info);
  Napi::Value eval(const Napi::CallbackInfo& info);
  Napi::Value getLogits(const Napi::CallbackInfo& info);
  Napi::Value sample(const Napi::CallbackInfo& info);
  Napi::Value rewind(const Napi::CallbackInfo& info);
  Napi::Value cancel(const Napi::CallbackInfo& info);
  Napi::Value saveState(const Napi::CallbackInfo& info);
  Napi::Value loadState(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<Context> context_;  // null after dispose(); workers hold their own reference
  size_t contextSize_ = 0;
  Dtype kvDtype_ = Dtype::F16;
  Napi::ObjectReference modelObject_;  // keeps the model's JS object alive while this one is
  ModelWrap* modelWrap_ = nullptr;
};

}  // namespace nesso
