#include "errors.h"

namespace nesso {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "INVALID_ARGUMENT";
    case ErrorCode::ModelNotFound: return "MODEL_NOT_FOUND";
    case ErrorCode::InvalidModel: return "INVALID_MODEL";
    case ErrorCode::Unsupported: return "UNSUPPORTED";
    case ErrorCode::ContextFull: return "CONTEXT_FULL";
    case ErrorCode::Disposed: return "DISPOSED";
    case ErrorCode::Internal: return "INTERNAL";
  }
  return "INTERNAL";
}

std::string Error::prefixedMessage() const {
  return concat("[", errorCodeName(code_), "] ", what());
}

}  // namespace nesso
