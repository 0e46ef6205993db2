// Checkpoint weights: safetensors files mmapped read-only, and the per-layer views the forward
// pass reads. The TS side parses and validates the safetensors headers; this file checks again
// everything a wrong spec could turn into an out-of-bounds read.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "quant.h"
#include "tensor.h"

namespace nesso {

// One tensor as the TS side located it.
struct TensorSpec {
  std::string name;
  size_t file = 0;  // index into the file list
  Dtype dtype = Dtype::F32;
  // False for a dtype the engine cannot compute with as floats (U32, F8 …). Such a tensor is
  // bounds-checked, and loadModel fails only if the model needs it as a float tensor.
  bool dtypeSupported = true;
  std::string dtypeText;  // the safetensors dtype string, for messages
  // Set for a U32 MLX-quantized "<path>.weight" (0 otherwise); its scales and biases are the
  // tensors "<path>.scales" and "<path>.biases".
  int bits = 0;
  int groupSize = 0;
  std::vector<uint64_t> shape;
  uint64_t offset = 0;  // absolute byte offset in the file; may be unaligned
  uint64_t byteLength = 0;
};

// A file mapped read-only for the lifetime of the object.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

struct LayerWeights {
  std::vector<float> attentionNorm;  // [dim]
  LinearWeights query;                // [nHeads * headDim, dim]
  LinearWeights key;                  // [nKvHeads * headDim, dim]
  LinearWeights value;                // [nKvHeads * headDim, dim]
  LinearWeights output;               // [dim, nHeads * headDim]
  std::vector<float> queryBias, keyBias, valueBias, outputBias;  // empty unless attentionBias
  std::vector<float> ffnNorm;        // [dim]
  LinearWeights gate;                 // [ffnDim, dim]
  LinearWeights up;                   // [ffnDim, dim]
  LinearWeights down;                 // [dim, ffnDim]
  std::vector<float> gateBias, upBias, downBias;  // empty unless mlpBias
};

class ModelWeights {
 public:
  // Maps the files and resolves every tensor the config requires. Throws ModelNotFound for a
  // missing file and InvalidModel for a tensor that is missing, misshapen or out of bounds.
  ModelWeights(const std::vector<std::string>& files, const std::vector<TensorSpec>& tensors, const ModelConfig& config);

  LinearWeights embedding;        // [vocabSize, dim]
  LinearWeights outputHead;       // [vocabSize, dim]; the embedding when the head is tied
  std::vector<float> finalNorm;   // [dim]
  std::vector<LayerWeights> layers;

  // Hash of the config, tensor layout and a few bytes of every tensor. Saved KV-cache states
  // carry it so that a state from another model is rejected.
  uint64_t fingerprint() const { return fingerprint_; }
  uint64_t mappedBytes() const { return mappedBytes_; }
  // Number of weights stored quantized.
  size_t quantizedCount() const { return groupParameters_.size() / 2; }

 private:
  std::vector<std::unique_ptr<MappedFile>> files_;
  // Float32 copies of every quantized weight's scales and biases; QuantizedMatrix points into them.
  std::vector<std::vector<float>> groupParameters_;
  uint64_t fingerprint_ = 0;
  uint64_t mappedBytes_ = 0;
};

}  // namespace nesso
