// Safetensors reading (mmap + a header validated in full before any tensor is
// touched), streaming atomic writing, and transformers-style sharded checkpoints.
// NB: the format is little-endian and so is every host we build for; see the static_assert.
#include "grpo/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "grpo/error.h"
#include "grpo/files.h"

namespace grpo {

namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; a big-endian host would need byte swaps");

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";
constexpr char kMetadataKey[] = "__metadata__";

struct Dtype {
  const char* name;
  c10::ScalarType type;
  int64_t size;  // bytes per element
};

constexpr Dtype kDtypes[] = {
    {"F64", c10::kDouble, 8}, {"F32", c10::kFloat, 4}, {"F16", c10::kHalf, 2},  {"BF16", c10::kBFloat16, 2},
    {"I64", c10::kLong, 8},   {"I32", c10::kInt, 4},   {"I16", c10::kShort, 2}, {"I8", c10::kChar, 1},
    {"U8", c10::kByte, 1},    {"BOOL", c10::kBool, 1},
    {"U16", c10::ScalarType::UInt16, 2}, {"U32", c10::ScalarType::UInt32, 4}, {"U64", c10::ScalarType::UInt64, 8},
    {"F8_E4M3", c10::ScalarType::Float8_e4m3fn, 1}, {"F8_E5M2", c10::ScalarType::Float8_e5m2, 1},
    {"F8_E8M0", c10::ScalarType::Float8_e8m0fnu, 1}, {"C64", c10::ScalarType::ComplexFloat, 8},
};

std::string supported_dtype_list() {
  std::string out;
  for (const Dtype& d : kDtypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

const Dtype* dtype_by_name(const std::string& name) {
  for (const Dtype& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const Dtype* dtype_by_type(c10::ScalarType type) {
  for (const Dtype& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

// A JSON value for an error message, cut short so a hostile header cannot flood it.
std::string brief(const json& value) {
  std::string s = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

// Parses `text` and raises grpo::Error naming `where` when it is not JSON or an
// object repeats a key (nlohmann would silently keep the last one, so two header
// entries or two index entries for one tensor would go unnoticed).
json parse_json_strict(const std::string& text, const std::string& where) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  const json::parser_callback_t callback = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text, callback);
  } catch (const json::exception& e) {
    throw Error(where + ": not valid UTF-8 JSON: " + e.what());
  }
  if (!duplicate.empty()) throw Error(where + ": the key \"" + duplicate + "\" appears twice");
  return j;
}

// A JSON number that is a non-negative integer fitting int64_t, or -1.
int64_t as_size(const json& v) {
  if (!v.is_number_unsigned()) return -1;
  const auto u = v.get<uint64_t>();
  return u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? -1 : static_cast<int64_t>(u);
}

// One header entry, checked against the dtype table and the buffer's size.
SafetensorsInfo parse_entry(const std::string& path, const std::string& name, const json& entry, uint64_t buffer_bytes) {
  const std::string where = path + ": tensor '" + name + "'";
  if (!entry.is_object()) throw Error(where + ": expected an object {dtype, shape, data_offsets}, got " + brief(entry));
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(key)) throw Error(where + ": no \"" + key + "\"");
  for (const auto& item : entry.items())
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets")
      throw Error(where + ": unexpected key \"" + item.key() + "\" (expected dtype, shape, data_offsets)");

  SafetensorsInfo info;
  info.name = name;
  const json& dtype = entry["dtype"];
  if (!dtype.is_string()) throw Error(where + ": \"dtype\" must be a string, got " + brief(dtype));
  info.dtype = dtype.get<std::string>();
  const Dtype* d = dtype_by_name(info.dtype);
  if (d == nullptr) throw Error(where + ": unknown dtype \"" + info.dtype + "\"; expected one of " + supported_dtype_list());

  const json& shape = entry["shape"];
  if (!shape.is_array()) throw Error(where + ": \"shape\" must be a list of non-negative integers, got " + brief(shape));
  uint64_t numel = 1;
  bool overflow = false;
  for (const json& dim : shape) {
    const int64_t n = as_size(dim);
    if (n < 0) throw Error(where + ": \"shape\" must be a list of non-negative integers, got " + brief(shape));
    info.shape.push_back(n);
    overflow |= __builtin_mul_overflow(numel, static_cast<uint64_t>(n), &numel);
  }
  uint64_t span = 0;
  overflow |= __builtin_mul_overflow(numel, static_cast<uint64_t>(d->size), &span);

  const json& offsets = entry["data_offsets"];
  const bool pair = offsets.is_array() && offsets.size() == 2;
  info.begin = pair ? as_size(offsets[0]) : -1;
  info.end = pair ? as_size(offsets[1]) : -1;
  if (info.begin < 0 || info.end < 0 || info.begin > info.end)
    throw Error(where + ": \"data_offsets\" must be [begin, end] with 0 <= begin <= end, got " + brief(offsets));
  const auto actual = static_cast<uint64_t>(info.end - info.begin);
  if (overflow || span != actual)
    throw Error(where + ": shape " + brief(shape) + " of " + info.dtype + " needs " +
                (overflow ? std::string("more than 2^64") : std::to_string(span)) + " bytes, but data_offsets " +
                brief(offsets) + " span " + std::to_string(actual));
  if (static_cast<uint64_t>(info.end) > buffer_bytes)
    throw Error(where + ": data_offsets " + brief(offsets) + " end past the data buffer (" +
                std::to_string(buffer_bytes) + " bytes)");
  return info;
}

// Bytes a tensor occupies once written.
int64_t byte_size(const torch::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); }

// "model-00002-of-00005.safetensors", as transformers names shards.
std::string shard_name(size_t i, size_t count) {
  char name[64];
  std::snprintf(name, sizeof name, "model-%05lld-of-%05lld.safetensors", static_cast<long long>(i + 1),
                static_cast<long long>(count));
  return name;
}

bool is_shard_name(const std::string& name) {
  if (name.size() != shard_name(0, 1).size() || name.rfind("model-", 0) != 0 || name.substr(11, 4) != "-of-" ||
      name.substr(20) != ".safetensors")
    return false;
  const std::string digits = name.substr(6, 5) + name.substr(15, 5);
  return std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Opens every shard an index lists, checking that each holds exactly the
// tensors the index gives it; fills `files` and `where` (tensor -> its file).
void open_index(const std::string& dir, const std::string& index_path,
                std::vector<std::unique_ptr<SafetensorsFile>>& files,
                std::map<std::string, const SafetensorsFile*>& where) {
  const json index = parse_json_strict(read_file(index_path, "a safetensors index"), index_path);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw Error(index_path + ": expected an object with a \"weight_map\" object {tensor name: shard file}");
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& item : index["weight_map"].items()) {
    if (!item.value().is_string() || item.value().get<std::string>().empty())
      throw Error(index_path + ": tensor '" + item.key() + "': the shard must be a file name, got " +
                  brief(item.value()));
    by_shard[item.value().get<std::string>()].push_back(item.key());
  }
  const json& weight_map = index["weight_map"];
  for (const auto& [shard, names] : by_shard) {
    const std::string shard_path = (fs::path(dir) / shard).string();
    if (!fs::is_regular_file(shard_path))
      throw Error(index_path + ": tensor '" + names.front() + "' is in shard '" + shard + "', which does not exist (" +
                  shard_path + ")");
    files.push_back(std::make_unique<SafetensorsFile>(shard_path));
    const SafetensorsFile& file = *files.back();
    for (const std::string& name : names)
      if (!file.contains(name))
        throw Error(index_path + ": tensor '" + name + "' is not in its shard '" + shard + "' (" + shard_path + ")");
    for (const std::string& name : file.names()) {
      const auto it = weight_map.find(name);
      if (it == weight_map.end())
        throw Error(index_path + ": shard '" + shard + "' holds tensor '" + name + "', which the index does not list");
      if (it->get<std::string>() != shard)
        throw Error(index_path + ": tensor '" + name + "' appears twice: in shard '" + shard +
                    "' and in shard '" + it->get<std::string>() + "', where the index places it");
    }
    for (const std::string& name : names) where.emplace(name, &file);
  }
}

}  // namespace

// ------------------------------------------------------------------ reading

SafetensorsFile::SafetensorsFile(std::string path) : path_(std::move(path)) {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path_ + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path_ + ": not a regular file");
  }
  const auto file_bytes = static_cast<uint64_t>(st.st_size);
  if (file_bytes < 8) {
    ::close(fd);
    throw Error(path_ + ": " + std::to_string(file_bytes) +
                " bytes, too short for a safetensors file (expected at least the 8-byte header length)");
  }
  void* map = ::mmap(nullptr, static_cast<size_t>(file_bytes), PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) throw Error(path_ + ": cannot memory-map: " + std::strerror(map_err));
  map_ = static_cast<const unsigned char*>(map);
  size_ = static_cast<size_t>(file_bytes);

