// The SIMD quantized kernels, written once over a vector-traits type `S`. Not a standalone header:
// quant-avx2.cc and quant-avx512.cc include it inside an anonymous namespace, so every function
// here is compiled only with that file's target flags.
//
// S provides:
//   Vec, kWidth (floats per vector), zero(), set1(f), load(const float*) (unaligned),
//   store(float*, Vec), fma(a, b, c) = a * b + c, add(a, b), reduce(Vec) (sum of the lanes),
//   codes(const uint8_t*) (kWidth unsigned 8-bit codes, unaligned, as float32),
//   nibbles(const uint8_t* packed) (kWidth 4-bit codes from kWidth / 2 bytes, element 2t in the
//   low nibble of byte t, as float32),
//   codesOfPacks<Bits>(const uint64_t* packs) (kWidth codes as float32 from kWidth / 8 packs,
//   each pack holding 8 consecutive Bits-bit codes in its low 8 · Bits bits).
//
// This file includes nothing: the including file brings quant.h, quant-unpack.h and the intrinsics. It allocates
// nothing either, because a standard-library template instantiated here with SIMD flags could be
// the copy the linker keeps for every other file.

constexpr size_t kMaxGroupSize = 128;

// How far ahead of the packed codes being read the decode kernel prefetches more. As in the dense
// kernels, the hardware prefetchers alone leave about half the read bandwidth unused.
constexpr size_t kQuantPrefetchDistance = 8192;

// Returns the G codes of group g of a packed row: in place for 8 bits, else unpacked into
// `buffer`.
template <class S, int Bits>
inline const uint8_t* groupCodes(const uint8_t* row, size_t g, size_t groupSize, uint8_t* buffer) {
  if constexpr (Bits == 8) {
    return row + g * groupSize;
  } else {
    unpackGroup<Bits>(row, g * groupSize, groupSize, buffer);
    return buffer;
  }
}

// kWidth codes starting at `bytes`, which lie inside a group that ends at `end`. A pack is read
// with one 8-byte load when those bytes are inside the group, else byte by byte, so no read goes
// past the group (or the mapped file).
template <class S, int Bits>
inline typename S::Vec oddCodes(const uint8_t* bytes, const uint8_t* end) {
  uint64_t packs[S::kWidth / 8];
  for (size_t i = 0; i < S::kWidth / 8; i++) {
    const uint8_t* pack = bytes + i * Bits;
    if (end - pack >= 8) {
      std::memcpy(&packs[i], pack, 8);
    } else {
      packs[i] = loadBytes(pack, Bits);
    }
  }
  return S::template codesOfPacks<Bits>(packs);
}

// q · x over one group for Bits in {2, 3, 5, 6}, decoding the codes in registers.
template <class S, int Bits>
inline typename S::Vec oddGroupDot(const uint8_t* bytes, const float* xGroup, size_t groupSize) {
  using Vec = typename S::Vec;
  constexpr size_t W = S::kWidth;
  constexpr size_t bytesPerVector = W * Bits / 8;
  const uint8_t* end = bytes + groupSize * Bits / 8;
  Vec even = S::zero();
  Vec odd = S::zero();
  for (size_t k = 0; k < groupSize; k += 2 * W) {
    even = S::fma(oddCodes<S, Bits>(bytes, end), S::load(xGroup + k), even);
    odd = S::fma(oddCodes<S, Bits>(bytes + bytesPerVector, end), S::load(xGroup + k + W), odd);
    bytes += 2 * bytesPerVector;
  }
  return S::add(even, odd);
}

