#include "addon-model.h"

#include <cmath>
#include <cstring>

#include "addon-context.h"
#include "cpu.h"
#include "promise-worker.h"

namespace nesso {

namespace {

constexpr const char* kLoadModel = "loadModel";
constexpr int64_t kMaxSafeInteger = (int64_t(1) << 53) - 1;
constexpr int64_t kMaxThreads = 1024;

// The model handed to the constructor by loadModel(); null whenever JS could call `new`.
thread_local std::shared_ptr<Model>* pendingModel = nullptr;

// ---- Spec parsing (JS thread) -----------------------------------------------------------------

int intField(const Napi::Object& object, const char* name) {
  return int(requireInteger(object.Get(name), kLoadModel, concat("config.", name), 1, INT32_MAX));
}

ModelConfig parseConfig(const Napi::Value& value) {
  Napi::Object object = requireObject(value, kLoadModel, "spec.config");
  ModelConfig config;
  config.dim = intField(object, "dim");
  config.nLayers = intField(object, "nLayers");
  config.nHeads = intField(object, "nHeads");
  config.nKvHeads = intField(object, "nKvHeads");
  config.headDim = intField(object, "headDim");
  config.ffnDim = intField(object, "ffnDim");
  config.vocabSize = intField(object, "vocabSize");
  config.tokenizerVocabSize = intField(object, "tokenizerVocabSize");
  config.maxContextSize = intField(object, "maxContextSize");
  config.rmsNormEps = float(requireNumber(object.Get("rmsNormEps"), kLoadModel, "config.rmsNormEps"));
  config.ropeTheta = requireNumber(object.Get("ropeTheta"), kLoadModel, "config.ropeTheta");
  config.ropePositionScale = requireNumber(object.Get("ropePositionScale"), kLoadModel, "config.ropePositionScale");
  config.ropeTraditional = requireBoolean(object.Get("ropeTraditional"), kLoadModel, "config.ropeTraditional");
  config.tieWordEmbeddings = requireBoolean(object.Get("tieWordEmbeddings"), kLoadModel, "config.tieWordEmbeddings");
  config.attentionBias = requireBoolean(object.Get("attentionBias"), kLoadModel, "config.attentionBias");
  config.mlpBias = requireBoolean(object.Get("mlpBias"), kLoadModel, "config.mlpBias");

  Napi::Value factors = object.Get("ropeFreqFactors");
  if (!isMissing(factors)) {
    Napi::TypedArray array = requireTypedArray(factors, napi_float32_array, kLoadModel, "config.ropeFreqFactors");
    const float* data = array.As<Napi::Float32Array>().Data();
    config.ropeFreqFactors.assign(data, data + array.ElementLength());
  }
  validateConfig(config);
  return config;
}

std::vector<std::string> parseFiles(const Napi::Value& value) {
  if (!value.IsArray()) {
    fail(ErrorCode::InvalidArgument, "loadModel: spec.files must be an array of paths but is ", describe(value));
  }
  Napi::Array array = value.As<Napi::Array>();
  if (array.Length() == 0) fail(ErrorCode::InvalidArgument, "loadModel: spec.files is empty; list the safetensors files");
  std::vector<std::string> files;
  for (uint32_t i = 0; i < array.Length(); i++) {
    std::string path = requireString(array.Get(i), kLoadModel, concat("spec.files[", i, "]"));
    if (path.empty() || path.find('\0') != std::string::npos) {
      fail(ErrorCode::InvalidArgument, "loadModel: spec.files[", i, "] is not a valid path");
    }
    files.push_back(path);
  }
  return files;
}

TensorSpec parseTensor(const Napi::Value& value, uint32_t index, size_t fileCount) {
  const std::string field = concat("spec.tensors[", index, "]");
  Napi::Object object = requireObject(value, kLoadModel, field);
  TensorSpec tensor;
  tensor.name = requireString(object.Get("name"), kLoadModel, field + ".name");
  tensor.file = size_t(requireInteger(object.Get("file"), kLoadModel, field + ".file", 0, int64_t(fileCount) - 1));
  tensor.dtypeText = requireString(object.Get("dtype"), kLoadModel, field + ".dtype");
  tensor.dtypeSupported = parseDtype(tensor.dtypeText, &tensor.dtype);

  Napi::Value shape = object.Get("shape");
  if (!shape.IsArray()) {
    fail(ErrorCode::InvalidArgument, "loadModel: ", field, ".shape must be an array of integers but is ", describe(shape));
  }
  Napi::Array dimensions = shape.As<Napi::Array>();
  for (uint32_t i = 0; i < dimensions.Length(); i++) {
    tensor.shape.push_back(
        uint64_t(requireInteger(dimensions.Get(i), kLoadModel, concat(field, ".shape[", i, "]"), 0, kMaxSafeInteger)));
  }
  Napi::Value quantization = object.Get("quantization");
  if (!isMissing(quantization)) {
    Napi::Object parameters = requireObject(quantization, kLoadModel, field + ".quantization");
    tensor.bits = int(requireInteger(parameters.Get("bits"), kLoadModel, field + ".quantization.bits", 2, 8));
    tensor.groupSize =
        int(requireInteger(parameters.Get("groupSize"), kLoadModel, field + ".quantization.groupSize", 32, 128));
    if (tensor.dtypeText != "U32") {
      fail(ErrorCode::InvalidArgument, "loadModel: ", field, " (\"", tensor.name, "\") has quantization parameters but dtype ",
           tensor.dtypeText, "; only U32 weights are quantized");
    }
  }
  tensor.offset = uint64_t(requireInteger(object.Get("offset"), kLoadModel, field + ".offset", 0, kMaxSafeInteger));
  tensor.byteLength =
      uint64_t(requireInteger(object.Get("byteLength"), kLoadModel, field + ".byteLength", 0, kMaxSafeInteger));
  return tensor;
}

std::vector<TensorSpec> parseTensors(const Napi::Value& value, size_t fileCount) {
  if (!value.IsArray()) {
    fail(ErrorCode::InvalidArgument, "loadModel: spec.tensors must be an array but is ", describe(value));
  }
  Napi::Array array = value.As<Napi::Array>();
  std::vector<TensorSpec> tensors;
  tensors.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); i++) tensors.push_back(parseTensor(array.Get(i), i, fileCount));
  return tensors;
}

