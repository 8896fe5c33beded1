// Safetensors: real checkpoints written by others (tests/fixtures/models) read with
// the values python3 decodes from the same bytes; bit-exact round trips for every
// dtype and for sharded checkpoints; and a grpo::Error naming the file for each kind of corruption.
#include <grpo/io/safetensors.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;

const std::string kModels = std::string(GRPO_TEST_DATA_DIR) + "/models";
const std::string kStories = kModels + "/stories260K/model.safetensors";
const std::string kTinyLlama = kModels + "/tiny-llama-bf16-random/model.safetensors";

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A file of: the length field (header.size() unless `length` is given), `header`
// as is, then `data_bytes` zero bytes. For building corrupt files by hand.
std::string write_raw(const TempDir& dir, const std::string& leaf, const std::string& header, size_t data_bytes,
                      std::optional<uint64_t> length = std::nullopt) {
  const uint64_t n = length.value_or(header.size());
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &n, 8);  // the test host is little-endian, as the library requires
  bytes += header;
  bytes += std::string(data_bytes, '\0');
  const std::string path = dir / leaf;
  write_bytes(path, bytes);
  return path;
}

// The error SafetensorsFile raises for `path`; the message must name the file.
std::string open_error(const std::string& path) {
  const std::string msg = error_of([&] { grpo::SafetensorsFile file(path); });
  EXPECT_HAS(msg, path);
  return msg;
}

void expect_same(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    const torch::Tensor& u = b.at(name);
    EXPECT_EQ(t.scalar_type(), u.scalar_type()) << name;
    EXPECT_EQ(t.sizes(), u.sizes()) << name;
    EXPECT_TRUE(torch::equal(t, u)) << name;
  }
}

}  // namespace

// ------------------------------------------------------------------ real checkpoints

