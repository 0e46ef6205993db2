// Error type of the native engine. Code inside native/ throws nesso::Error; each AsyncWorker and
// each synchronous binding catches it once and rejects or throws a JS Error whose message starts
// with "[CODE] ", which src/engine/native.ts maps onto NessoError codes.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace nesso {

// Mirrors the NessoErrorCode values of src/errors.ts that native code can produce.
enum class ErrorCode {
  InvalidArgument,  // a caller passed a value outside the documented range
  ModelNotFound,    // a weights file does not exist
  InvalidModel,     // a weights file or tensor disagrees with the spec or config
  Unsupported,      // a valid input this version cannot handle
  ContextFull,      // the tokens do not fit in the context
  Disposed,         // the object was used after dispose()
  Internal,         // a bug or resource failure in the engine
};

const char* errorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}

  ErrorCode code() const { return code_; }

  // The message as JS receives it: "[INVALID_ARGUMENT] eval: …".
  std::string prefixedMessage() const;

 private:
  ErrorCode code_;
};

// Concatenates the arguments with operator<< into one string (for error messages and logs).
template <typename... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

template <typename... Parts>
[[noreturn]] void fail(ErrorCode code, Parts&&... parts) {
  throw Error(code, concat(std::forward<Parts>(parts)...));
}

}  // namespace nesso