// ---- Config back to JS ------------------------------------------------------------------------

Napi::Object configToJs(Napi::Env env, const ModelConfig& config) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("dim", config.dim);
  object.Set("nLayers", config.nLayers);
  object.Set("nHeads", config.nHeads);
  object.Set("nKvHeads", config.nKvHeads);
  object.Set("headDim", config.headDim);
  object.Set("ffnDim", config.ffnDim);
  object.Set("vocabSize", config.vocabSize);
  object.Set("tokenizerVocabSize", config.tokenizerVocabSize);
  object.Set("rmsNormEps", double(config.rmsNormEps));
  object.Set("ropeTheta", config.ropeTheta);
  object.Set("ropeTraditional", config.ropeTraditional);
  if (config.ropeFreqFactors.empty()) {
    object.Set("ropeFreqFactors", env.Null());
  } else {
    Napi::Float32Array factors = Napi::Float32Array::New(env, config.ropeFreqFactors.size());
    std::memcpy(factors.Data(), config.ropeFreqFactors.data(), config.ropeFreqFactors.size() * sizeof(float));
    object.Set("ropeFreqFactors", factors);
  }
  object.Set("ropePositionScale", config.ropePositionScale);
  object.Set("tieWordEmbeddings", config.tieWordEmbeddings);
  object.Set("attentionBias", config.attentionBias);
  object.Set("mlpBias", config.mlpBias);
  object.Set("maxContextSize", config.maxContextSize);
  object.Freeze();
  return object;
}

// ---- The loading worker -----------------------------------------------------------------------

class LoadModelWorker : public PromiseWorker {
 public:
  LoadModelWorker(Napi::Env env, ModelConfig config, std::vector<std::string> files, std::vector<TensorSpec> tensors,
                  int threads)
      : PromiseWorker(env, kLoadModel),
        config_(std::move(config)),
        files_(std::move(files)),
        tensors_(std::move(tensors)),
        threads_(threads) {}

 protected:
  void compute() override { model_ = std::make_shared<Model>(config_, files_, tensors_, threads_); }