TEST(Safetensors, Stories260KOpensWithPythonDecodedValues) {
  const grpo::SafetensorsFile file(kStories);
  EXPECT_EQ(file.path(), kStories);
  const std::vector<std::string> names = file.names();
  ASSERT_EQ(names.size(), 47u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_FALSE(file.contains("lm_head.weight"));  // tied embeddings
  for (const std::string& name : names) {
    EXPECT_EQ(file.info(name).dtype, "F32") << name;
    const torch::Tensor t = file.tensor(name);
    EXPECT_EQ(t.scalar_type(), torch::kFloat) << name;
    EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << name;
  }

  const grpo::SafetensorsInfo& info = file.info("model.embed_tokens.weight");
  EXPECT_EQ(info.shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(info.begin, 0);
  EXPECT_EQ(info.end, 131072);

  // Expected values: python3 parsing the file with json + struct ('<Q' header
  // length, json.loads of the header, struct.unpack('<f') at 8 + N + begin + 4*i), repr() of the result.
  const torch::Tensor emb = file.tensor("model.embed_tokens.weight");
  ASSERT_EQ(emb.sizes(), (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(emb[0][0].item<float>(), -0.29474878311157227f);
  EXPECT_EQ(emb[0][1].item<float>(), 0.5618956089019775f);
  EXPECT_EQ(emb[100][7].item<float>(), 0.02549084648489952f);
  EXPECT_EQ(emb[511][63].item<float>(), -0.424032598733902f);
  const torch::Tensor k = file.tensor("model.layers.4.self_attn.k_proj.weight");
  ASSERT_EQ(k.sizes(), (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(k[31][63].item<float>(), -0.2651301622390747f);
  const torch::Tensor norm = file.tensor("model.norm.weight");
  EXPECT_EQ(norm[0].item<float>(), 2.4583089351654053f);
  EXPECT_EQ(norm[63].item<float>(), 1.7077769041061401f);
}

TEST(Safetensors, TinyLlamaBf16OpensWithPythonDecodedValues) {
  const grpo::SafetensorsFile file(kTinyLlama);
  ASSERT_EQ(file.names().size(), 39u);
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  for (const std::string& name : file.names()) EXPECT_EQ(file.info(name).dtype, "BF16") << name;
  ASSERT_TRUE(file.contains("lm_head.weight"));  // untied
  ASSERT_TRUE(file.contains("model.embed_tokens.weight"));

  // Expected values: python3 reading the raw little-endian u16 with struct.unpack('<H')
  // and widening it to float32 (bits << 16), as bfloat16 is defined.
  const torch::Tensor head = file.tensor("lm_head.weight");
  EXPECT_EQ(head.scalar_type(), torch::kBFloat16);
  ASSERT_EQ(head.sizes(), (std::vector<int64_t>{16, 128}));
  EXPECT_EQ(head[0][0].item<float>(), 0.008544921875f);
  EXPECT_EQ(head[0][1].item<float>(), -0.009521484375f);
  EXPECT_EQ(head[15][127].item<float>(), 0.017578125f);
  EXPECT_EQ(head.view(torch::kShort)[0][0].item<int16_t>(), 0x3c0c);  // the stored bits, unconverted
  const torch::Tensor emb = file.tensor("model.embed_tokens.weight");
  EXPECT_EQ(emb[0][0].item<float>(), 0.0240478515625f);
  EXPECT_EQ(emb[15][127].item<float>(), 0.045654296875f);
  EXPECT_EQ(file.tensor("model.layers.1.self_attn.q_proj.weight")[2][3].item<float>(), 0.00445556640625f);
  EXPECT_TRUE(torch::equal(file.tensor("model.norm.weight"), torch::ones({128}, torch::kBFloat16)));
}

TEST(Safetensors, TensorsOwnTheirMemoryAndTheFileMoves) {
  torch::Tensor t;
  {
    grpo::SafetensorsFile file(kStories);
    grpo::SafetensorsFile moved(std::move(file));
    grpo::SafetensorsFile assigned(kTinyLlama);
    assigned = std::move(moved);
    EXPECT_EQ(assigned.path(), kStories);
    t = assigned.tensor("model.norm.weight");
  }  // unmapped here; the tensor must not point into the mapping
  EXPECT_EQ(t[0].item<float>(), 2.4583089351654053f);
  t.add_(1);  // writable, unlike a read-only mapping
  EXPECT_EQ(t[0].item<float>(), 2.4583089351654053f + 1);
}

TEST(Safetensors, UnknownTensorNameIsAnError) {
  const grpo::SafetensorsFile file(kStories);
  const std::string msg = error_of([&] { file.tensor("lm_head.weight"); });
  EXPECT_HAS(msg, kStories);
  EXPECT_HAS(msg, "'lm_head.weight'");
  EXPECT_HAS(error_of([&] { file.info("nope"); }), "'nope'");
}

// ------------------------------------------------------------------ round trips

TEST(Safetensors, RoundTripEveryDtypeBitExact) {
  TempDir dir("st_dtypes");
  torch::manual_seed(0);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto type : {torch::kFloat, torch::kHalf, torch::kBFloat16, torch::kDouble}) {
    const std::string n = c10::toString(type);
    tensors.emplace_back(n, torch::randn({3, 5}, type));
    tensors.emplace_back(n + ".transposed", torch::randn({4, 6}, type).t());        // non-contiguous
    tensors.emplace_back(n + ".strided", torch::randn({8, 6}, type).slice(0, 1, 8, 3));
    tensors.emplace_back(n + ".scalar", torch::randn({}, type));                     // 0-d
    tensors.emplace_back(n + ".empty", torch::empty({0, 7}, type));
  }
  tensors.emplace_back("f32.special", torch::tensor({0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-45f}));
  for (const auto type : {torch::kChar, torch::kShort, torch::kInt, torch::kLong, torch::kByte}) {
    const std::string n = c10::toString(type);
    tensors.emplace_back(n, torch::randint(-100, 100, {2, 3, 4}).to(type));
    tensors.emplace_back(n + ".transposed", torch::randint(0, 100, {3, 4}).to(type).t());
    tensors.emplace_back(n + ".scalar", torch::tensor(7).to(type));
    tensors.emplace_back(n + ".empty", torch::empty({5, 0}, type));
  }
  tensors.emplace_back("i64.extremes",
                       torch::tensor({std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}));
  tensors.emplace_back("bool", torch::rand({4, 5}) > 0.5);
  tensors.emplace_back("bool.transposed", (torch::rand({4, 5}) > 0.5).t());
  tensors.emplace_back("bool.empty", torch::empty({0}, torch::kBool));
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "ünïcode"}};

  const std::string path = dir / "all.safetensors";
  grpo::save_safetensors(path, tensors, metadata);
  const grpo::SafetensorsFile file(path);
  EXPECT_EQ(file.metadata(), metadata);
  ASSERT_EQ(file.names().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const torch::Tensor back = file.tensor(name);
    EXPECT_EQ(back.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(back.sizes(), t.sizes()) << name;
    EXPECT_TRUE(back.is_contiguous()) << name;
    // NaN != NaN, so compare the bits of floating tensors.
    if (t.is_floating_point() && t.numel() > 0) {
      const auto bits = t.element_size() == 8 ? torch::kLong : t.element_size() == 4 ? torch::kInt : torch::kShort;
      EXPECT_TRUE(torch::equal(back.view(bits), t.contiguous().view(bits))) << name;
    } else {
      EXPECT_TRUE(torch::equal(back, t)) << name;
    }
  }
  EXPECT_TRUE(std::isnan(file.tensor("f32.special")[4].item<float>()));
  EXPECT_TRUE(std::signbit(file.tensor("f32.special")[1].item<float>()));
  EXPECT_FALSE(fs::exists(path + ".tmp." + std::to_string(::getpid())));
}

TEST(Safetensors, ResavingRealCheckpointsIsByteIdentical) {
  // Our header is written as the Python library writes it (metadata first; dtype,
  // shape, data_offsets; sorted names; space padding), so the re-saved files equal the originals.
  TempDir dir("st_resave");
  for (const std::string& original : {kTinyLlama, kStories}) {
    const grpo::SafetensorsFile file(original);
    const std::map<std::string, torch::Tensor> tensors = grpo::load_safetensors(original);
    EXPECT_EQ(tensors.size(), file.names().size());
    const std::string copy = dir / "copy.safetensors";
    grpo::save_safetensors(copy, tensors, file.metadata());
    expect_same(grpo::load_safetensors(copy), tensors);
    EXPECT_TRUE(read_bytes(copy) == read_bytes(original)) << original;
  }
}

TEST(Safetensors, FileLayoutHeaderLengthAndAlignment) {
  TempDir dir("st_layout");
  // Header lengths 1..8 bytes longer than a multiple of 8 must all pad to alignment.
  for (int extra = 0; extra < 8; ++extra) {
    const std::string path = dir / "layout.safetensors";
    const torch::Tensor a = torch::arange(6, torch::kInt).reshape({2, 3});
    const torch::Tensor b = torch::tensor({1.5, -2.0}, torch::kDouble);
    grpo::save_safetensors(path, std::map<std::string, torch::Tensor>{{std::string(extra + 1, 'b'), b}, {"a", a}});
    const std::string bytes = read_bytes(path);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    ASSERT_LE(8 + n, bytes.size());
    EXPECT_EQ((8 + n) % 8, 0u) << "data must start 8-aligned";
    EXPECT_EQ(bytes.size(), 8 + n + 6 * 4 + 2 * 8);
    const std::string header = bytes.substr(8, n);
    EXPECT_EQ(header.find("{\"a\":{\"dtype\":\"I32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"), 0u) << header;
    EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}')) << "only spaces after the JSON";
    // "a" sorts first, so its bytes open the buffer, then b's.
    EXPECT_EQ(std::memcmp(bytes.data() + 8 + n, a.data_ptr(), 24), 0);
    EXPECT_EQ(std::memcmp(bytes.data() + 8 + n + 24, b.data_ptr(), 16), 0);
  }
}

TEST(Safetensors, ShardedRoundTripAndStaleFilesRemoved) {
  TempDir dir("st_sharded");
  std::map<std::string, torch::Tensor> tensors;
  for (int i = 0; i < 5; ++i) tensors["layer." + std::to_string(i)] = torch::randn({100});  // 400 bytes each
  tensors["bias"] = torch::arange(3, torch::kLong);                                        // 24 bytes
  const std::string d = dir.path.string();

  grpo::save_safetensors_sharded(d, tensors, 1000);
  // Name order, greedy: bias, layer.0, layer.1 (824 bytes) | layer.2, layer.3 | layer.4.
  for (const char* f : {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                        "model-00003-of-00003.safetensors", "model.safetensors.index.json"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
  const auto index = nlohmann::json::parse(read_bytes(dir / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 5 * 400 + 24);
  EXPECT_EQ(index["weight_map"].size(), 6u);
  EXPECT_EQ(index["weight_map"]["bias"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["layer.2"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["layer.4"], "model-00003-of-00003.safetensors");
  EXPECT_EQ(grpo::SafetensorsFile(dir / "model-00002-of-00003.safetensors").metadata().at("format"), "pt");
  expect_same(grpo::load_safetensors(d), tensors);

  // A tensor larger than the limit gets a shard of its own.
  tensors["big"] = torch::randn({1000});
  grpo::save_safetensors_sharded(d, tensors, 1000);
  EXPECT_TRUE(fs::exists(dir / "model-00005-of-00005.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "model-00001-of-00003.safetensors")) << "stale shard left behind";
  expect_same(grpo::load_safetensors(d), tensors);

  // Everything fits: one model.safetensors, and the shards and index go.
  grpo::save_safetensors_sharded(d, tensors, int64_t{1} << 40);
  EXPECT_TRUE(fs::exists(dir / "model.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir / "model-00001-of-00005.safetensors"));
  expect_same(grpo::load_safetensors(d), tensors);
  expect_same(grpo::load_safetensors(dir / "model.safetensors"), tensors);

  // Back to shards: the single file would shadow the index, so it must go.
  grpo::save_safetensors_sharded(d, tensors, 1000);
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
  expect_same(grpo::load_safetensors(d), tensors);
}

TEST(Safetensors, ShardedRealCheckpointLoadsIdentically) {
  TempDir dir("st_sharded_real");
  const auto tensors = grpo::load_safetensors(kTinyLlama);
  grpo::save_safetensors_sharded(dir.path.string(), tensors, 200 * 1024);
  EXPECT_TRUE(fs::exists(dir / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
  expect_same(grpo::load_safetensors(dir.path.string()), tensors);

  // Views over the open shards read the same values without a copy.
  const grpo::SafetensorsCheckpoint checkpoint(dir.path.string());
  const auto views = checkpoint.views();
  expect_same(views, tensors);
  EXPECT_EQ(checkpoint.names().size(), tensors.size());
  const grpo::SafetensorsFile file(kTinyLlama);
  const torch::Tensor a = file.view("lm_head.weight"), b = file.view("lm_head.weight");
  EXPECT_EQ(a.data_ptr(), b.data_ptr());  // the mapping itself, not copies
  EXPECT_NE(file.tensor("lm_head.weight").data_ptr(), a.data_ptr());
}

// ------------------------------------------------------------------ corrupt files

TEST(Safetensors, TruncatedFilesAreErrors) {
  TempDir dir("st_truncated");
  const std::string bytes = read_bytes(kStories);
  const std::string half = dir / "half.safetensors";
  write_bytes(half, bytes.substr(0, bytes.size() / 2));
  const std::string msg = open_error(half);
  EXPECT_HAS(msg, "tensor 'model.");
  EXPECT_HAS(msg, "past the data buffer");

  const std::string header_cut = dir / "header_cut.safetensors";
  write_bytes(header_cut, bytes.substr(0, 1000));
  EXPECT_HAS(open_error(header_cut), "past the end of the file");

  const std::string tiny = dir / "tiny.safetensors";
  write_bytes(tiny, bytes.substr(0, 5));
  EXPECT_HAS(open_error(tiny), "too short");
  EXPECT_HAS(open_error(dir / "absent.safetensors"), "cannot open");
}

TEST(Safetensors, HeaderLengthIsChecked) {
  TempDir dir("st_length");
  EXPECT_HAS(open_error(write_raw(dir, "past.safetensors", "{}", 16, 1000)), "past the end of the file");
  EXPECT_HAS(open_error(write_raw(dir, "cap.safetensors", "{}", 16, 200'000'000)), "exceeds the limit");
  // Just past the cap is refused even though nothing else is wrong with the number.
  EXPECT_HAS(open_error(write_raw(dir, "cap1.safetensors", "{}", 0, grpo::kSafetensorsMaxHeaderBytes + 1)),
             "exceeds the limit");
}

TEST(Safetensors, HeaderMustBeAJsonObject) {
  TempDir dir("st_json");
  EXPECT_HAS(open_error(write_raw(dir, "notjson.safetensors", "{not json", 0)), "not valid UTF-8 JSON");
  EXPECT_HAS(open_error(write_raw(dir, "utf8.safetensors", "{\"\xff\xfe\":{}}", 0)), "not valid UTF-8 JSON");
  EXPECT_HAS(open_error(write_raw(dir, "array.safetensors", "[1,2]", 0)), "must be a JSON object");
  EXPECT_HAS(open_error(write_raw(dir, "twice.safetensors",
                                  R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                  R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                                  2)),
             "\"a\" appears twice");
  EXPECT_HAS(open_error(write_raw(dir, "meta.safetensors", R"({"__metadata__":{"format":1}})", 0)),
             "\"__metadata__\" must be an object of strings");
  EXPECT_HAS(open_error(write_raw(dir, "meta2.safetensors", R"({"__metadata__":[]})", 0)),
             "\"__metadata__\" must be an object of strings");
  // An empty header with padding and no tensors is a valid file.
  EXPECT_TRUE(grpo::SafetensorsFile(write_raw(dir, "empty.safetensors", "{}      ", 0)).names().empty());
}

TEST(Safetensors, BadEntriesNameTheTensor) {
  TempDir dir("st_entries");
  struct Case {
    std::string entry;  // the JSON value for tensor "w"
    size_t data_bytes;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {R"({"dtype":"F33","shape":[2],"data_offsets":[0,8]})", 8, "unknown dtype \"F33\""},
      {R"({"dtype":"F4","shape":[2],"data_offsets":[0,1]})", 1, "unknown dtype \"F4\""},
      {R"({"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,4]})", 4, "needs 2 bytes, but data_offsets [0,4] span 4"},
      {R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})", 24, "needs 24 bytes, but data_offsets [0,20] span 20"},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 4, "past the data buffer (4 bytes)"},
      {R"({"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,8]})", 8,
       "more than 2^64"},
      {R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})", 8, "\"shape\" must be a list of non-negative integers"},
      {R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})", 8, "\"shape\" must be a list of non-negative integers"},
      {R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})", 8, "\"shape\" must be a list of non-negative integers"},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})", 8, "\"data_offsets\" must be [begin, end]"},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0,8,9]})", 8, "\"data_offsets\" must be [begin, end]"},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[-1,7]})", 8, "\"data_offsets\" must be [begin, end]"},
      {R"({"dtype":"F32","shape":[2]})", 8, "no \"data_offsets\""},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1})", 8, "unexpected key \"extra\""},
      {R"({"dtype":32,"shape":[2],"data_offsets":[0,8]})", 8, "\"dtype\" must be a string"},
      {R"([1,2])", 8, "expected an object"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string path =
        write_raw(dir, "case" + std::to_string(i) + ".safetensors", "{\"w\":" + cases[i].entry + "}", cases[i].data_bytes);
    const std::string msg = open_error(path);
    EXPECT_HAS(msg, "tensor 'w'");
    EXPECT_HAS(msg, cases[i].expected);
  }
}

