// Element types and the weight-matrix view the kernels read.
//
// The SIMD kernel files include this header and are compiled with extra target flags, so it
// declares only plain structs and out-of-line functions. An inline function emitted by an AVX2
// file could be picked by the linker for every caller and then crash a CPU without AVX2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace nesso {

enum class Dtype : uint8_t { F32 = 0, F16 = 1, BF16 = 2 };

// A row-major [rows, cols] matrix in its checkpoint dtype. `data` points into the mmapped file
// and may be unaligned, so kernels load it with unaligned loads or memcpy.
struct Matrix {
  const uint8_t* data = nullptr;
  Dtype dtype = Dtype::F32;
  size_t rows = 0;
  size_t cols = 0;
  size_t rowBytes = 0;  // cols * dtypeSize(dtype)
};

size_t dtypeSize(Dtype dtype);
const char* dtypeName(Dtype dtype);
// Parses a safetensors dtype string ("F32", "F16", "BF16"); returns false for any other.
bool parseDtype(const std::string& text, Dtype* dtype);

Matrix makeMatrix(const void* data, Dtype dtype, size_t rows, size_t cols);

}  // namespace nesso