  Napi::Value result(Napi::Env env) override {
    AddonData* data = env.GetInstanceData<AddonData>();
    pendingModel = &model_;
    Napi::Object object;
    try {
      object = data->modelConstructor.New({configToJs(env, config_)});
    } catch (...) {
      pendingModel = nullptr;
      throw;
    }
    pendingModel = nullptr;
    return object;
  }

 private:
  ModelConfig config_;
  std::vector<std::string> files_;
  std::vector<TensorSpec> tensors_;
  int threads_;
  std::shared_ptr<Model> model_;
};

}  // namespace

// ---- ModelWrap --------------------------------------------------------------------------------

void ModelWrap::define(Napi::Env env, AddonData& data) {
  Napi::Function constructor = DefineClass(
      env, "NativeModel",
      {
          InstanceAccessor("config", &ModelWrap::guarded<&ModelWrap::config>, nullptr),
          InstanceAccessor("threads", &ModelWrap::guarded<&ModelWrap::threads>, nullptr),
          InstanceMethod("createContext", &ModelWrap::guarded<&ModelWrap::createContext>),
          InstanceMethod("dispose", &ModelWrap::guarded<&ModelWrap::dispose>),
      });
  data.modelConstructor = Napi::Persistent(constructor);
}

Napi::Value ModelWrap::loadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return translateErrors(env, [&]() -> Napi::Value {
    Napi::Object spec = requireObject(info[0], kLoadModel, "spec");
    std::vector<std::string> files = parseFiles(spec.Get("files"));
    std::vector<TensorSpec> tensors = parseTensors(spec.Get("tensors"), files.size());
    ModelConfig config = parseConfig(spec.Get("config"));
    Napi::Value threadsValue = spec.Get("threads");
    int threads = isMissing(threadsValue) ? 0 : int(requireInteger(threadsValue, kLoadModel, "spec.threads", 0, kMaxThreads));
    if (threads == 0) threads = physicalCoreCount();

    auto* worker = new LoadModelWorker(env, std::move(config), std::move(files), std::move(tensors), threads);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  });
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (pendingModel == nullptr) {
    throw Napi::TypeError::New(info.Env(), "[INVALID_ARGUMENT] NativeModel cannot be constructed directly; use loadModel()");
  }
  model_ = *pendingModel;
  threads_ = model_->pool.size();
  config_ = Napi::Persistent(info[0].As<Napi::Object>());
}

ModelWrap::~ModelWrap() {
  // The JS objects of contexts may outlive this one at environment teardown.
  for (ContextWrap* context : contexts_) context->detachModel();
}

Napi::Value ModelWrap::config(const Napi::CallbackInfo& info) {
  return config_.Value();
}

Napi::Value ModelWrap::threads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), threads_);
}

Napi::Value ModelWrap::createContext(const Napi::CallbackInfo& info) {
  constexpr const char* operation = "createContext";
  if (!model_) fail(ErrorCode::Disposed, "NativeModel.createContext()");
  Napi::Object options = requireObject(info[0], operation, "options");
  size_t contextSize = size_t(requireInteger(options.Get("contextSize"), operation, "options.contextSize", 1,
                                             model_->config.maxContextSize));
  Dtype kvDtype = Dtype::F16;
  Napi::Value kvCacheType = options.Get("kvCacheType");
  if (!isMissing(kvCacheType)) {
    const std::string name = requireString(kvCacheType, operation, "options.kvCacheType");
    if (name == "f32") {
      kvDtype = Dtype::F32;
    } else if (name != "f16") {
      fail(ErrorCode::InvalidArgument, operation, ": options.kvCacheType is \"", name, "\"; use \"f16\" or \"f32\"");
    }
  }
  return ContextWrap::create(info.Env(), Value(), model_, contextSize, kvDtype);
}

Napi::Value ModelWrap::dispose(const Napi::CallbackInfo& info) {
  if (!model_) return info.Env().Undefined();
  // Disposing a context removes it from contexts_, so iterate over a copy.
  std::set<ContextWrap*> contexts = contexts_;
  for (ContextWrap* context : contexts) context->disposeNow();
  contexts_.clear();
  // Evals still running hold their own reference; the weights are unmapped when they finish.
  model_.reset();
  return info.Env().Undefined();
}

}  // namespace nesso
