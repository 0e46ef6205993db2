#include "addon-context.h"

#include <cstring>

#include "addon-model.h"
#include "promise-worker.h"

namespace nesso {

namespace {

constexpr int64_t kMaxSafeInteger = (int64_t(1) << 53) - 1;
// 128 tokens: about 0.6 s of prefill on a 2-core x86_64 machine, the delay before a cancel takes
// effect; 64 made prefill 4-8% slower there (measured with bench/native-speed.ts).
constexpr size_t kDefaultChunkSize = 128;

thread_local std::shared_ptr<Context>* pendingContext = nullptr;

class EvalWorker : public PromiseWorker {
 public:
  EvalWorker(Napi::Env env, std::shared_ptr<Context> context, std::vector<int32_t> tokens, size_t chunkSize)
      : PromiseWorker(env, "eval"), context_(std::move(context)), tokens_(std::move(tokens)), chunkSize_(chunkSize) {}

 protected:
  void compute() override { result_ = context_->evaluate(tokens_, chunkSize_); }
  void finished() override { context_->busy.store(false); }
  Napi::Value result(Napi::Env env) override {
    Napi::Object object = Napi::Object::New(env);
    object.Set("evaluated", double(result_.evaluated));
    object.Set("cancelled", result_.cancelled);
    return object;
  }

 private:
  std::shared_ptr<Context> context_;
  std::vector<int32_t> tokens_;
  size_t chunkSize_;
  EvalResult result_;
};

class SaveStateWorker : public PromiseWorker {
 public:
  SaveStateWorker(Napi::Env env, std::shared_ptr<Context> context, size_t tokens, Napi::ArrayBuffer buffer)
      : PromiseWorker(env, "saveState"),
        context_(std::move(context)),
        tokens_(tokens),
        destination_(static_cast<uint8_t*>(buffer.Data())),
        buffer_(Napi::Persistent(buffer)) {}

 protected:
  void compute() override { context_->saveState(tokens_, destination_); }
  void finished() override { context_->busy.store(false); }
  Napi::Value result(Napi::Env env) override {
    Napi::ArrayBuffer buffer = buffer_.Value();
    return Napi::Uint8Array::New(env, buffer.ByteLength(), buffer, 0);
  }

 private:
  std::shared_ptr<Context> context_;
  size_t tokens_;
  uint8_t* destination_;
  Napi::Reference<Napi::ArrayBuffer> buffer_;  // filled on the worker thread, unseen by JS until resolved
};

class LoadStateWorker : public PromiseWorker {
 public:
  LoadStateWorker(Napi::Env env, std::shared_ptr<Context> context, Napi::TypedArray state)
      : PromiseWorker(env, "loadState"),
        context_(std::move(context)),
        source_(static_cast<const uint8_t*>(state.ArrayBuffer().Data()) + state.ByteOffset()),
        size_(state.ByteLength()),
        state_(Napi::Persistent(state)) {}

 protected:
  void compute() override { context_->loadState(source_, size_); }
  void finished() override { context_->busy.store(false); }

