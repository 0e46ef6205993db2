// The SIMD kernels, written once over a vector-traits type `S`. Not a standalone header: it is
// included by kernels-avx2.cc, kernels-avx512.cc and kernels-neon.cc inside an anonymous
// namespace, so every function here has internal linkage and is compiled only with that file's
// target flags.
//
// S provides:
//   Vec, kWidth (floats per vector), kTokenTile (tokens per matMul micro-kernel)
//   zero(), set1(f), load(const float*) (unaligned), store(float*, Vec),
//   loadBf16(const uint8_t*), loadF16(const uint8_t*) (kWidth elements, unaligned),
//   fma(a, b, c) = a * b + c, add, sub, mul, div, min, max, reduce(Vec) (sum of the lanes),
//   round(Vec) (to nearest integer), exp2Integer(Vec n) (2^n for integral n in [-126, 127]),
//   keepWhereAtLeast(value, x, limit) (value where x >= limit, else 0; NaN x gives 0).
//
// This file includes nothing: the including file brings kernels.h, half.h and the intrinsics.

// kWidth weights of row `row` starting at column k, as float32.
template <class S, Dtype D>
inline typename S::Vec loadWeights(const uint8_t* row, size_t k) {
  if constexpr (D == Dtype::F32) {
    return S::load(reinterpret_cast<const float*>(row + 4 * k));
  } else if constexpr (D == Dtype::F16) {
    return S::loadF16(row + 2 * k);
  } else {
    return S::loadBf16(row + 2 * k);
  }
}

// ---- Decode: one token, each weight row streamed once ------------------------------------------

// How far ahead of the rows being read the decode kernel prefetches weights. The R rows of one step
// are adjacent in memory, so the kernel walks one contiguous region; the hardware prefetchers
// lose track at each new group of rows and left alone reach about half the machine's read
// bandwidth. 8 KiB measured best on an AVX2 Zen core (4 KiB and 32 KiB were slower).
constexpr size_t kPrefetchDistance = 8192;

// out[r] = rows[r] · x for R rows at once, two accumulators per row to hide the FMA latency. The
// rows must be consecutive rows of one matrix (rows[r] = rows[0] + r * rowBytes); while they are
// read, the same number of bytes kPrefetchDistance further on is requested.
template <class S, Dtype D, int R>
inline void dotRows(const uint8_t* const* rows, const float* x, size_t cols, float* out) {
  using Vec = typename S::Vec;
  constexpr size_t W = S::kWidth;
  constexpr size_t kStepBytes = size_t(R) * 2 * W * (D == Dtype::F32 ? 4 : 2);
  Vec even[R], odd[R];
  for (int r = 0; r < R; r++) {
    even[r] = S::zero();
    odd[r] = S::zero();
  }
  const uint8_t* ahead = rows[0] + kPrefetchDistance;
  size_t k = 0;
  for (; k + 2 * W <= cols; k += 2 * W) {
    for (size_t line = 0; line < kStepBytes; line += 64) __builtin_prefetch(ahead + line);
    ahead += kStepBytes;
    Vec x0 = S::load(x + k);
    Vec x1 = S::load(x + k + W);
    for (int r = 0; r < R; r++) {
      even[r] = S::fma(loadWeights<S, D>(rows[r], k), x0, even[r]);
      odd[r] = S::fma(loadWeights<S, D>(rows[r], k + W), x1, odd[r]);
    }
  }
  for (; k + W <= cols; k += W) {
    Vec x0 = S::load(x + k);
    for (int r = 0; r < R; r++) even[r] = S::fma(loadWeights<S, D>(rows[r], k), x0, even[r]);
  }
  for (int r = 0; r < R; r++) {
    float sum = S::reduce(S::add(even[r], odd[r]));
    for (size_t tail = k; tail < cols; tail++) sum += loadElement(rows[r], int(D), tail) * x[tail];
    out[r] = sum;
  }
}

