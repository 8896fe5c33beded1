// Safetensors, Hugging Face's checkpoint format: reading (memory-mapped, the whole
// header validated up front), atomic writing, and sharded checkpoints as transformers
// writes them (model-0000i-of-0000K.safetensors + model.safetensors.index.json).
// A file is: u64 little-endian N, N bytes of JSON header, then the data buffer;
// header offsets are relative to the buffer. Data is little-endian, row-major.
#pragma once

#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace grpo {

// One tensor's header entry.
struct SafetensorsInfo {
  std::string name;             // the key in the header
  std::string dtype;            // "F32", "BF16", ... as written in the header
  std::vector<int64_t> shape;   // empty for a 0-d tensor
  int64_t begin = 0;            // byte range [begin, end) in the data buffer
  int64_t end = 0;
};

// The largest header accepted, as the Python library (safetensors' MAX_HEADER_SIZE).
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// A safetensors file opened read-only by memory map. The constructor validates
// the whole header (dtypes, shapes against byte spans, offsets inside the buffer,
// no overlapping tensors, metadata strings only) and raises grpo::Error naming the
// file, and the tensor where there is one, before any tensor is read.
// Supported dtypes: F32 F16 BF16 F64 I8 I16 I32 I64 U8 BOOL; F8_E4M3 / F8_E5M2
// are recognised only to be refused as unsupported.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(std::string path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Tensor names, sorted.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  // Raises grpo::Error naming the file and `name` when there is no such tensor.
  const SafetensorsInfo& info(const std::string& name) const;
  // The "__metadata__" object; empty when the header has none.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // A CPU tensor of the stored dtype and shape that owns its memory (copied out
  // of the mapping, so it outlives this object). Raises grpo::Error for an unknown
  // name, and for a BOOL tensor holding a byte other than 0 or 1.
  torch::Tensor tensor(const std::string& name) const;
  // The same tensor without a copy: a CPU tensor over the mapped bytes, valid
  // only while this object lives, and read-only (writing through it faults).
  torch::Tensor view(const std::string& name) const;
  // Every tensor by name.
  std::map<std::string, torch::Tensor> tensors() const;

 private:
  void unmap() noexcept;

  std::string path_;
  const unsigned char* map_ = nullptr;   // the whole file, read-only
  size_t size_ = 0;                      // bytes mapped
  size_t data_start_ = 0;                // 8 + N: where the data buffer begins
  std::map<std::string, SafetensorsInfo> infos_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` to `path` atomically: streamed into path + ".tmp.<pid>", fsynced,
// then renamed over `path`; on failure the temporary file is removed and `path`
// is untouched. Tensors may have any supported dtype, device and strides
// (contiguous CPU copies are written, one tensor at a time). The header is padded
// with spaces so the data starts at a multiple of 8 bytes; tensors are laid out
// sorted by name, as the Python library does. Raises grpo::Error naming the path
// for an empty or duplicate name, an unsupported dtype or an I/O failure.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// The files of a checkpoint (as load_safetensors finds and checks them) kept
// open, so that its tensors can be viewed without a copy: load_pretrained copies
// each straight from the mapping into the model's parameter.
class SafetensorsCheckpoint {
 public:
  explicit SafetensorsCheckpoint(const std::string& path_or_dir);
  ~SafetensorsCheckpoint();
  std::vector<std::string> names() const;                  // sorted
  std::map<std::string, torch::Tensor> views() const;      // SafetensorsFile::view of each
  std::map<std::string, torch::Tensor> tensors() const;    // owning copies

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;
};

// Every tensor of a checkpoint. `path_or_dir` is a .safetensors file or a folder
// holding model.safetensors or, failing that, model.safetensors.index.json
// ({"metadata": {...}, "weight_map": {tensor name: shard file}}). For an index,
// every shard must exist and hold exactly the tensors the index gives it; errors
// name the index file, the shard and the tensor.
std::map<std::string, torch::Tensor> load_safetensors(const std::string& path_or_dir);

// Writes `tensors` into folder `dir` (created if missing) as transformers does:
// one model.safetensors when the tensor bytes fit in `max_shard_bytes`, else
// shards model-00001-of-0000K.safetensors ... filled in name order (a new shard
// starts when the next tensor would overflow the current one; a tensor larger
// than the limit gets a shard of its own) plus model.safetensors.index.json with
// "total_size" = the sum of the tensor bytes. Each file is written atomically,
// the index last; files of an earlier save that the new one does not use
// (model.safetensors, the index, model-*-of-*.safetensors) are then removed, so
// load_safetensors(dir) reads the new save. Every shard gets `metadata`.
void save_safetensors_sharded(const std::string& dir, const std::map<std::string, torch::Tensor>& tensors,
                              int64_t max_shard_bytes,
                              const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace grpo
