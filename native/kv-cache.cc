#include "kv-cache.h"

#include <cstdlib>
#include <cstring>

#include "errors.h"
#include "half.h"

namespace nesso {

namespace {

constexpr char kStateMagic[8] = {'N', 'E', 'S', 'S', 'O', 'K', 'V', '1'};
constexpr uint32_t kStateVersion = 1;
// The element type codes of the header: the Dtype values of tensor.h.
constexpr uint32_t kElementFloat32 = uint32_t(Dtype::F32);
constexpr size_t kHeaderSize = 48;

// Header fields, little-endian (the engine runs on little-endian CPUs only).
struct StateHeader {
  uint32_t version;
  uint32_t nLayers;
  uint32_t nKvHeads;
  uint32_t headDim;
  uint32_t elementType;
  uint32_t tokens;
  uint64_t fingerprint;
  uint32_t logitCount;
};

void writeHeader(uint8_t* out, const StateHeader& header) {
  std::memset(out, 0, kHeaderSize);
  std::memcpy(out, kStateMagic, 8);
  std::memcpy(out + 8, &header.version, 4);
  std::memcpy(out + 12, &header.nLayers, 4);
  std::memcpy(out + 16, &header.nKvHeads, 4);
  std::memcpy(out + 20, &header.headDim, 4);
  std::memcpy(out + 24, &header.elementType, 4);
  std::memcpy(out + 28, &header.tokens, 4);
  std::memcpy(out + 32, &header.fingerprint, 8);
  std::memcpy(out + 40, &header.logitCount, 4);
}

StateHeader readHeader(const uint8_t* in) {
  StateHeader header;
  std::memcpy(&header.version, in + 8, 4);
  std::memcpy(&header.nLayers, in + 12, 4);
  std::memcpy(&header.nKvHeads, in + 16, 4);
  std::memcpy(&header.headDim, in + 20, 4);
  std::memcpy(&header.elementType, in + 24, 4);
  std::memcpy(&header.tokens, in + 28, 4);
  std::memcpy(&header.fingerprint, in + 32, 8);
  std::memcpy(&header.logitCount, in + 40, 4);
  return header;
}

}  // namespace

KvCache::KvCache(int nLayers, int nKvHeads, int headDim, size_t contextSize, Dtype dtype)
    : nLayers_(nLayers),
      nKvHeads_(nKvHeads),
      headDim_(headDim),
      contextSize_(contextSize),
      dtype_(dtype),
      elementSize_(dtypeSize(dtype)) {
  if (dtype != Dtype::F32 && dtype != Dtype::F16) {
    fail(ErrorCode::InvalidArgument, "createContext: the KV cache stores f32 or f16, not ", dtypeName(dtype));
  }
  size_t elements = size_t(nLayers) * 2 * size_t(nKvHeads) * contextSize * size_t(headDim);
  data_ = static_cast<uint8_t*>(std::calloc(elements, elementSize_));
  if (data_ == nullptr) {
    fail(ErrorCode::Internal, "createContext: cannot allocate the KV cache of ", elements * elementSize_,
         " bytes for contextSize ", contextSize, " (use a smaller contextSize or kvCacheType f16)");
  }
}

void KvCache::store(int layer, int head, size_t position, const float* key, const float* value) {
  const size_t offset = size_t(headDim_) * position;
  uint8_t* keyRow = data_ + (offsetOf(layer, 0, head) + offset) * elementSize_;
  uint8_t* valueRow = data_ + (offsetOf(layer, 1, head) + offset) * elementSize_;
  if (dtype_ == Dtype::F32) {
    std::memcpy(keyRow, key, size_t(headDim_) * sizeof(float));
    std::memcpy(valueRow, value, size_t(headDim_) * sizeof(float));
    return;
  }
  for (int i = 0; i < headDim_; i++) {
    const uint16_t keyBits = floatToF16BitsSaturated(key[i]);
    const uint16_t valueBits = floatToF16BitsSaturated(value[i]);
    std::memcpy(keyRow + 2 * size_t(i), &keyBits, 2);
    std::memcpy(valueRow + 2 * size_t(i), &valueBits, 2);
  }
}

KvCache::~KvCache() {
  std::free(data_);
}

size_t KvCache::stateSize(size_t tokens, size_t logitCount) const {
  return kHeaderSize + size_t(nLayers_) * 2 * size_t(nKvHeads_) * tokens * size_t(headDim_) * elementSize_ +
         logitCount * sizeof(float);
}

void KvCache::saveState(size_t tokens, uint64_t fingerprint, const float* logits, size_t logitCount, uint8_t* out) const {
  StateHeader header{kStateVersion,      uint32_t(nLayers_), uint32_t(nKvHeads_), uint32_t(headDim_),
                     uint32_t(dtype_),   uint32_t(tokens),   fingerprint,         uint32_t(logitCount)};
  writeHeader(out, header);
  uint8_t* cursor = out + kHeaderSize;
  const size_t rowBytes = tokens * size_t(headDim_) * elementSize_;
  for (int layer = 0; layer < nLayers_; layer++) {
    for (int kind = 0; kind < 2; kind++) {
      for (int head = 0; head < nKvHeads_; head++) {
        std::memcpy(cursor, data_ + offsetOf(layer, kind, head) * elementSize_, rowBytes);
        cursor += rowBytes;
      }
    }
  }
  if (logitCount > 0) std::memcpy(cursor, logits, logitCount * sizeof(float));
}

size_t KvCache::loadState(const uint8_t* state, size_t size, uint64_t fingerprint, float* logits, size_t logitCapacity) {
  if (size < kHeaderSize || std::memcmp(state, kStateMagic, 8) != 0) {
    fail(ErrorCode::InvalidArgument, "loadState: the data (", size,
         " bytes) is not a saved context state (missing the NESSOKV1 header)");
  }
  StateHeader header = readHeader(state);
  if (header.version != kStateVersion ||
      (header.elementType != kElementFloat32 && header.elementType != uint32_t(Dtype::F16))) {
    fail(ErrorCode::InvalidArgument, "loadState: state format version ", header.version, " with element type ",
         header.elementType, " is not supported (expected version ", kStateVersion, ", float32 or float16)");
  }
  if (header.elementType != uint32_t(dtype_)) {
    fail(ErrorCode::InvalidArgument, "loadState: the state stores keys and values as ",
         dtypeName(Dtype(header.elementType)), " but this context's KV cache is ", dtypeName(dtype_),
         " (load it into a context created with the same kvCacheType)");
  }
  if (header.nLayers != uint32_t(nLayers_) || header.nKvHeads != uint32_t(nKvHeads_) ||
      header.headDim != uint32_t(headDim_)) {
    fail(ErrorCode::InvalidArgument, "loadState: the state has ", header.nLayers, " layers x ", header.nKvHeads,
         " kv heads x headDim ", header.headDim, " but this model has ", nLayers_, " x ", nKvHeads_, " x ", headDim_,
         " (it was saved by another model)");
  }
  if (header.fingerprint != fingerprint) {
    fail(ErrorCode::InvalidArgument, "loadState: the state was saved by another model with the same geometry "
         "(weights fingerprint differs); save it again with this model");
  }
  if (header.tokens > contextSize_) {
    fail(ErrorCode::ContextFull, "loadState: the state contains ", header.tokens, " tokens but contextSize is ", contextSize_,
         " (create a context of at least ", header.tokens, " positions)");
  }
  if (header.logitCount != 0 && header.logitCount != logitCapacity) {
    fail(ErrorCode::InvalidArgument, "loadState: the state carries ", header.logitCount, " logits but the vocabulary has ",
         logitCapacity);
  }
  size_t expected = stateSize(header.tokens, header.logitCount);
  if (size != expected) {
    fail(ErrorCode::InvalidArgument, "loadState: the state is ", size, " bytes but its header describes ", expected,
         " (truncated or corrupted)");
  }

  const uint8_t* cursor = state + kHeaderSize;
  const size_t rowBytes = size_t(header.tokens) * size_t(headDim_) * elementSize_;
  for (int layer = 0; layer < nLayers_; layer++) {
    for (int kind = 0; kind < 2; kind++) {
      for (int head = 0; head < nKvHeads_; head++) {
        std::memcpy(data_ + offsetOf(layer, kind, head) * elementSize_, cursor, rowBytes);
        cursor += rowBytes;
      }
    }
  }
  if (header.logitCount > 0) std::memcpy(logits, cursor, size_t(header.logitCount) * sizeof(float));
  setLength(header.tokens);
  return header.logitCount;
}

}  // namespace nesso
