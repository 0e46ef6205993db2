#include "promise-worker.h"

#include "errors.h"
#include "js-values.h"

namespace nesso {

PromiseWorker::PromiseWorker(Napi::Env env, const char* operation)
    : Napi::AsyncWorker(env, operation), deferred_(Napi::Promise::Deferred::New(env)), operation_(operation) {}

void PromiseWorker::Execute() {
  try {
    compute();
  } catch (const Error& error) {
    SetError(error.prefixedMessage());
  } catch (const std::bad_alloc&) {
    SetError(concat("[INTERNAL] ", operation_, ": out of memory"));
  } catch (const std::exception& error) {
    SetError(concat("[INTERNAL] ", operation_, ": ", error.what()));
  }
}

void PromiseWorker::OnOK() {
  finished();
  Napi::Env env = Env();
  try {
    deferred_.Resolve(translateErrors(env, [&] { return result(env); }));
  } catch (const Napi::Error& error) {
    deferred_.Reject(error.Value());
  }
}

void PromiseWorker::OnError(const Napi::Error& error) {
  finished();
  deferred_.Reject(error.Value());
}

}  // namespace nesso