  // NB: the constructor does not finish when validation throws, so the mapping is released here.
  try {
    uint64_t header_bytes = 0;
    std::memcpy(&header_bytes, map_, 8);
    if (header_bytes > kSafetensorsMaxHeaderBytes)
      throw Error(path_ + ": header length " + std::to_string(header_bytes) + " exceeds the limit of " +
                  std::to_string(kSafetensorsMaxHeaderBytes) + " bytes (not a safetensors file?)");
    if (header_bytes > file_bytes - 8)
      throw Error(path_ + ": header length " + std::to_string(header_bytes) + " runs past the end of the file (" +
                  std::to_string(file_bytes) + " bytes; truncated?)");
    data_start_ = 8 + static_cast<size_t>(header_bytes);
    const uint64_t buffer_bytes = file_bytes - data_start_;

    const json header = parse_json_strict(
        std::string(reinterpret_cast<const char*>(map_) + 8, static_cast<size_t>(header_bytes)), path_ + ": header");
    if (!header.is_object()) throw Error(path_ + ": the header must be a JSON object, got " + brief(header));

    for (const auto& item : header.items()) {
      if (item.key() == kMetadataKey) {
        if (!item.value().is_object())
          throw Error(path_ + ": \"__metadata__\" must be an object of strings, got " + brief(item.value()));
        for (const auto& m : item.value().items()) {
          if (!m.value().is_string())
            throw Error(path_ + ": \"__metadata__\" must be an object of strings; \"" + m.key() + "\" is " +
                        brief(m.value()));
          metadata_.emplace(m.key(), m.value().get<std::string>());
        }
        continue;
      }
      infos_.emplace(item.key(), parse_entry(path_, item.key(), item.value(), buffer_bytes));
    }

    // Overlap: sorted by begin, each non-empty range must start at or after the furthest end so far.
    std::vector<const SafetensorsInfo*> ranges;
    for (const auto& [name, info] : infos_)
      if (info.end > info.begin) ranges.push_back(&info);
    std::sort(ranges.begin(), ranges.end(),
              [](const SafetensorsInfo* a, const SafetensorsInfo* b) { return a->begin < b->begin; });
    const SafetensorsInfo* furthest = nullptr;
    for (const SafetensorsInfo* r : ranges) {
      if (furthest != nullptr && r->begin < furthest->end)
        throw Error(path_ + ": tensors '" + furthest->name + "' [" + std::to_string(furthest->begin) + ", " +
                    std::to_string(furthest->end) + ") and '" + r->name + "' [" + std::to_string(r->begin) + ", " +
                    std::to_string(r->end) + ") overlap");
      if (furthest == nullptr || r->end > furthest->end) furthest = r;
    }
  } catch (...) {
    unmap();
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() { unmap(); }

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      data_start_(other.data_start_),
      infos_(std::move(other.infos_)),
      metadata_(std::move(other.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    size_ = std::exchange(other.size_, 0);
    data_start_ = other.data_start_;
    infos_ = std::move(other.infos_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

void SafetensorsFile::unmap() noexcept {
  if (map_ != nullptr) ::munmap(const_cast<unsigned char*>(map_), size_);
  map_ = nullptr;
  size_ = 0;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(infos_.size());
  for (const auto& [name, info] : infos_) out.push_back(name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return infos_.count(name) != 0; }

const SafetensorsInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = infos_.find(name);
  if (it == infos_.end()) throw Error(path_ + ": no tensor named '" + name + "'");
  return it->second;
}

torch::Tensor SafetensorsFile::view(const std::string& name) const {
  const SafetensorsInfo& i = info(name);
  const Dtype* d = dtype_by_name(i.dtype);
  assert(d != nullptr && map_ != nullptr);  // both checked by the constructor
  const unsigned char* src = map_ + data_start_ + i.begin;
  const auto bytes = static_cast<size_t>(i.end - i.begin);
  if (d->type == c10::kBool) {
    const unsigned char* bad = std::find_if(src, src + bytes, [](unsigned char b) { return b > 1; });
    if (bad != src + bytes)
      throw Error(path_ + ": tensor '" + name + "': BOOL byte " + std::to_string(bad - src) + " is " +
                  std::to_string(*bad) + ", expected 0 or 1");
  }
  if (bytes == 0) return torch::empty(i.shape, torch::TensorOptions().dtype(d->type));
  // NB: a view is read to be copied; asking the kernel to read the span ahead
  // cuts the copy's cost on a cold mapping (one fault per page otherwise).
  // Advice only, so errors are ignored.
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto first = reinterpret_cast<uintptr_t>(src) & ~(page - 1);
  ::madvise(reinterpret_cast<void*>(first), bytes + (reinterpret_cast<uintptr_t>(src) - first), MADV_WILLNEED);
  // NB: from_blob needs a mutable pointer; the mapping is PROT_READ, and the
  // header says callers only read through it.
  return torch::from_blob(const_cast<unsigned char*>(src), i.shape, torch::TensorOptions().dtype(d->type));
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const { return view(name).clone(); }

std::map<std::string, torch::Tensor> SafetensorsFile::tensors() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, info] : infos_) out.emplace(name, tensor(name));
  return out;
}

// ------------------------------------------------------------------ writing

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string where = "save_safetensors: " + path;
  if (path.empty()) throw Error("save_safetensors: the path is empty");

  // Everything that can be checked is checked before the temporary file exists.
  std::vector<const std::pair<std::string, torch::Tensor>*> order;
  for (const auto& entry : tensors) {
    if (entry.first.empty()) throw Error(where + ": a tensor has an empty name");
    if (entry.first == kMetadataKey) throw Error(where + ": \"__metadata__\" is reserved and cannot name a tensor");
    if (!entry.second.defined()) throw Error(where + ": tensor '" + entry.first + "' is undefined");
    if (dtype_by_type(entry.second.scalar_type()) == nullptr)
      throw Error(where + ": tensor '" + entry.first + "' has dtype " +
                  std::string(c10::toString(entry.second.scalar_type())) + "; supported: " + supported_dtype_list());
    order.push_back(&entry);
  }
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i]->first == order[i - 1]->first) throw Error(where + ": tensor '" + order[i]->first + "' appears twice");