 private:
  std::shared_ptr<Context> context_;
  const uint8_t* source_;
  size_t size_;
  Napi::Reference<Napi::TypedArray> state_;  // keeps the bytes alive while the worker reads them
};

SamplerParams parseSamplerParams(const Napi::Value& value, int vocabSize) {
  constexpr const char* operation = "sample";
  Napi::Object object = requireObject(value, operation, "params");
  SamplerParams params;
  params.temperature = float(requireNumberInRange(object.Get("temperature"), operation, "params.temperature", 0, 1e6));
  params.topK = int(requireInteger(object.Get("topK"), operation, "params.topK", 0, INT32_MAX));
  params.topP = float(requireNumberInRange(object.Get("topP"), operation, "params.topP", 0, 1));
  params.minP = float(requireNumberInRange(object.Get("minP"), operation, "params.minP", 0, 1));
  params.repeatPenalty =
      float(requireNumberInRange(object.Get("repeatPenalty"), operation, "params.repeatPenalty", 1e-6, 1e6));
  params.seed = uint64_t(requireInteger(object.Get("seed"), operation, "params.seed", -kMaxSafeInteger, kMaxSafeInteger));

  Napi::Value penaltyTokens = object.Get("penaltyTokens");
  if (!isMissing(penaltyTokens)) {
    Napi::Int32Array ids =
        requireTypedArray(penaltyTokens, napi_int32_array, operation, "params.penaltyTokens").As<Napi::Int32Array>();
    for (size_t i = 0; i < ids.ElementLength(); i++) {
      if (ids[i] < 0 || ids[i] >= vocabSize) {
        fail(ErrorCode::InvalidArgument, "sample: params.penaltyTokens[", i, "] is ", ids[i], " but token ids are in [0, ",
             vocabSize, ")");
      }
    }
    params.penaltyTokens.assign(ids.Data(), ids.Data() + ids.ElementLength());
  }
  return params;
}

}  // namespace

void ContextWrap::define(Napi::Env env, AddonData& data) {
  Napi::Function constructor = DefineClass(
      env, "NativeContext",
      {
          InstanceAccessor("contextSize", &ContextWrap::guarded<&ContextWrap::contextSize>, nullptr),
          InstanceAccessor("kvCacheType", &ContextWrap::guarded<&ContextWrap::kvCacheType>, nullptr),
          InstanceAccessor("length", &ContextWrap::guarded<&ContextWrap::length>, nullptr),
          InstanceMethod("eval", &ContextWrap::guarded<&ContextWrap::eval>),
          InstanceMethod("getLogits", &ContextWrap::guarded<&ContextWrap::getLogits>),
          InstanceMethod("sample", &ContextWrap::guarded<&ContextWrap::sample>),
          InstanceMethod("rewind", &ContextWrap::guarded<&ContextWrap::rewind>),
          InstanceMethod("cancel", &ContextWrap::guarded<&ContextWrap::cancel>),
          InstanceMethod("saveState", &ContextWrap::guarded<&ContextWrap::saveState>),
          InstanceMethod("loadState", &ContextWrap::guarded<&ContextWrap::loadState>),
          InstanceMethod("dispose", &ContextWrap::guarded<&ContextWrap::dispose>),
      });
  data.contextConstructor = Napi::Persistent(constructor);
}

Napi::Object ContextWrap::create(Napi::Env env, Napi::Object modelObject, std::shared_ptr<Model> model,
                                 size_t contextSize, Dtype kvDtype) {
  auto context = std::make_shared<Context>(std::move(model), contextSize, kvDtype);
  AddonData* data = env.GetInstanceData<AddonData>();
  pendingContext = &context;
  Napi::Object object;
  try {
    object = data->contextConstructor.New({modelObject});
  } catch (...) {
    pendingContext = nullptr;
    throw;
  }
  pendingContext = nullptr;
  return object;
}

ContextWrap::ContextWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ContextWrap>(info) {
  if (pendingContext == nullptr) {
    throw Napi::TypeError::New(info.Env(),
                               "[INVALID_ARGUMENT] NativeContext cannot be constructed directly; use model.createContext()");
  }
  context_ = *pendingContext;
  contextSize_ = context_->cache().contextSize();
  kvDtype_ = context_->cache().dtype();
  Napi::Object modelObject = info[0].As<Napi::Object>();
  modelObject_ = Napi::Persistent(modelObject);
  modelWrap_ = ModelWrap::Unwrap(modelObject);
  modelWrap_->addContext(this);
}

ContextWrap::~ContextWrap() {
  if (modelWrap_ != nullptr) modelWrap_->removeContext(this);
}

void ContextWrap::disposeNow() {
  // An eval still running keeps its own reference; the KV cache is freed when it finishes.
  context_.reset();
  if (modelWrap_ != nullptr) {
    modelWrap_->removeContext(this);
    modelWrap_ = nullptr;
  }
  modelObject_.Reset();
}

Context& ContextWrap::idleContext(const char* operation) {
  if (!context_) fail(ErrorCode::Disposed, "NativeContext.", operation, "()");
  if (context_->busy.load()) {
    fail(ErrorCode::InvalidArgument, operation,
         ": the context is busy with another eval, saveState or loadState; await it before calling ", operation);
  }
  return *context_;
}

Napi::Value ContextWrap::contextSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(contextSize_));
}

Napi::Value ContextWrap::kvCacheType(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), kvDtype_ == Dtype::F32 ? "f32" : "f16");
}

Napi::Value ContextWrap::length(const Napi::CallbackInfo& info) {
  // Reads the length even during an eval: it changes only when a chunk completes.
  return Napi::Number::New(info.Env(), context_ ? double(context_->length()) : 0.0);
}

