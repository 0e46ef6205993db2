#include "weights.h"

#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "errors.h"
#include "half.h"
#include "log.h"

#ifndef _WIN32
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace nesso {

// ---- MappedFile -------------------------------------------------------------------------------

#ifndef _WIN32

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    ErrorCode code = error == ENOENT ? ErrorCode::ModelNotFound : ErrorCode::InvalidModel;
    fail(code, "loadModel: cannot open weights file ", path, ": ", std::strerror(error),
         " (check the path and that the download finished)");
  }
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    int error = errno;
    ::close(fd);
    fail(ErrorCode::InvalidModel, "loadModel: cannot stat weights file ", path, ": ", std::strerror(error));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    fail(ErrorCode::InvalidModel, "loadModel: weights path ", path, " is not a regular file");
  }
  size_ = uint64_t(info.st_size);
  if (size_ > 0) {
    void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapped == MAP_FAILED) {
      int error = errno;
      ::close(fd);
      fail(ErrorCode::Internal, "loadModel: mmap of ", path, " (", size_, " bytes) failed: ", std::strerror(error));
    }
    data_ = static_cast<const uint8_t*>(mapped);
    // Start reading the file into the page cache now; the first forward pass touches all of it.
    ::madvise(mapped, size_, MADV_WILLNEED);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

#else

MappedFile::MappedFile(const std::string& path) : path_(path) {
  // TODO: map files with CreateFileMapping on Windows.
  fail(ErrorCode::Unsupported, "loadModel: memory-mapping weights is not implemented on Windows (", path, ")");
}

MappedFile::~MappedFile() {}

#endif

// ---- Tensor lookup ----------------------------------------------------------------------------

namespace {

std::string shapeText(const std::vector<uint64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); i++) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

// FNV-1a, 64-bit.
class Fingerprint {
 public:
  void add(const void* data, size_t size) {
    const uint8_t* bytes = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < size; i++) {
      hash_ = (hash_ ^ bytes[i]) * 0x100000001b3ull;
    }
  }
  template <typename T>
  void addValue(T value) {
    add(&value, sizeof value);
  }
  void addText(const std::string& text) { add(text.data(), text.size() + 1); }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

// Checks each tensor's bounds once and finds tensors by name with the shape the config implies.
class TensorTable {
 public:
  TensorTable(const std::vector<std::unique_ptr<MappedFile>>& files, const std::vector<TensorSpec>& tensors,
              Fingerprint& fingerprint, std::vector<std::vector<float>>& groupParameters)
      : files_(files), fingerprint_(fingerprint), groupParameters_(groupParameters) {
    for (const TensorSpec& tensor : tensors) {
      checkBounds(tensor);
      if (!byName_.emplace(tensor.name, &tensor).second) {
        fail(ErrorCode::InvalidModel, "loadModel: tensor \"", tensor.name,
             "\" appears twice in the spec (duplicate across shards?)");
      }
    }
  }

  bool contains(const std::string& name) const { return byName_.count(name) != 0; }

  Matrix matrix(const std::string& name, size_t rows, size_t cols) {
    const TensorSpec& tensor = find(name, {rows, cols});
    return makeMatrix(dataOf(tensor), tensor.dtype, rows, cols);
  }

  // The weight "<path>.weight" of float shape [rows, cols]: quantized when "<path>.scales" exists
  // (the rule mlx-lm's loader applies), else a float matrix.
  LinearWeights linear(const std::string& path, size_t rows, size_t cols) {
    LinearWeights weights;
    if (!contains(path + ".scales")) {
      weights.dense = matrix(path + ".weight", rows, cols);
      return weights;
    }
    weights.isQuantized = true;
    weights.quantized = quantized(path, rows, cols);
    return weights;
  }

  std::vector<float> vector(const std::string& name, size_t length) {
    const TensorSpec& tensor = find(name, {length});
    std::vector<float> values(length);
    const uint8_t* data = dataOf(tensor);
    for (size_t i = 0; i < length; i++) values[i] = loadElement(data, int(tensor.dtype), i);
    return values;
  }

