// export_gguf read back by a small GGUF reader written here from the format's
// description: header, metadata, tensor names, shapes, types, alignment and
// values; the q/k row permutation of the llama architecture; q8_0's fallback;
// and the errors for what a GGUF file cannot hold. llama.cpp's own reader and
// runtime check the same files in tests/parity/gguf_parity.py.
#include <grpo/io/gguf.h>
#include <grpo/io/pretrained.h>
#include <grpo/tokenizers/char_tokenizer.h>
#include <grpo/tokenizers/hf_tokenizer.h>
#include <grpo/tokenizers/sentencepiece.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"
#include "tiny_models.h"

namespace {

const std::string kData = GRPO_TEST_DATA_DIR;

struct TensorInfo {
  std::vector<int64_t> dims;  // GGML order: innermost first
  uint32_t type = 0;
  uint64_t offset = 0;
};

// Everything a GGUF v3 file holds; metadata values as JSON (arrays as arrays).
struct GgufFile {
  uint32_t version = 0;
  std::map<std::string, nlohmann::json> kv;
  std::map<std::string, TensorInfo> tensors;
  std::vector<std::string> order;
  uint64_t data_start = 0;
  std::string bytes;

  const char* data(const std::string& name) const { return bytes.data() + data_start + tensors.at(name).offset; }
};

class Reader {
 public:
  explicit Reader(const std::string& b) : b_(b) {}
  template <class T>
  T get() {
    T v;
    EXPECT_LE(p_ + sizeof(T), b_.size());
    std::memcpy(&v, b_.data() + p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  std::string str() {
    const uint64_t n = get<uint64_t>();
    std::string s = b_.substr(p_, n);
    p_ += n;
    return s;
  }
  nlohmann::json value(uint32_t type) {
    switch (type) {
      case 0: return get<uint8_t>();
      case 1: return get<int8_t>();
      case 2: return get<uint16_t>();
      case 3: return get<int16_t>();
      case 4: return get<uint32_t>();
      case 5: return get<int32_t>();
      case 6: return get<float>();
      case 7: return get<uint8_t>() != 0;
      case 8: return str();
      case 9: {
        const uint32_t sub = get<uint32_t>();
        const uint64_t n = get<uint64_t>();
        nlohmann::json a = nlohmann::json::array();
        for (uint64_t i = 0; i < n; ++i) a.push_back(value(sub));
        return a;
      }
      case 10: return get<uint64_t>();
      case 11: return get<int64_t>();
      case 12: return get<double>();
    }
    ADD_FAILURE() << "unknown GGUF value type " << type;
    return nullptr;
  }
  size_t pos() const { return p_; }

 private:
  const std::string& b_;
  size_t p_ = 0;
};

GgufFile read_gguf(const std::string& path) {
  GgufFile f;
  std::ifstream in(path, std::ios::binary);
  f.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  EXPECT_EQ(f.bytes.substr(0, 4), "GGUF");
  Reader r(f.bytes);
  r.get<uint32_t>();
  f.version = r.get<uint32_t>();
  const uint64_t n_tensors = r.get<uint64_t>(), n_kv = r.get<uint64_t>();
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = r.str();
    EXPECT_EQ(f.kv.count(key), 0u) << key << " twice";
    f.kv[key] = r.value(r.get<uint32_t>());
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const std::string name = r.str();
    TensorInfo t;
    const uint32_t n_dims = r.get<uint32_t>();
    for (uint32_t d = 0; d < n_dims; ++d) t.dims.push_back(static_cast<int64_t>(r.get<uint64_t>()));
    t.type = r.get<uint32_t>();
    t.offset = r.get<uint64_t>();
    f.tensors[name] = t;
    f.order.push_back(name);
  }
  f.data_start = (r.pos() + 31) / 32 * 32;
  return f;
}

// (rows, cols) float32 of a stored f32 tensor.
torch::Tensor f32_tensor(const GgufFile& f, const std::string& name) {
  const TensorInfo& t = f.tensors.at(name);
  std::vector<int64_t> shape(t.dims.rbegin(), t.dims.rend());
  return torch::from_blob(const_cast<char*>(f.data(name)), shape, torch::kFloat32).clone();
}

std::shared_ptr<grpo::TransformerLM> tiny(grpo::TransformerConfig c, uint64_t seed = 1) {
  torch::manual_seed(seed);
  return std::make_shared<grpo::TransformerLM>(c);
}

grpo::TransformerConfig llama_config(int64_t vocab) {
  grpo::TransformerConfig c = grpo_test::tiny_transformer_config(vocab, /*tied=*/false, /*bias=*/false);
  c.head_dim = 8;
  return c;
}

TEST(Gguf, LlamaWithSentencePieceReadsBack) {
  TempDir dir("gguf_llama");
  const auto tok = grpo::SentencePieceTokenizer::load(kData + "/models/stories260K/tokenizer.model");
  const auto model = tiny(llama_config(520));  // 8 ids past the tokenizer's 512
  const std::string path = dir / "m.gguf";
  grpo::GgufOptions opt;
  opt.type = grpo::GgufType::F32;
  grpo::export_gguf(*model, tok, path, opt);
  const GgufFile f = read_gguf(path);

  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(f.kv.at("general.architecture"), "llama");
  EXPECT_EQ(f.kv.at("general.name"), "m");
  EXPECT_EQ(f.kv.at("general.file_type"), 0);
  EXPECT_EQ(f.kv.at("llama.block_count"), 2);
  EXPECT_EQ(f.kv.at("llama.embedding_length"), 32);
  EXPECT_EQ(f.kv.at("llama.feed_forward_length"), 64);
  EXPECT_EQ(f.kv.at("llama.attention.head_count"), 4);
  EXPECT_EQ(f.kv.at("llama.attention.head_count_kv"), 2);
  EXPECT_EQ(f.kv.at("llama.rope.dimension_count"), 8);
  EXPECT_EQ(f.kv.at("llama.vocab_size"), 520);
  EXPECT_FLOAT_EQ(f.kv.at("llama.attention.layer_norm_rms_epsilon").get<float>(), 1e-5f);
  EXPECT_EQ(f.kv.at("tokenizer.ggml.model"), "llama");
  const auto& tokens = f.kv.at("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 520u);
  EXPECT_EQ(tokens[1], tok.id_to_token(1));
  EXPECT_EQ(tokens[300], tok.id_to_token(300));
  EXPECT_EQ(tokens[515], "[PAD515]");
  EXPECT_EQ(f.kv.at("tokenizer.ggml.token_type")[515], 5);  // unused
  EXPECT_EQ(f.kv.at("tokenizer.ggml.token_type")[1], 3);    // <s>: control
  EXPECT_EQ(f.kv.at("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(f.kv.at("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(f.kv.at("tokenizer.ggml.add_bos_token"), true);
  EXPECT_EQ(f.kv.at("tokenizer.ggml.scores").size(), 520u);

  // Tensors: llama.cpp's names, dimensions reversed, aligned, values exact.
  EXPECT_EQ(f.tensors.size(), 1 + 2 * 9 + 2u);
  for (const auto& [name, t] : f.tensors) EXPECT_EQ(t.offset % 32, 0u) << name;
  EXPECT_EQ(f.tensors.at("token_embd.weight").dims, (std::vector<int64_t>{32, 520}));
  EXPECT_EQ(f.tensors.at("blk.1.ffn_down.weight").dims, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(f.tensors.at("blk.0.attn_k.weight").dims, (std::vector<int64_t>{32, 16}));
  auto params = model->named_parameters();
  EXPECT_TRUE(torch::equal(f32_tensor(f, "token_embd.weight"), params["model.embed_tokens.weight"]));
  EXPECT_TRUE(torch::equal(f32_tensor(f, "output.weight"), params["lm_head.weight"]));
  EXPECT_TRUE(torch::equal(f32_tensor(f, "blk.1.ffn_down.weight"), params["model.layers.1.mlp.down_proj.weight"]));
  EXPECT_TRUE(torch::equal(f32_tensor(f, "blk.0.attn_v.weight"), params["model.layers.0.self_attn.v_proj.weight"]));
  // q and k: within each head, row 2i is rotate-half row i and row 2i + 1 is row i + D/2.
  const torch::Tensor q = params["model.layers.0.self_attn.q_proj.weight"];  // (4·8, 32)
  const torch::Tensor gq = f32_tensor(f, "blk.0.attn_q.weight");
  for (int64_t h = 0; h < 4; ++h) {
    for (int64_t i = 0; i < 4; ++i) {
      EXPECT_TRUE(torch::equal(gq[h * 8 + 2 * i], q[h * 8 + i]));
      EXPECT_TRUE(torch::equal(gq[h * 8 + 2 * i + 1], q[h * 8 + 4 + i]));
    }
  }
  const torch::Tensor k = params["model.layers.1.self_attn.k_proj.weight"];  // (2·8, 32)
  const torch::Tensor gk = f32_tensor(f, "blk.1.attn_k.weight");
  EXPECT_TRUE(torch::equal(gk[8 + 2], k[8 + 1]));
  EXPECT_TRUE(torch::equal(gk[8 + 3], k[8 + 4 + 1]));
}

TEST(Gguf, Q8_0BlocksAndTheF16Fallback) {
  TempDir dir("gguf_q8");
  const auto tok = grpo::SentencePieceTokenizer::load(kData + "/models/stories260K/tokenizer.model");
  grpo::TransformerConfig c = llama_config(512);
  c.intermediate_size = 48;  // ffn_down's rows: 48 values, not whole q8_0 blocks
  const auto model = tiny(c);
  const std::string path = dir / "q.gguf";
  grpo::GgufOptions opt;
  opt.type = grpo::GgufType::Q8_0;
  grpo::export_gguf(*model, tok, path, opt);
  const GgufFile f = read_gguf(path);
  EXPECT_EQ(f.kv.at("general.file_type"), 7);
  EXPECT_EQ(f.tensors.at("token_embd.weight").type, 8u);
  EXPECT_EQ(f.tensors.at("blk.0.ffn_up.weight").type, 8u);
  EXPECT_EQ(f.tensors.at("blk.0.ffn_down.weight").type, 1u);  // f16
  EXPECT_EQ(f.tensors.at("blk.0.attn_norm.weight").type, 0u);
  EXPECT_EQ(f.tensors.at("output_norm.weight").type, 0u);
  // Dequantized: within half a step (amax / 127 / 2) of each weight, plus what rounding the
  // step to f16 moves the largest multiple (127 · 2^-11 steps).
  const torch::Tensor w = model->named_parameters()["model.embed_tokens.weight"].reshape({-1, 32});
  const char* p = f.data("token_embd.weight");
  const int64_t nb = w.size(0);
  torch::Tensor deq = torch::empty_like(w);
  for (int64_t b = 0; b < nb; ++b) {
    c10::Half d;
    std::memcpy(&d, p + 34 * b, 2);
    for (int64_t i = 0; i < 32; ++i) deq[b][i] = static_cast<float>(d) * static_cast<int8_t>(p[34 * b + 2 + i]);
  }
  const torch::Tensor step = w.abs().amax(1, true) / 127;
  EXPECT_TRUE(((deq - w).abs() <= step * (0.5 + 127.0 / 2048)).all().item<bool>());
}

TEST(Gguf, Qwen2WithByteLevelBpe) {
  TempDir dir("gguf_qwen2");
  const auto tok = grpo::HFTokenizer::load_dir(kData + "/tokenizers/qwen2_tiny");
  const auto model = tiny(grpo_test::tiny_transformer_config(272, /*tied=*/true, /*bias=*/true));
  const std::string path = dir / "qwen.gguf";
  grpo::GgufOptions opt;
  opt.name = "tiny qwen";
  opt.chat_template = "{{ messages }}";
  grpo::export_gguf(*model, tok, path, opt);
  const GgufFile f = read_gguf(path);
  EXPECT_EQ(f.kv.at("general.architecture"), "qwen2");
  EXPECT_EQ(f.kv.at("general.name"), "tiny qwen");
  EXPECT_EQ(f.kv.at("general.file_type"), 1);  // f16 for a float32 model
  EXPECT_EQ(f.kv.count("qwen2.rope.dimension_count"), 0u);
  EXPECT_EQ(f.kv.at("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.kv.at("tokenizer.ggml.pre"), "qwen2");
  EXPECT_EQ(f.kv.at("tokenizer.ggml.merges").size(), 8u);
  const auto& tokens = f.kv.at("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 272u);
  EXPECT_EQ(tokens[266], "<|im_end|>");
  EXPECT_EQ(f.kv.at("tokenizer.ggml.token_type")[266], 3);
  EXPECT_EQ(f.kv.at("tokenizer.ggml.token_type")[10], 1);
  EXPECT_EQ(tokens[270], "[PAD270]");
  EXPECT_EQ(f.kv.at("tokenizer.ggml.eos_token_id"), 266);
  EXPECT_EQ(f.kv.at("tokenizer.ggml.padding_token_id"), 264);
  EXPECT_EQ(f.kv.at("tokenizer.ggml.add_bos_token"), false);
  EXPECT_EQ(f.kv.count("tokenizer.ggml.bos_token_id"), 0u);
  EXPECT_EQ(f.kv.at("tokenizer.chat_template"), "{{ messages }}");
  // Tied: no output.weight; biases f32; q not permuted (NEOX rotary).
  EXPECT_EQ(f.tensors.count("output.weight"), 0u);
  EXPECT_EQ(f.tensors.at("blk.0.attn_q.bias").type, 0u);
  EXPECT_EQ(f.tensors.at("blk.0.attn_q.weight").type, 1u);
  const torch::Tensor bias = model->named_parameters()["model.layers.0.self_attn.q_proj.bias"];
  EXPECT_TRUE(torch::equal(f32_tensor(f, "blk.0.attn_q.bias"), bias));
}

TEST(Gguf, LinearRopeScalingAndABfloat16Model) {
  TempDir dir("gguf_rope");
  const auto tok = grpo::SentencePieceTokenizer::load(kData + "/models/stories260K/tokenizer.model");
  grpo::TransformerConfig c = llama_config(512);
  c.rope_scaling = grpo::RopeScaling{};
  c.rope_scaling->factor = 2.0;
  const auto model = tiny(c);
  model->to(torch::kBFloat16);
  const std::string path = dir / "r.gguf";
  grpo::export_gguf(*model, tok, path);
  const GgufFile f = read_gguf(path);
  EXPECT_EQ(f.kv.at("llama.rope.scaling.type"), "linear");
  EXPECT_FLOAT_EQ(f.kv.at("llama.rope.scaling.factor").get<float>(), 2.0f);
  EXPECT_EQ(f.kv.at("general.file_type"), 32);  // bf16, the model's own type
  EXPECT_EQ(f.tensors.at("blk.0.ffn_up.weight").type, 30u);
  EXPECT_EQ(f.tensors.count("rope_freqs.weight"), 0u);
  // bf16 weights stored as bf16 are the same bits.
  const torch::Tensor w = model->named_parameters()["model.layers.0.mlp.up_proj.weight"].contiguous();
  EXPECT_EQ(std::memcmp(f.data("blk.0.ffn_up.weight"), w.data_ptr(), w.numel() * 2), 0);
}

TEST(Gguf, RefusesWhatItCannotHold) {
  TempDir dir("gguf_errors");
  const std::string path = dir / "x.gguf";
  const auto sp = grpo::SentencePieceTokenizer::load(kData + "/models/stories260K/tokenizer.model");
  const auto chars = grpo::CharTokenizer::from_texts({"abc"});
  EXPECT_HAS(error_of([&] { grpo::export_gguf(*tiny(llama_config(520)), chars, path); }),
             "a CharTokenizer has no GGUF form");
  EXPECT_HAS(error_of([&] { grpo::export_gguf(*tiny(llama_config(100)), sp, path); }),
             "the tokenizer has 512 tokens, more than the model's vocab_size 100");
  grpo::TransformerConfig window = llama_config(512);
  window.sliding_window = 8;
  EXPECT_HAS(error_of([&] { grpo::export_gguf(*tiny(window), sp, path); }), "sliding_window 8 is shorter");
  grpo::TransformerConfig yarn = llama_config(512);
  yarn.rope_scaling = grpo::RopeScaling{};
  yarn.rope_scaling->rope_type = "yarn";
  yarn.rope_scaling->factor = 2.0;
  EXPECT_HAS(error_of([&] { grpo::export_gguf(*tiny(yarn), sp, path); }), "rope_scaling type \"yarn\"");
  grpo::TransformerConfig qwen = grpo_test::tiny_transformer_config(512);
  qwen.head_dim = 16;  // 4 heads × 16 != 32
  EXPECT_HAS(error_of([&] { grpo::export_gguf(*tiny(qwen), sp, path); }), "llama.cpp's qwen2 needs them equal");
  EXPECT_HAS(error_of([&] { grpo::export_gguf(*grpo_test::mean_lm(), sp, path); }),
             "only a grpo::TransformerLM");
  EXPECT_HAS(error_of([&] { grpo::gguf_type_from_name("q4_0", "--dtype"); }),
             "--dtype: unknown GGUF tensor type \"q4_0\" (known: f32, f16, bf16, q8_0)");
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(Gguf, PreTokenizerWithoutALlamaCppTwinIsRefused) {
  TempDir dir("gguf_pre");
  const auto qwen = grpo::HFTokenizer::load_dir(kData + "/tokenizers/qwen2_tiny");
  nlohmann::json j = nlohmann::json::parse(qwen.tokenizer_json_text());
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\p{L}+|\\s+";
  grpo::HFSpecialTokens special;
  special.eos = "<|im_end|>";
  const auto tok = grpo::HFTokenizer::from_json(j, "tokenizer.json", special);
  EXPECT_HAS(error_of([&] { grpo::export_gguf(*tiny(grpo_test::tiny_transformer_config(272)), tok, dir / "p.gguf"); }),
             "matches none of llama.cpp's");
}

TEST(Gguf, AFailedExportLeavesThePreviousFile) {
  TempDir dir("gguf_atomic");
  const std::string path = dir / "m.gguf";
  { std::ofstream(path) << "previous"; }
  const auto chars = grpo::CharTokenizer::from_texts({"abc"});
  error_of([&] { grpo::export_gguf(*tiny(llama_config(520)), chars, path); });
  std::ifstream in(path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "previous");
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
  // And a successful one replaces it whole.
  const auto sp = grpo::SentencePieceTokenizer::load(kData + "/models/stories260K/tokenizer.model");
  grpo::export_gguf(*tiny(llama_config(512)), sp, path);
  EXPECT_EQ(read_gguf(path).kv.at("general.architecture"), "llama");
}

}  // namespace