TEST(Safetensors, OverlappingTensorsAreErrorsGapsAreNot) {
  TempDir dir("st_overlap");
  const std::string overlap = write_raw(dir, "overlap.safetensors",
                                        R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                        R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                                        24);
  const std::string msg = open_error(overlap);
  EXPECT_HAS(msg, "'a' [0, 16) and 'b' [8, 24) overlap");
  // Contained in a longer tensor that starts earlier and is not the previous one.
  const std::string nested = write_raw(dir, "nested.safetensors",
                                       R"({"a":{"dtype":"U8","shape":[20],"data_offsets":[0,20]},)"
                                       R"("b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},)"
                                       R"("c":{"dtype":"U8","shape":[2],"data_offsets":[10,12]}})",
                                       20);
  EXPECT_HAS(open_error(nested), "overlap");
  // Gaps, trailing bytes and an empty tensor anywhere are accepted.
  const std::string gaps = write_raw(dir, "gaps.safetensors",
                                     R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                                     R"("e":{"dtype":"F32","shape":[0],"data_offsets":[1,1]},)"
                                     R"("b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
                                     10);
  const grpo::SafetensorsFile file(gaps);
  EXPECT_EQ(file.names(), (std::vector<std::string>{"a", "b", "e"}));
  EXPECT_EQ(file.tensor("e").sizes(), (std::vector<int64_t>{0}));
}

