// Unpacking one group of MLX-packed codes, specialized per bit width. Everything here has
// internal linkage (an unnamed namespace), because the SIMD files include it with their own
// target flags and the linker must not share their copies with other files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace nesso {
namespace {

// Reads `count` (at most 8) bytes little-endian into the low bytes of a 64-bit value. It never
// reads past them, because a row may end at the end of the mapped file.
inline uint64_t loadBytes(const uint8_t* bytes, size_t count) {
  uint64_t value = 0;
  for (size_t i = 0; i < count; i++) value |= uint64_t(bytes[i]) << (8 * i);
  return value;
}

// Unpacks the `groupSize` codes that start at element `first` (a multiple of 8) of a packed row
// into q. Codes are consecutive `Bits`-bit fields of the row's little-endian bit stream, so every
// 8 codes occupy exactly `Bits` bytes.
template <int Bits>
inline void unpackGroup(const uint8_t* row, size_t first, size_t groupSize, uint8_t* q) {
  constexpr uint64_t mask = (uint64_t(1) << Bits) - 1;
  // Codes after which the group still has 8 bytes: up to there a pack is one 8-byte load.
  constexpr size_t codesIn8Bytes = 64 / Bits;
  const uint8_t* bytes = row + first * Bits / 8;
  for (size_t k = 0; k < groupSize; k += 8) {
    uint64_t pack;
    if (k + codesIn8Bytes <= groupSize) {
      std::memcpy(&pack, bytes, 8);
    } else {
      pack = loadBytes(bytes, Bits);
    }
    for (int i = 0; i < 8; i++) q[k + size_t(i)] = uint8_t((pack >> (i * Bits)) & mask);
    bytes += Bits;
  }
}

}  // namespace
}  // namespace nesso