  // Header in the Python library's key order: metadata first, then each tensor's dtype, shape, data_offsets.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  int64_t offset = 0;
  for (const auto* entry : order) {
    const torch::Tensor& t = entry->second;
    const int64_t bytes = byte_size(t);
    header[entry->first] = {{"dtype", dtype_by_type(t.scalar_type())->name},
                            {"shape", t.sizes().vec()},
                            {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": a tensor name or metadata string is not valid UTF-8: " + e.what());
  }
  // NB: spaces pad the header so the data starts 8-aligned, which lets readers map it in place.
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  const uint64_t header_bytes = text.size();

  AtomicFile out(path, "save_safetensors");
  out.write(&header_bytes, 8);
  out.write(text.data(), text.size());
  for (const auto* entry : order) {
    torch::Tensor cpu;
    try {
      cpu = entry->second.detach().to(torch::kCPU).contiguous();
    } catch (const c10::Error& e) {
      throw Error(where + ": cannot copy tensor '" + entry->first + "' to the CPU: " + e.what_without_backtrace());
    }
    assert(byte_size(cpu) == byte_size(entry->second));
    if (cpu.numel() > 0) out.write(cpu.data_ptr(), static_cast<size_t>(byte_size(cpu)));
  }
  out.commit();
}

void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, std::vector<std::pair<std::string, torch::Tensor>>(tensors.begin(), tensors.end()), metadata);
}