TEST(Safetensors, BoolBytesOtherThanZeroOrOneAreErrors) {
  TempDir dir("st_bool");
  const std::string path =
      write_raw(dir, "bool.safetensors", R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", 0);
  std::string bytes = read_bytes(path) + std::string("\x01\x00\x02", 3);
  write_bytes(path, bytes);
  const grpo::SafetensorsFile file(path);
  const std::string msg = error_of([&] { file.tensor("m"); });
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "tensor 'm': BOOL byte 2 is 2");
}

// ------------------------------------------------------------------ sharded index errors

namespace {

// A folder with two one-tensor shards and an index whose weight_map is `weight_map`.
void write_sharded(const TempDir& dir, const std::string& weight_map) {
  grpo::save_safetensors(dir / "s1.safetensors", std::map<std::string, torch::Tensor>{{"a", torch::ones({2})}});
  grpo::save_safetensors(dir / "s2.safetensors", std::map<std::string, torch::Tensor>{{"b", torch::zeros({2})}});
  write_bytes(dir / "model.safetensors.index.json", R"({"metadata":{"total_size":16},"weight_map":)" + weight_map + "}");
}

std::string load_error(const TempDir& dir) {
  const std::string msg = error_of([&] { grpo::load_safetensors(dir.path.string()); });
  EXPECT_HAS(msg, dir / "model.safetensors.index.json");
  return msg;
}

}  // namespace

