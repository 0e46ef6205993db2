// The JS class NativeModel and the loadModel() binding that creates it.
#pragma once

#include <napi.h>

#include <memory>
#include <set>

#include "addon-data.h"
#include "js-values.h"
#include "model.h"

namespace nesso {

class ContextWrap;

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static void define(Napi::Env env, AddonData& data);

  // loadModel(spec): validates the spec on the JS thread, maps and checks the weights on a worker
  // thread, resolves with a NativeModel.
  static Napi::Value loadModel(const Napi::CallbackInfo& info);

  // Only loadModel() constructs instances; `new` from JS throws.
  explicit ModelWrap(const Napi::CallbackInfo& info);
  ~ModelWrap() override;

  // Contexts register so that dispose() can dispose them first.
  void addContext(ContextWrap* context) { contexts_.insert(context); }
  void removeContext(ContextWrap* context) { contexts_.erase(context); }

 private:
  template <Napi::Value (ModelWrap::*Method)(const Napi::CallbackInfo&)>
  Napi::Value guarded(const Napi::CallbackInfo& info) {
    return translateErrors(info.Env(), [&] { return (this->*Method)(info); });
  }

  Napi::Value config(const Napi::CallbackInfo& info);
  Napi::Value threads(const Napi::CallbackInfo& info);
  Napi::Value createContext(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<Model> model_;  // null after dispose()
  Napi::ObjectReference config_;
  int threads_ = 0;
  std::set<ContextWrap*> contexts_;
};

}  // namespace nesso