 private:
  void checkBounds(const TensorSpec& tensor) {
    if (tensor.file >= files_.size()) {
      fail(ErrorCode::InvalidArgument, "loadModel: tensor \"", tensor.name, "\" refers to file index ", tensor.file,
           " but the spec lists ", files_.size(), " files");
    }
    uint64_t elements = 1;
    for (uint64_t dimension : tensor.shape) {
      if (dimension != 0 && elements > UINT64_MAX / dimension) {
        fail(ErrorCode::InvalidModel, "loadModel: tensor \"", tensor.name, "\" shape ", shapeText(tensor.shape),
             " overflows 64 bits");
      }
      elements *= dimension;
    }
    // A U32 quantized weight is the one non-float tensor whose size is checked here.
    const bool packed = tensor.dtypeText == "U32" && tensor.bits != 0;
    const uint64_t elementBytes = packed ? 4 : dtypeSize(tensor.dtype);
    if ((tensor.dtypeSupported || packed) && elements > UINT64_MAX / elementBytes) {
      fail(ErrorCode::InvalidModel, "loadModel: tensor \"", tensor.name, "\" shape ", shapeText(tensor.shape),
           " overflows 64 bits");
    }
    uint64_t expectedBytes = elements * elementBytes;
    if ((tensor.dtypeSupported || packed) && tensor.byteLength != expectedBytes) {
      fail(ErrorCode::InvalidModel, "loadModel: tensor \"", tensor.name, "\" has byteLength ", tensor.byteLength,
           " but shape ", shapeText(tensor.shape), " of ", tensor.dtypeText, " needs ", expectedBytes, " bytes");
    }
    const MappedFile& file = *files_[tensor.file];
    if (tensor.offset > file.size() || tensor.byteLength > file.size() - tensor.offset) {
      fail(ErrorCode::InvalidModel, "loadModel: tensor \"", tensor.name, "\" ends at byte ", tensor.offset + tensor.byteLength,
           " but ", file.path(), " has ", file.size(), " bytes (truncated download? fetch the model again)");
    }
  }

  QuantizedMatrix quantized(const std::string& path, size_t rows, size_t cols) {
    const std::string weightName = path + ".weight";
    auto found = byName_.find(weightName);
    if (found == byName_.end()) {
      fail(ErrorCode::InvalidModel, "loadModel: tensor \"", weightName, "\" is missing but \"", path,
           ".scales\" exists (expected a U32 quantized weight)");
    }
    const TensorSpec& packed = *found->second;
    if (packed.dtypeText != "U32" || packed.bits == 0) {
      fail(ErrorCode::InvalidModel, "loadModel: tensor \"", weightName, "\" has dtype ", packed.dtypeText,
           " but \"", path, ".scales\" marks it as quantized, which needs a U32 weight with spec.tensors[].quantization");
    }
    const int bits = packed.bits;
    const int groupSize = packed.groupSize;
    if (!isAffineBits(bits) || !isAffineGroupSize(groupSize)) {
      fail(ErrorCode::InvalidArgument, "loadModel: tensor \"", weightName, "\" has bits ", bits, " and groupSize ", groupSize,
           " but affine quantization supports bits 2, 3, 4, 5, 6, 8 and group sizes 32, 64, 128");
    }
    if (cols % size_t(groupSize) != 0) {
      fail(ErrorCode::InvalidModel, "loadModel: tensor \"", weightName, "\" has ", cols, " inputs, not a multiple of groupSize ",
           groupSize);
    }
    // cols is a multiple of 32 here, so a row is a whole number of U32 words.
    const size_t packedCols = cols * size_t(bits) / 32;
    const size_t groups = cols / size_t(groupSize);
    const TensorSpec& checked = find(weightName, {rows, packedCols}, true);

    QuantizedMatrix matrix;
    matrix.packed = dataOf(checked);
    matrix.bits = bits;
    matrix.groupSize = groupSize;
    matrix.rows = rows;
    matrix.cols = cols;
    matrix.packedRowBytes = packedCols * 4;
    matrix.groupsPerRow = groups;
    matrix.scales = floatCopy(path + ".scales", rows, groups);
    matrix.biases = floatCopy(path + ".biases", rows, groups);
    return matrix;
  }

  const TensorSpec& find(const std::string& name, const std::vector<uint64_t>& shape, bool packed = false) {
    auto found = byName_.find(name);
    if (found == byName_.end()) {
      fail(ErrorCode::InvalidModel, "loadModel: tensor \"", name, "\" is missing (expected shape ", shapeText(shape), ")");
    }
    const TensorSpec& tensor = *found->second;
    if (!tensor.dtypeSupported && !packed) {
      fail(ErrorCode::Unsupported, "loadModel: tensor \"", name, "\" has dtype ", tensor.dtypeText,
           " but this engine computes with F32, F16 and BF16 weights only, or with U32 weights that have \"<path>.scales\""
           " and \"<path>.biases\" (MLX affine quantization)");
    }
    if (tensor.shape != shape) {
      fail(ErrorCode::InvalidModel, "loadModel: tensor \"", name, "\" has shape ", shapeText(tensor.shape),
           " but the config requires ", shapeText(shape));
    }
    addToFingerprint(tensor);
    return tensor;
  }

