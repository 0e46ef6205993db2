// Base of every asynchronous binding: compute() runs on a libuv worker thread and its errors are
// caught once here and turned into a rejected promise with a "[CODE] operation: …" message.
#pragma once

#include <napi.h>

namespace nesso {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* operation);

  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  // Worker thread: the computation. May throw nesso::Error or std::exception.
  virtual void compute() = 0;
  // JS thread, after compute() succeeded: the value the promise resolves with.
  virtual Napi::Value result(Napi::Env env) { return env.Undefined(); }
  // JS thread, after success or failure, before the promise settles (clears busy flags).
  virtual void finished() {}

 private:
  void Execute() final;
  void OnOK() final;
  void OnError(const Napi::Error& error) final;

  Napi::Promise::Deferred deferred_;
  const char* operation_;
};

}  // namespace nesso