TEST(Safetensors, IndexErrorsNameTheIndexAndTheTensor) {
  std::string msg;  // NB: EXPECT_HAS evaluates its message twice, so each load runs once into here
  {
    TempDir dir("st_index_ok");
    write_sharded(dir, R"({"a":"s1.safetensors","b":"s2.safetensors"})");
    const auto loaded = grpo::load_safetensors(dir.path.string());
    EXPECT_EQ(loaded.size(), 2u);
    EXPECT_TRUE(torch::equal(loaded.at("a"), torch::ones({2})));
  }
  {
    TempDir dir("st_index_missing_shard");
    write_sharded(dir, R"({"a":"s1.safetensors","b":"s3.safetensors"})");
    msg = load_error(dir);
    EXPECT_HAS(msg, "tensor 'b' is in shard 's3.safetensors', which does not exist");
  }
  {
    TempDir dir("st_index_not_in_shard");
    write_sharded(dir, R"({"a":"s1.safetensors","b":"s2.safetensors","c":"s2.safetensors"})");
    msg = load_error(dir);
    EXPECT_HAS(msg, "tensor 'c' is not in its shard 's2.safetensors'");
  }
  {
    TempDir dir("st_index_twice");
    write_sharded(dir, R"({"a":"s1.safetensors","b":"s2.safetensors"})");
    grpo::save_safetensors(dir / "s2.safetensors",
                           std::map<std::string, torch::Tensor>{{"a", torch::ones({2})}, {"b", torch::zeros({2})}});
    msg = load_error(dir);
    EXPECT_HAS(msg, "tensor 'a' appears twice");
  }
  {
    TempDir dir("st_index_unlisted");
    write_sharded(dir, R"({"a":"s1.safetensors","b":"s2.safetensors"})");
    grpo::save_safetensors(dir / "s1.safetensors",
                           std::map<std::string, torch::Tensor>{{"a", torch::ones({2})}, {"z", torch::ones({1})}});
    msg = load_error(dir);
    EXPECT_HAS(msg, "shard 's1.safetensors' holds tensor 'z', which the index does not list");
  }
  {
    TempDir dir("st_index_dup_key");
    write_sharded(dir, R"({"a":"s1.safetensors","a":"s2.safetensors","b":"s2.safetensors"})");
    msg = load_error(dir);
    EXPECT_HAS(msg, "\"a\" appears twice");
  }
  {
    TempDir dir("st_index_bad");
    write_sharded(dir, R"(["a"])");
    msg = load_error(dir);
    EXPECT_HAS(msg, "\"weight_map\"");
    write_bytes(dir / "model.safetensors.index.json", "{");
    msg = load_error(dir);
    EXPECT_HAS(msg, "not valid UTF-8 JSON");
  }
  {
    TempDir dir("st_index_none");
    msg = error_of([&] { grpo::load_safetensors(dir.path.string()); });
    EXPECT_HAS(msg, dir.path.string());
    EXPECT_HAS(msg, "neither model.safetensors nor model.safetensors.index.json");
  }
}