// ------------------------------------------------------------------ checkpoints

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::string& path_or_dir) {
  auto open_one = [&](const std::string& path) {
    files_.push_back(std::make_unique<SafetensorsFile>(path));
    for (const std::string& name : files_.back()->names()) where_.emplace(name, files_.back().get());
  };
  if (!fs::is_directory(path_or_dir)) {
    open_one(path_or_dir);
    return;
  }
  const std::string single = (fs::path(path_or_dir) / kSingleFile).string();
  const std::string index = (fs::path(path_or_dir) / kIndexFile).string();
  if (fs::exists(single)) {
    open_one(single);
  } else if (fs::exists(index)) {
    open_index(path_or_dir, index, files_, where_);
  } else {
    // PyTorch pickles (pytorch_model.bin) are not read: they run code on load.
    for (const char* pickle : {"pytorch_model.bin", "pytorch_model.bin.index.json"}) {
      if (fs::exists(fs::path(path_or_dir) / pickle))
        throw Error(path_or_dir + ": holds " + pickle + " but neither " + kSingleFile + " nor " + kIndexFile +
                    "; only safetensors weights are read (convert it, e.g. with transformers: "
                    "from_pretrained(...).save_pretrained(dir, safe_serialization=True))");
    }
    throw Error(path_or_dir + ": holds neither " + kSingleFile + " nor " + kIndexFile);
  }
}