// y[r] = Σ_g scale[r, g] · (q[r, g, :] · x[g, :]) + bias[r, g] · Σ x[g, :], the q · x products
// accumulated in float32 vectors and scaled once per group.
template <class S, int Bits>
void matVecBits(const QuantizedMatrix& weights, size_t rowBegin, size_t rowEnd, const float* x,
                const float* groupSums, float* y) {
  using Vec = typename S::Vec;
  constexpr size_t W = S::kWidth;
  const size_t groupSize = size_t(weights.groupSize);
  const size_t groups = weights.groupsPerRow;
  const size_t groupBytes = groupSize * Bits / 8;

  for (size_t r = rowBegin; r < rowEnd; r++) {
    const uint8_t* row = weights.packed + r * weights.packedRowBytes;
    const float* scales = weights.scales + r * groups;
    const float* biases = weights.biases + r * groups;
    Vec total = S::zero();
    float biasTerm = 0.0f;
    for (size_t g = 0; g < groups; g++) {
      const float* xGroup = x + g * groupSize;
      // Rows are consecutive in memory, so this requests the bytes a fixed distance further on
      // in the thread's range (see kQuantPrefetchDistance).
      const uint8_t* ahead = row + g * groupBytes + kQuantPrefetchDistance;
      for (size_t line = 0; line < groupBytes; line += 64) __builtin_prefetch(ahead + line);
      Vec dot;
      // Every group size is a multiple of 2 * W, and two accumulators hide the FMA latency.
      if constexpr (Bits == 4) {
        const uint8_t* packed = row + g * groupSize / 2;
        Vec even = S::zero();
        Vec odd = S::zero();
        for (size_t k = 0; k < groupSize; k += 2 * W) {
          even = S::fma(S::nibbles(packed + k / 2), S::load(xGroup + k), even);
          odd = S::fma(S::nibbles(packed + (k + W) / 2), S::load(xGroup + k + W), odd);
        }
        dot = S::add(even, odd);
      } else if constexpr (Bits == 8) {
        const uint8_t* q = row + g * groupSize;
        Vec even = S::zero();
        Vec odd = S::zero();
        for (size_t k = 0; k < groupSize; k += 2 * W) {
          even = S::fma(S::codes(q + k), S::load(xGroup + k), even);
          odd = S::fma(S::codes(q + k + W), S::load(xGroup + k + W), odd);
        }
        dot = S::add(even, odd);
      } else {
        dot = oddGroupDot<S, Bits>(row + g * groupSize * Bits / 8, xGroup, groupSize);
      }
      total = S::fma(S::set1(scales[g]), dot, total);
      biasTerm += biases[g] * groupSums[g];
    }
    y[r] = S::reduce(total) + biasTerm;
  }
}

template <class S>
void simdQuantMatVec(const QuantizedMatrix& weights, size_t rowBegin, size_t rowEnd, const float* x,
                     const float* groupSums, float* y) {
  switch (weights.bits) {
    case 2: matVecBits<S, 2>(weights, rowBegin, rowEnd, x, groupSums, y); break;
    case 3: matVecBits<S, 3>(weights, rowBegin, rowEnd, x, groupSums, y); break;
    case 4: matVecBits<S, 4>(weights, rowBegin, rowEnd, x, groupSums, y); break;
    case 5: matVecBits<S, 5>(weights, rowBegin, rowEnd, x, groupSums, y); break;
    case 6: matVecBits<S, 6>(weights, rowBegin, rowEnd, x, groupSums, y); break;
    case 8: matVecBits<S, 8>(weights, rowBegin, rowEnd, x, groupSums, y); break;
  }
}

template <class S, int Bits>
void dequantizeRowBits(const QuantizedMatrix& weights, size_t row, float* out) {
  constexpr size_t W = S::kWidth;
  const size_t groupSize = size_t(weights.groupSize);
  const uint8_t* packed = weights.packed + row * weights.packedRowBytes;
  const float* scales = weights.scales + row * weights.groupsPerRow;
  const float* biases = weights.biases + row * weights.groupsPerRow;
  alignas(64) uint8_t buffer[kMaxGroupSize];
  for (size_t g = 0; g < weights.groupsPerRow; g++) {
    const uint8_t* q = groupCodes<S, Bits>(packed, g, groupSize, buffer);
    const typename S::Vec scale = S::set1(scales[g]);
    const typename S::Vec bias = S::set1(biases[g]);
    for (size_t k = 0; k < groupSize; k += W) S::store(out + g * groupSize + k, S::fma(scale, S::codes(q + k), bias));
  }
}

template <class S>
void simdDequantizeRow(const QuantizedMatrix& weights, size_t row, float* out) {
  switch (weights.bits) {
    case 2: dequantizeRowBits<S, 2>(weights, row, out); break;
    case 3: dequantizeRowBits<S, 3>(weights, row, out); break;
    case 4: dequantizeRowBits<S, 4>(weights, row, out); break;
    case 5: dequantizeRowBits<S, 5>(weights, row, out); break;
    case 6: dequantizeRowBits<S, 6>(weights, row, out); break;
    case 8: dequantizeRowBits<S, 8>(weights, row, out); break;
  }
}
