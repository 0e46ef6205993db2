#include "tensor.h"

namespace nesso {

size_t dtypeSize(Dtype dtype) {
  return dtype == Dtype::F32 ? 4 : 2;
}

const char* dtypeName(Dtype dtype) {
  switch (dtype) {
    case Dtype::F32: return "F32";
    case Dtype::F16: return "F16";
    case Dtype::BF16: return "BF16";
  }
  return "?";
}

bool parseDtype(const std::string& text, Dtype* dtype) {
  if (text == "F32") {
    *dtype = Dtype::F32;
  } else if (text == "F16") {
    *dtype = Dtype::F16;
  } else if (text == "BF16") {
    *dtype = Dtype::BF16;
  } else {
    return false;
  }
  return true;
}

Matrix makeMatrix(const void* data, Dtype dtype, size_t rows, size_t cols) {
  Matrix matrix;
  matrix.data = static_cast<const uint8_t*>(data);
  matrix.dtype = dtype;
  matrix.rows = rows;
  matrix.cols = cols;
  matrix.rowBytes = cols * dtypeSize(dtype);
  return matrix;
}

}  // namespace nesso