SafetensorsCheckpoint::~SafetensorsCheckpoint() = default;

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, file] : where_) out.push_back(name);
  return out;
}

std::map<std::string, torch::Tensor> SafetensorsCheckpoint::views() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, file] : where_) out.emplace(name, file->view(name));
  return out;
}

std::map<std::string, torch::Tensor> SafetensorsCheckpoint::tensors() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, file] : where_) out.emplace(name, file->tensor(name));
  return out;
}

std::map<std::string, torch::Tensor> load_safetensors(const std::string& path_or_dir) {
  return SafetensorsCheckpoint(path_or_dir).tensors();
}

void save_safetensors_sharded(const std::string& dir, const std::map<std::string, torch::Tensor>& tensors,
                              int64_t max_shard_bytes, const std::map<std::string, std::string>& metadata) {
  if (max_shard_bytes <= 0)
    throw Error("save_safetensors_sharded: " + dir + ": max_shard_bytes must be > 0, got " +
                std::to_string(max_shard_bytes));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("save_safetensors_sharded: cannot create the folder " + dir + " (" + ec.message() + ")");

  // Greedy in name order, as transformers' shard_checkpoint: a full shard is closed
  // before the tensor that would overflow it.
  using Entry = std::pair<std::string, torch::Tensor>;
  std::vector<std::vector<Entry>> shards;
  int64_t current = 0, total = 0;
  for (const auto& [name, t] : tensors) {
    if (!t.defined()) throw Error("save_safetensors_sharded: " + dir + ": tensor '" + name + "' is undefined");
    const int64_t bytes = byte_size(t);
    if (shards.empty() || (!shards.back().empty() && current + bytes > max_shard_bytes)) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().emplace_back(name, t);
    current += bytes;
    total += bytes;
  }

  std::set<std::string> written;
  if (shards.size() <= 1) {
    save_safetensors((fs::path(dir) / kSingleFile).string(), shards.empty() ? std::vector<Entry>{} : shards[0],
                     metadata);
    written.insert(kSingleFile);
  } else {
    json weight_map = json::object();
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string name = shard_name(i, shards.size());
      save_safetensors((fs::path(dir) / name).string(), shards[i], metadata);
      for (const auto& entry : shards[i]) weight_map[entry.first] = name;
      written.insert(name);
    }
    const json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_file_atomic((fs::path(dir) / kIndexFile).string(), index.dump(2) + "\n");
    written.insert(kIndexFile);
  }

  // Files of an earlier save would otherwise shadow this one (model.safetensors wins over an index).
  for (const auto& file : fs::directory_iterator(dir, ec)) {
    const std::string name = file.path().filename().string();
    const bool ours = name == kSingleFile || name == kIndexFile || is_shard_name(name);
    if (ours && written.count(name) == 0) fs::remove(file.path(), ec);
  }
}

}  // namespace grpo