template <class S, Dtype D>
void matVecTyped(const Matrix& weights, size_t rowBegin, size_t rowEnd, const float* x, float* y) {
  constexpr int R = 4;
  size_t r = rowBegin;
  for (; r + R <= rowEnd; r += R) {
    const uint8_t* rows[R];
    for (int i = 0; i < R; i++) rows[i] = weights.data + (r + size_t(i)) * weights.rowBytes;
    dotRows<S, D, R>(rows, x, weights.cols, y + r);
  }
  for (; r < rowEnd; r++) {
    const uint8_t* row = weights.data + r * weights.rowBytes;
    dotRows<S, D, 1>(&row, x, weights.cols, y + r);
  }
}

template <class S>
void simdMatVec(const Matrix& weights, size_t rowBegin, size_t rowEnd, const float* x, float* y) {
  switch (weights.dtype) {
    case Dtype::F32: matVecTyped<S, Dtype::F32>(weights, rowBegin, rowEnd, x, y); break;
    case Dtype::F16: matVecTyped<S, Dtype::F16>(weights, rowBegin, rowEnd, x, y); break;
    case Dtype::BF16: matVecTyped<S, Dtype::BF16>(weights, rowBegin, rowEnd, x, y); break;
  }
}

// ---- Conversion ---------------------------------------------------------------------------------

template <class S>
void simdToFloat(const uint8_t* source, Dtype dtype, size_t n, float* destination) {
  constexpr size_t W = S::kWidth;
  size_t i = 0;
  switch (dtype) {
    case Dtype::F32:
      for (; i + W <= n; i += W) S::store(destination + i, loadWeights<S, Dtype::F32>(source, i));
      break;
    case Dtype::F16:
      for (; i + W <= n; i += W) S::store(destination + i, loadWeights<S, Dtype::F16>(source, i));
      break;
    case Dtype::BF16:
      for (; i + W <= n; i += W) S::store(destination + i, loadWeights<S, Dtype::BF16>(source, i));
      break;
  }
  for (; i < n; i++) destination[i] = loadElement(source, int(dtype), i);
}

// ---- Prefill: a tile of tokens per pass over a block of weight rows -----------------------------