  void addToFingerprint(const TensorSpec& tensor) {
    fingerprint_.addText(tensor.name);
    fingerprint_.addValue(uint8_t(tensor.dtype));
    for (uint64_t dimension : tensor.shape) fingerprint_.addValue(dimension);
    // The first and last 64 bytes tell apart checkpoints of the same geometry (another seed or
    // fine-tune) while touching only two pages per tensor.
    const uint8_t* data = dataOf(tensor);
    uint64_t sample = tensor.byteLength < 64 ? tensor.byteLength : 64;
    fingerprint_.add(data, sample);
    fingerprint_.add(data + tensor.byteLength - sample, sample);
  }

  const uint8_t* dataOf(const TensorSpec& tensor) const { return files_[tensor.file]->data() + tensor.offset; }

  // A float32 copy of a [rows, cols] float tensor, kept alive in groupParameters_.
  const float* floatCopy(const std::string& name, size_t rows, size_t cols) {
    const TensorSpec& tensor = find(name, {rows, cols});
    const uint8_t* data = dataOf(tensor);
    std::vector<float> values(rows * cols);
    for (size_t i = 0; i < values.size(); i++) values[i] = loadElement(data, int(tensor.dtype), i);
    groupParameters_.push_back(std::move(values));
    return groupParameters_.back().data();
  }

  const std::vector<std::unique_ptr<MappedFile>>& files_;
  Fingerprint& fingerprint_;
  std::vector<std::vector<float>>& groupParameters_;
  std::unordered_map<std::string, const TensorSpec*> byName_;
};

}  // namespace

// ---- ModelWeights -----------------------------------------------------------------------------

ModelWeights::ModelWeights(const std::vector<std::string>& files, const std::vector<TensorSpec>& tensors,
                           const ModelConfig& config) {
  for (const std::string& path : files) {
    files_.push_back(std::make_unique<MappedFile>(path));
    mappedBytes_ += files_.back()->size();
  }

  Fingerprint fingerprint;
  for (int value : {config.dim, config.nLayers, config.nHeads, config.nKvHeads, config.headDim, config.ffnDim,
                    config.vocabSize}) {
    fingerprint.addValue(value);
  }
  TensorTable table(files_, tensors, fingerprint, groupParameters_);

  const size_t dim = size_t(config.dim);
  const size_t vocab = size_t(config.vocabSize);
  const size_t queryDim = config.queryDim();
  const size_t kvDim = config.kvDim();
  const size_t ffnDim = size_t(config.ffnDim);

  embedding = table.linear("model.embed_tokens", vocab, dim);
  if (config.tieWordEmbeddings) {
    outputHead = embedding;
  } else {
    outputHead = table.linear("lm_head", vocab, dim);
  }
  finalNorm = table.vector("model.norm.weight", dim);

  layers.resize(size_t(config.nLayers));
  for (size_t i = 0; i < layers.size(); i++) {
    LayerWeights& layer = layers[i];
    const std::string prefix = concat("model.layers.", i, ".");
    layer.attentionNorm = table.vector(prefix + "input_layernorm.weight", dim);
    layer.query = table.linear(prefix + "self_attn.q_proj", queryDim, dim);
    layer.key = table.linear(prefix + "self_attn.k_proj", kvDim, dim);
    layer.value = table.linear(prefix + "self_attn.v_proj", kvDim, dim);
    layer.output = table.linear(prefix + "self_attn.o_proj", dim, queryDim);
    if (config.attentionBias) {
      layer.queryBias = table.vector(prefix + "self_attn.q_proj.bias", queryDim);
      layer.keyBias = table.vector(prefix + "self_attn.k_proj.bias", kvDim);
      layer.valueBias = table.vector(prefix + "self_attn.v_proj.bias", kvDim);
      layer.outputBias = table.vector(prefix + "self_attn.o_proj.bias", dim);
    }
    layer.ffnNorm = table.vector(prefix + "post_attention_layernorm.weight", dim);
    layer.gate = table.linear(prefix + "mlp.gate_proj", ffnDim, dim);
    layer.up = table.linear(prefix + "mlp.up_proj", ffnDim, dim);
    layer.down = table.linear(prefix + "mlp.down_proj", dim, ffnDim);
    if (config.mlpBias) {
      layer.gateBias = table.vector(prefix + "mlp.gate_proj.bias", ffnDim);
      layer.upBias = table.vector(prefix + "mlp.up_proj.bias", ffnDim);
      layer.downBias = table.vector(prefix + "mlp.down_proj.bias", dim);
    }
  }
  if (!config.attentionBias && table.contains("model.layers.0.self_attn.q_proj.bias")) {
    logMessage(LogLevel::Warn, "loadModel: the checkpoint has attention biases but config.attentionBias is false; they are ignored");
  }
  fingerprint_ = fingerprint.value();
}

}  // namespace nesso
