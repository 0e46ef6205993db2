#include "log.h"

#include <cstddef>
#include <memory>
#include <mutex>

namespace nesso {

namespace {

struct LogLine {
  LogLevel level;
  std::string message;
};

void deliverLine(Napi::Env env, Napi::Function callback, std::nullptr_t* context, LogLine* line) {
  std::unique_ptr<LogLine> owned(line);
  if (env == nullptr || callback.IsEmpty()) return;
  try {
    callback.Call({Napi::Number::New(env, int(owned->level)), Napi::String::New(env, owned->message)});
  } catch (const Napi::Error&) {
    // A throwing log callback must not take the engine down; the exception is dropped.
  }
}

using LogFunction = Napi::TypedThreadSafeFunction<std::nullptr_t, LogLine, deliverLine>;

std::mutex logMutex;
std::unique_ptr<LogFunction> logFunction;  // guarded by logMutex

void releaseLogFunction() {
  std::lock_guard<std::mutex> lock(logMutex);
  if (logFunction) {
    logFunction->Release();
    logFunction.reset();
  }
}

}  // namespace

void logMessage(LogLevel level, const std::string& message) {
  std::lock_guard<std::mutex> lock(logMutex);
  if (!logFunction) return;
  auto* line = new LogLine{level, message};
  if (logFunction->NonBlockingCall(line) != napi_ok) delete line;
}

void setLogCallback(Napi::Env env, Napi::Value callback) {
  releaseLogFunction();
  if (callback.IsNull() || callback.IsUndefined()) return;

  auto function = std::make_unique<LogFunction>(
      LogFunction::New(env, callback.As<Napi::Function>(), "nesso-native-log", 0, 1));
  // A pending log line must not keep the process alive.
  function->Unref(env);
  {
    std::lock_guard<std::mutex> lock(logMutex);
    logFunction = std::move(function);
  }
  static bool cleanupHookAdded = false;
  if (!cleanupHookAdded) {
    cleanupHookAdded = true;
    env.AddCleanupHook([] { releaseLogFunction(); });
  }
}

}  // namespace nesso