// ------------------------------------------------------------------ writer errors

TEST(Safetensors, WriterRejectsBadInputAndLeavesNoTemporaryFile) {
  TempDir dir("st_writer");
  const std::string path = dir / "out.safetensors";
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const torch::Tensor t = torch::ones({2});
  using List = std::vector<std::pair<std::string, torch::Tensor>>;

  std::string msg = error_of([&] { grpo::save_safetensors(path, List{{"x", t}, {"y", t}, {"x", t}}); });
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "tensor 'x' appears twice");
  EXPECT_HAS(error_of([&] { grpo::save_safetensors(path, List{{"", t}}); }), "empty name");
  EXPECT_HAS(error_of([&] { grpo::save_safetensors(path, List{{"__metadata__", t}}); }), "reserved");
  msg = error_of([&] { grpo::save_safetensors(path, List{{"c", torch::ones({2}, torch::kComplexDouble)}}); });
  EXPECT_HAS(msg, "tensor 'c' has dtype ComplexDouble");
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(tmp));

  const std::string nowhere = dir / "missing/out.safetensors";
  msg = error_of([&] { grpo::save_safetensors(nowhere, List{{"x", t}}); });
  EXPECT_HAS(msg, nowhere);

  // A failed write leaves the previous file as it was.
  grpo::save_safetensors(path, List{{"x", t}});
  const std::string before = read_bytes(path);
  error_of([&] { grpo::save_safetensors(path, List{{"x", t}, {"x", t}}); });
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_HAS(error_of([&] { grpo::save_safetensors_sharded(dir.path.string(), {{"x", t}}, 0); }),
             "max_shard_bytes must be > 0");
}