Napi::Value ContextWrap::eval(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "eval";
  Context& context = idleContext(operation);
  const ModelConfig& config = context.model().config;

  Napi::TypedArray array = requireTypedArray(info[0], napi_int32_array, operation, "tokens");
  Napi::Int32Array ids = array.As<Napi::Int32Array>();
  const size_t count = ids.ElementLength();
  if (count == 0) fail(ErrorCode::InvalidArgument, "eval: tokens is empty; pass at least one token id");
  std::vector<int32_t> tokens(ids.Data(), ids.Data() + count);
  for (size_t i = 0; i < count; i++) {
    if (tokens[i] < 0 || tokens[i] >= config.vocabSize) {
      fail(ErrorCode::InvalidArgument, "eval: tokens[", i, "] is ", tokens[i], " but token ids are in [0, ",
           config.vocabSize, ")");
    }
  }

  size_t chunkSize = kDefaultChunkSize;
  if (!isMissing(info[1])) {
    Napi::Object options = requireObject(info[1], operation, "options");
    Napi::Value chunkValue = options.Get("chunkSize");
    if (!isMissing(chunkValue)) {
      chunkSize = size_t(requireInteger(chunkValue, operation, "options.chunkSize", 1, kMaxContextSize));
    }
  }

  const size_t length = context.length();
  if (count > contextSize_ - length) {
    fail(ErrorCode::ContextFull, "eval: ", count, " tokens at position ", length, " exceed contextSize ", contextSize_,
         " (rewind the context or create a larger one)");
  }

  context.cancelRequested.store(false);
  context.busy.store(true);
  auto* worker = new EvalWorker(info.Env(), context_, std::move(tokens), chunkSize);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value ContextWrap::getLogits(const Napi::CallbackInfo& info) {
  Context& context = idleContext("getLogits");
  if (!context.hasLogits()) {
    fail(ErrorCode::InvalidArgument, "getLogits: there are no logits for the current position; eval at least one token first");
  }
  const std::vector<float>& logits = context.logits();
  Napi::Float32Array copy = Napi::Float32Array::New(info.Env(), logits.size());
  std::memcpy(copy.Data(), logits.data(), logits.size() * sizeof(float));
  return copy;
}

Napi::Value ContextWrap::sample(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "sample";
  Context& context = idleContext(operation);
  const ModelConfig& config = context.model().config;
  if (!context.hasLogits()) {
    fail(ErrorCode::InvalidArgument, "sample: there are no logits for the current position; eval at least one token first");
  }
  SamplerParams params = parseSamplerParams(info[0], config.vocabSize);

  const uint8_t* mask = nullptr;
  size_t maskLength = 0;
  if (!isMissing(info[1])) {
    Napi::Uint8Array array = requireTypedArray(info[1], napi_uint8_array, operation, "mask").As<Napi::Uint8Array>();
    maskLength = array.ElementLength();
    if (maskLength < size_t(config.tokenizerVocabSize) || maskLength > size_t(config.vocabSize)) {
      fail(ErrorCode::InvalidArgument, "sample: mask has ", maskLength, " entries but needs one per token id: between ",
           config.tokenizerVocabSize, " (tokenizer) and ", config.vocabSize, " (embedding rows)");
    }
    mask = array.Data();
  }
  return Napi::Number::New(info.Env(), context.sample(params, mask, maskLength));
}

Napi::Value ContextWrap::rewind(const Napi::CallbackInfo& info) {
  Context& context = idleContext("rewind");
  size_t n = size_t(requireInteger(info[0], "rewind", "n", 0, int64_t(context.length())));
  context.rewind(n);
  return info.Env().Undefined();
}

Napi::Value ContextWrap::cancel(const Napi::CallbackInfo& info) {
  // A no-op after dispose(), so an abort listener that fires late does not throw.
  if (context_) context_->cancelRequested.store(true, std::memory_order_release);
  return info.Env().Undefined();
}

Napi::Value ContextWrap::saveState(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "saveState";
  Context& context = idleContext(operation);
  size_t tokens = context.length();
  if (!isMissing(info[0])) tokens = size_t(requireInteger(info[0], operation, "n", 0, int64_t(context.length())));

  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(info.Env(), context.stateSize(tokens));
  context.busy.store(true);
  auto* worker = new SaveStateWorker(info.Env(), context_, tokens, buffer);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value ContextWrap::loadState(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "loadState";
  Context& context = idleContext(operation);
  Napi::TypedArray state = requireTypedArray(info[0], napi_uint8_array, operation, "state");
  context.busy.store(true);
  auto* worker = new LoadStateWorker(info.Env(), context_, state);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value ContextWrap::dispose(const Napi::CallbackInfo& info) {
  disposeNow();
  return info.Env().Undefined();
}

}  // namespace nesso
