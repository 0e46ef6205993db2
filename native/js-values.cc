#include "js-values.h"

#include <cmath>

namespace nesso {

namespace {

const char* typedArrayName(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "typed array";
  }
}

}  // namespace

std::string describe(const Napi::Value& value) {
  if (value.IsUndefined()) return "undefined";
  if (value.IsNull()) return "null";
  if (value.IsBoolean()) return value.As<Napi::Boolean>().Value() ? "true" : "false";
  // JS formatting (NaN, Infinity, 1e-7), as the caller wrote the value.
  if (value.IsNumber()) return value.ToString().Utf8Value();
  if (value.IsString()) {
    std::string text = value.As<Napi::String>().Utf8Value();
    if (text.size() > 40) text = text.substr(0, 40) + "…";
    return "\"" + text + "\"";
  }
  if (value.IsTypedArray()) {
    Napi::TypedArray array = value.As<Napi::TypedArray>();
    return concat(typedArrayName(array.TypedArrayType()), "(", array.ElementLength(), ")");
  }
  if (value.IsArray()) return concat("Array(", value.As<Napi::Array>().Length(), ")");
  if (value.IsFunction()) return "a function";
  if (value.IsObject()) return "an object";
  return "a value of another type";
}

bool isMissing(const Napi::Value& value) {
  return value.IsEmpty() || value.IsUndefined() || value.IsNull();
}

Napi::Object requireObject(const Napi::Value& value, const char* operation, const std::string& field) {
  if (!value.IsObject() || value.IsArray() || value.IsFunction()) {
    fail(ErrorCode::InvalidArgument, operation, ": ", field, " must be an object but is ", describe(value));
  }
  return value.As<Napi::Object>();
}

std::string requireString(const Napi::Value& value, const char* operation, const std::string& field) {
  if (!value.IsString()) {
    fail(ErrorCode::InvalidArgument, operation, ": ", field, " must be a string but is ", describe(value));
  }
  return value.As<Napi::String>().Utf8Value();
}

bool requireBoolean(const Napi::Value& value, const char* operation, const std::string& field) {
  if (!value.IsBoolean()) {
    fail(ErrorCode::InvalidArgument, operation, ": ", field, " must be a boolean but is ", describe(value));
  }
  return value.As<Napi::Boolean>().Value();
}

double requireNumber(const Napi::Value& value, const char* operation, const std::string& field) {
  if (!value.IsNumber()) {
    fail(ErrorCode::InvalidArgument, operation, ": ", field, " must be a number but is ", describe(value));
  }
  return value.As<Napi::Number>().DoubleValue();
}

int64_t requireInteger(const Napi::Value& value, const char* operation, const std::string& field, int64_t min,
                       int64_t max) {
  double number = requireNumber(value, operation, field);
  if (!std::isfinite(number) || std::floor(number) != number || number < double(min) || number > double(max)) {
    fail(ErrorCode::InvalidArgument, operation, ": ", field, " is ", describe(value), " but must be an integer in [", min,
         ", ", max, "]");
  }
  return int64_t(number);
}

double requireNumberInRange(const Napi::Value& value, const char* operation, const std::string& field, double min,
                            double max) {
  double number = requireNumber(value, operation, field);
  if (!std::isfinite(number) || number < min || number > max) {
    fail(ErrorCode::InvalidArgument, operation, ": ", field, " is ", describe(value), " but must be a finite number in [",
         min, ", ", max, "]");
  }
  return number;
}

Napi::TypedArray requireTypedArray(const Napi::Value& value, napi_typedarray_type type, const char* operation,
                                   const std::string& field) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    fail(ErrorCode::InvalidArgument, operation, ": ", field, " must be a ", typedArrayName(type), " but is ",
         describe(value));
  }
  return value.As<Napi::TypedArray>();
}

}  // namespace nesso
