// Conversions between JS values and C++ values for the bindings: every read checks the type and
// range and throws InvalidArgument naming the operation, the field, the value and the rule.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "errors.h"

namespace nesso {

// Runs body() and turns a nesso::Error or std::exception into a JS Error whose message starts
// with "[CODE] ". Napi::Error (already a JS exception) passes through unchanged.
template <typename Body>
auto translateErrors(Napi::Env env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const Error& error) {
    throw Napi::Error::New(env, error.prefixedMessage());
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "[INTERNAL] out of memory");
  } catch (const std::exception& error) {
    throw Napi::Error::New(env, std::string("[INTERNAL] ") + error.what());
  }
}

// A short description of a JS value for error messages: its type, and its value when small.
std::string describe(const Napi::Value& value);

Napi::Object requireObject(const Napi::Value& value, const char* operation, const std::string& field);
std::string requireString(const Napi::Value& value, const char* operation, const std::string& field);
bool requireBoolean(const Napi::Value& value, const char* operation, const std::string& field);
double requireNumber(const Napi::Value& value, const char* operation, const std::string& field);
// An integer-valued number in [min, max].
int64_t requireInteger(const Napi::Value& value, const char* operation, const std::string& field, int64_t min,
                       int64_t max);
// A finite number in [min, max].
double requireNumberInRange(const Napi::Value& value, const char* operation, const std::string& field, double min,
                            double max);

// A typed array of exactly this element type (no conversion from other arrays).
Napi::TypedArray requireTypedArray(const Napi::Value& value, napi_typedarray_type type, const char* operation,
                                   const std::string& field);

// True when an optional argument or property was left out.
bool isMissing(const Napi::Value& value);

}  // namespace nesso