// y[t * ldy + r] = w[r] · x[t] for R rows of dtype D and T tokens: R * T accumulators, so each
// loaded weight vector serves T tokens and each token vector serves R rows.
template <class S, Dtype D, int R, int T>
inline void microKernel(const uint8_t* const* w, const float* const* x, size_t cols, float* y, size_t ldy) {
  using Vec = typename S::Vec;
  constexpr size_t W = S::kWidth;
  Vec acc[R][T];
  for (int r = 0; r < R; r++) {
    for (int t = 0; t < T; t++) acc[r][t] = S::zero();
  }
  size_t k = 0;
  for (; k + W <= cols; k += W) {
    Vec xv[T];
    for (int t = 0; t < T; t++) xv[t] = S::load(x[t] + k);
    for (int r = 0; r < R; r++) {
      Vec wv = loadWeights<S, D>(w[r], k);
      for (int t = 0; t < T; t++) acc[r][t] = S::fma(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; r++) {
    for (int t = 0; t < T; t++) {
      float sum = S::reduce(acc[r][t]);
      for (size_t tail = k; tail < cols; tail++) sum += loadElement(w[r], int(D), tail) * x[t][tail];
      y[size_t(t) * ldy + size_t(r)] = sum;
    }
  }
}

// All rows of one block (dtype D) against the tokens [tokenBegin, tokenBegin + T).
template <class S, Dtype D, int T>
inline void blockAgainstTokens(const uint8_t* const* blockRows, size_t rows, const float* x, size_t tokenBegin,
                               size_t cols, float* y, size_t ldy, size_t rowOffset) {
  constexpr int R = 4;
  const float* tokens[T];
  for (int t = 0; t < T; t++) tokens[t] = x + (tokenBegin + size_t(t)) * cols;
  float* out = y + tokenBegin * ldy + rowOffset;
  size_t r = 0;
  for (; r + R <= rows; r += R) microKernel<S, D, R, T>(blockRows + r, tokens, cols, out + r, ldy);
  for (; r < rows; r++) microKernel<S, D, 1, T>(blockRows + r, tokens, cols, out + r, ldy);
}

// The product for at most one tile of tokens with 16-bit weights read in place. Each row is
// converted in registers once, which beats a converted copy because no later tile reuses it. The
// main caller is attention: the scores of a query-head group over an f16 KV cache.
template <class S, Dtype D>
void matMulFewTokens(const Matrix& weights, size_t rowBegin, size_t rowEnd, const float* x, size_t tokens, float* y,
                     size_t ldy) {
  constexpr int T = S::kTokenTile;
  const size_t cols = weights.cols;
  for (size_t blockBegin = rowBegin; blockBegin < rowEnd; blockBegin += kMatMulRowBlock) {
    const size_t rows = rowEnd - blockBegin < kMatMulRowBlock ? rowEnd - blockBegin : kMatMulRowBlock;
    const uint8_t* blockRows[kMatMulRowBlock];
    for (size_t r = 0; r < rows; r++) blockRows[r] = weights.data + (blockBegin + r) * weights.rowBytes;
    if (tokens == size_t(T)) {
      blockAgainstTokens<S, D, T>(blockRows, rows, x, 0, cols, y, ldy, blockBegin);
    } else if (tokens == 3 && T > 3) {
      blockAgainstTokens<S, D, 3>(blockRows, rows, x, 0, cols, y, ldy, blockBegin);
    } else {
      for (size_t t = 0; t < tokens; t++) blockAgainstTokens<S, D, 1>(blockRows, rows, x, t, cols, y, ldy, blockBegin);
    }
  }
}

template <class S>
void simdMatMul(const Matrix& weights, size_t rowBegin, size_t rowEnd, const float* x, size_t tokens, float* y,
                size_t ldy, float* scratch) {
  constexpr int T = S::kTokenTile;
  if (tokens <= size_t(T) && weights.dtype == Dtype::F16) {
    matMulFewTokens<S, Dtype::F16>(weights, rowBegin, rowEnd, x, tokens, y, ldy);
    return;
  }
  if (tokens <= size_t(T) && weights.dtype == Dtype::BF16) {
    matMulFewTokens<S, Dtype::BF16>(weights, rowBegin, rowEnd, x, tokens, y, ldy);
    return;
  }
  const size_t cols = weights.cols;
  for (size_t blockBegin = rowBegin; blockBegin < rowEnd; blockBegin += kMatMulRowBlock) {
    size_t rows = rowEnd - blockBegin < kMatMulRowBlock ? rowEnd - blockBegin : kMatMulRowBlock;

    // Float32 view of the block: the weights themselves when they are float32 and 4-byte aligned
    // (MLX files may place a tensor at any byte offset), otherwise a converted copy in scratch.
    const uint8_t* blockRows[kMatMulRowBlock];
    for (size_t r = 0; r < rows; r++) {
      const uint8_t* source = weights.data + (blockBegin + r) * weights.rowBytes;
      bool floatAligned = reinterpret_cast<uintptr_t>(source) % alignof(float) == 0;
      if (weights.dtype == Dtype::F32 && floatAligned) {
        blockRows[r] = source;
      } else {
        simdToFloat<S>(source, weights.dtype, cols, scratch + r * cols);
        blockRows[r] = reinterpret_cast<const uint8_t*>(scratch + r * cols);
      }
    }

    size_t t = 0;
    for (; t + T <= tokens; t += T) {
      blockAgainstTokens<S, Dtype::F32, T>(blockRows, rows, x, t, cols, y, ldy, blockBegin);
    }
    for (; t < tokens; t++) blockAgainstTokens<S, Dtype::F32, 1>(blockRows, rows, x, t, cols, y, ldy, blockBegin);
  }
}

// ---- Attention helpers --------------------------------------------------------------------------

template <class S>
float simdDot(const float* a, const float* b, size_t n) {
  constexpr size_t W = S::kWidth;
  typename S::Vec even = S::zero(), odd = S::zero();
  size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    even = S::fma(S::load(a + i), S::load(b + i), even);
    odd = S::fma(S::load(a + i + W), S::load(b + i + W), odd);
  }
  for (; i + W <= n; i += W) even = S::fma(S::load(a + i), S::load(b + i), even);
  float sum = S::reduce(S::add(even, odd));
  for (; i < n; i++) sum += a[i] * b[i];
  return sum;
}

template <class S>
void simdAxpy(float a, const float* x, float* y, size_t n) {
  constexpr size_t W = S::kWidth;
  typename S::Vec scale = S::set1(a);
  size_t i = 0;
  for (; i + W <= n; i += W) S::store(y + i, S::fma(scale, S::load(x + i), S::load(y + i)));
  for (; i < n; i++) y[i] += a * x[i];
}

// out[g, d0 .. d0 + V·W) for G groups, summing weights[g, j] · rows[j] over all j with the outputs
// held in G * V registers, so each row slice is loaded once for all groups. Rows are `width`
// elements of dtype D.
template <class S, Dtype D, int G, int V>
inline void weightedSumTile(const float* weights, size_t n, const uint8_t* rows, size_t width, size_t d0, float* out) {
  using Vec = typename S::Vec;
  constexpr size_t W = S::kWidth;
  constexpr size_t kElementBytes = D == Dtype::F32 ? 4 : 2;
  const size_t rowBytes = width * kElementBytes;
  Vec acc[G][V];
  for (int g = 0; g < G; g++) {
    for (int v = 0; v < V; v++) acc[g][v] = S::zero();
  }
  for (size_t j = 0; j < n; j++) {
    Vec row[V];
    for (int v = 0; v < V; v++) row[v] = loadWeights<S, D>(rows + j * rowBytes, d0 + size_t(v) * W);
    for (int g = 0; g < G; g++) {
      Vec weight = S::set1(weights[size_t(g) * n + j]);
      for (int v = 0; v < V; v++) acc[g][v] = S::fma(weight, row[v], acc[g][v]);
    }
  }
  for (int g = 0; g < G; g++) {
    for (int v = 0; v < V; v++) S::store(out + size_t(g) * width + d0 + size_t(v) * W, acc[g][v]);
  }
}

template <class S, Dtype D, int G>
inline void weightedSumGroups(const float* weights, size_t n, const uint8_t* rows, size_t width, float* out) {
  constexpr size_t W = S::kWidth;
  constexpr size_t kElementBytes = D == Dtype::F32 ? 4 : 2;
  size_t d = 0;
  for (; d + 4 * W <= width; d += 4 * W) weightedSumTile<S, D, G, 4>(weights, n, rows, width, d, out);
  for (; d + W <= width; d += W) weightedSumTile<S, D, G, 1>(weights, n, rows, width, d, out);
  for (; d < width; d++) {
    for (int g = 0; g < G; g++) {
      float sum = 0.0f;
      for (size_t j = 0; j < n; j++) {
        sum += weights[size_t(g) * n + j] * loadElement(rows + j * width * kElementBytes, int(D), d);
      }
      out[size_t(g) * width + d] = sum;
    }
  }
}

template <class S, Dtype D>
void weightedSumTyped(const float* weights, size_t groups, const uint8_t* rows, size_t n, size_t width, float* out) {
  // Three groups at a time: 3 x 4 accumulators plus 4 row vectors fit the 16 AVX2 registers.
  size_t g = 0;
  for (; g + 3 <= groups; g += 3) weightedSumGroups<S, D, 3>(weights + g * n, n, rows, width, out + g * width);
  for (; g < groups; g++) weightedSumGroups<S, D, 1>(weights + g * n, n, rows, width, out + g * width);
}

template <class S>
void simdWeightedSum(const float* weights, size_t groups, const uint8_t* rows, Dtype rowsDtype, size_t n, size_t width,
                     float* out) {
  switch (rowsDtype) {
    case Dtype::F32: weightedSumTyped<S, Dtype::F32>(weights, groups, rows, n, width, out); break;
    case Dtype::F16: weightedSumTyped<S, Dtype::F16>(weights, groups, rows, n, width, out); break;
    case Dtype::BF16: weightedSumTyped<S, Dtype::BF16>(weights, groups, rows, n, width, out); break;
  }
}

// ---- Element-wise functions --------------------------------------------------------------------

// e^x with the Cephes single-precision polynomial (about 2 ulp on [-87.3, 88]); 0 below -87.3,
// where e^x is under FLT_MIN, and e^88 above 88.
template <class S>
inline typename S::Vec vectorExp(typename S::Vec x) {
  using Vec = typename S::Vec;
  const Vec clamped = S::max(S::min(x, S::set1(88.0f)), S::set1(-87.3f));

  // e^x = 2^n · e^r with n = round(x · log2 e) and r = x - n · ln 2 (ln 2 split in two parts so
  // that n · ln2High is exact).
  const Vec n = S::round(S::mul(clamped, S::set1(1.44269504088896341f)));
  Vec r = S::sub(clamped, S::mul(n, S::set1(0.693359375f)));
  r = S::sub(r, S::mul(n, S::set1(-2.12194440e-4f)));

  // e^r ≈ 1 + r + r² · P(r) on |r| <= ln 2 / 2.
  Vec p = S::set1(1.9875691500e-4f);
  p = S::fma(p, r, S::set1(1.3981999507e-3f));
  p = S::fma(p, r, S::set1(8.3334519073e-3f));
  p = S::fma(p, r, S::set1(4.1665795894e-2f));
  p = S::fma(p, r, S::set1(1.6666665459e-1f));
  p = S::fma(p, r, S::set1(5.0000001201e-1f));
  const Vec expR = S::add(S::fma(p, S::mul(r, r), r), S::set1(1.0f));

  return S::keepWhereAtLeast(S::mul(expR, S::exp2Integer(n)), x, -87.3f);
}

template <class S>
void simdSoftmax(float* values, size_t n) {
  constexpr size_t W = S::kWidth;
  float max = -__builtin_inff();
  for (size_t i = 0; i < n; i++) max = values[i] > max ? values[i] : max;
  if (max == -__builtin_inff()) {
    // Nothing is allowed; callers never pass such a row, but keep the output defined.
    for (size_t i = 0; i < n; i++) values[i] = 0.0f;
    return;
  }

  const typename S::Vec shift = S::set1(max);
  typename S::Vec sums = S::zero();
  size_t i = 0;
  for (; i + W <= n; i += W) {
    typename S::Vec e = vectorExp<S>(S::sub(S::load(values + i), shift));
    S::store(values + i, e);
    sums = S::add(sums, e);
  }
  float sum = S::reduce(sums);
  for (; i < n; i++) {
    values[i] = __builtin_expf(values[i] - max);
    sum += values[i];
  }

  const typename S::Vec inverse = S::set1(1.0f / sum);
  i = 0;
  for (; i + W <= n; i += W) S::store(values + i, S::mul(S::load(values + i), inverse));
  for (; i < n; i++) values[i] *= 1.0f / sum;
}

// gate = gate / (1 + e^-gate) ⊙ up
template <class S>
void simdSiluMul(float* gate, const float* up, size_t n) {
  constexpr size_t W = S::kWidth;
  const typename S::Vec one = S::set1(1.0f);
  size_t i = 0;
  for (; i + W <= n; i += W) {
    typename S::Vec z = S::load(gate + i);
    typename S::Vec sigmoidDenominator = S::add(one, vectorExp<S>(S::sub(S::zero(), z)));
    S::store(gate + i, S::mul(S::div(z, sigmoidDenominator), S::load(up + i)));
  }
  for (; i < n; i++) gate[i] = gate[i] / (1.0f + __builtin_expf(-gate[i])) * up[i];
}

template <class S>
constexpr Kernels makeKernels(const char* name) {
  return Kernels{
      name,           simdMatVec<S>,      simdMatMul<S>,   simdDot<S>,     simdAxpy<S>,
      simdWeightedSum<S>, simdToFloat<S>, portableRmsNorm, simdSiluMul<S>, simdSoftmax<S>,
  };
}
