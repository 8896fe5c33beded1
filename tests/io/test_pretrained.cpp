// Hugging Face folders in and out, on real checkpoints made by others: the
// pretrained TinyStories Llama (stories260K) writes English from BOS and finds
// a TinyStories sentence likely; the transformers-written bfloat16 checkpoint
// loads with its untied head and eps; save → load is bit-exact; bad folders
// are named. The token ids below were computed with Debian's
// python3-sentencepiece 0.1.97 from stories260K's tokenizer.model.
#include <grpo/io/pretrained.h>
#include <grpo/io/safetensors.h>
#include <grpo/rollout/policy.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kModels = std::string(GRPO_TEST_DATA_DIR) + "/models";

// "Once upon a time"
const std::vector<int64_t> kOnceUponATime = {403, 407, 261, 378};
// "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun."
const std::vector<int64_t> kSentence = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426,
                                        338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 262, 379, 426};
constexpr int64_t kBos = 1, kEos = 2;

torch::Tensor row(const std::vector<int64_t>& ids) {
  return torch::tensor(ids, torch::kLong).unsqueeze(0);
}

}  // namespace

TEST(Pretrained, Stories260KWritesEnglishFromBos) {
  auto model = grpo::load_pretrained(kModels + "/stories260K");
  const grpo::TransformerConfig& c = model->config();
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_layers, 5);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.kv_heads(), 4);
  EXPECT_EQ(c.dim_per_head(), 8);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);

  grpo::Policy policy(model);
  grpo::GenerationConfig g;
  g.temperature = 0;
  g.max_new_tokens = 4;
  g.eos_ids = {kEos};
  const grpo::Generation out = policy.generate({{kBos}}, g);
  const auto ids = out.completion_ids[0];
  std::vector<int64_t> got(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  EXPECT_EQ(got, kOnceUponATime);

  // Mean negative log-likelihood of a TinyStories sentence after BOS.
  const torch::Tensor completion = row(kSentence);
  const torch::Tensor logp =
      policy.token_logprobs(row({kBos}), torch::ones({1, 1}, torch::kLong), completion, torch::ones_like(completion)).logprobs;
  const double nll = -logp.mean().item<double>();
  EXPECT_LT(nll, 1.0) << "nats per token";
  EXPECT_GT(nll, 0.05);
}

TEST(Pretrained, TransformersBf16CheckpointLoads) {
  const std::string dir = kModels + "/tiny-llama-bf16-random";
  auto model = grpo::load_pretrained(dir);
  const grpo::TransformerConfig& c = model->config();
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.vocab_size, 16);
  // float32 copies of the bfloat16 values, exactly.
  const grpo::SafetensorsFile file(dir + "/model.safetensors");
  const auto params = model->named_parameters();
  EXPECT_EQ(static_cast<int64_t>(params.size()), static_cast<int64_t>(file.names().size()));
  for (const std::string& name : file.names()) {
    ASSERT_NE(params.find(name), nullptr) << name;
    EXPECT_EQ(params[name].scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::equal(params[name], file.tensor(name).to(torch::kFloat))) << name;
  }
  auto bf16 = grpo::load_pretrained(dir, torch::kBFloat16);
  EXPECT_EQ(bf16->named_parameters()["lm_head.weight"].scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(bf16->named_parameters()["lm_head.weight"], file.tensor("lm_head.weight")));
}

TEST(Pretrained, SaveThenLoadIsBitExact) {
  TempDir dir("pretrained_roundtrip");
  for (const std::string name : {"stories260K", "tiny-llama-bf16-random"}) {
    SCOPED_TRACE(name);
    auto model = grpo::load_pretrained(kModels + "/" + name, torch::kBFloat16);
    const std::string out = dir / name;
    grpo::save_pretrained(*model, out);
    std::ifstream in(out + "/config.json");
    const json config = json::parse(in);
    EXPECT_EQ(config["architectures"], json::array({"LlamaForCausalLM"}));
    EXPECT_EQ(config["torch_dtype"], "bfloat16");
    auto again = grpo::load_pretrained(out, torch::kBFloat16);
    const auto a = model->named_parameters(), b = again->named_parameters();
    ASSERT_EQ(a.size(), b.size());
    for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  }
  // The transformers-written file re-saved in its own dtype is the same bytes.
  auto model = grpo::load_pretrained(kModels + "/tiny-llama-bf16-random", torch::kBFloat16);
  grpo::save_pretrained(*model, dir / "bf16");
  auto bytes = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  EXPECT_EQ(bytes(dir / "bf16/model.safetensors"), bytes(kModels + "/tiny-llama-bf16-random/model.safetensors"));
  // Shards load back the same.
  grpo::save_pretrained(*model, dir / "sharded", c10::nullopt, /*max_shard_bytes=*/20000);
  EXPECT_TRUE(fs::exists(dir / "sharded/model.safetensors.index.json"));
  auto sharded = grpo::load_pretrained(dir / "sharded", torch::kBFloat16);
  for (const auto& p : model->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), sharded->named_parameters()[p.key()])) << p.key();
  }
}

TEST(Pretrained, ArchitecturesAndTheirKeys) {
  json llama = {{"architectures", {"LlamaForCausalLM"}}, {"vocab_size", 32}, {"hidden_size", 16},
                {"intermediate_size", 32}, {"num_hidden_layers", 1}, {"num_attention_heads", 2},
                {"max_position_embeddings", 64}, {"bos_token_id", 1}, {"torch_dtype", "bfloat16"}};
  grpo::TransformerConfig c = grpo::config_from_pretrained(llama);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_FALSE(c.attention_bias);
  json qwen = llama;
  qwen["architectures"] = {"Qwen2ForCausalLM"};
  qwen["use_sliding_window"] = false;
  qwen["sliding_window"] = 32;
  EXPECT_TRUE(grpo::config_from_pretrained(qwen).attention_bias);
  EXPECT_EQ(grpo::config_from_pretrained(qwen).max_position_embeddings, 64);
  json mistral = llama;
  mistral["architectures"] = {"MistralForCausalLM"};
  mistral["sliding_window"] = 48;
  // The window is attention's, not the context's: the whole context stays.
  EXPECT_EQ(grpo::config_from_pretrained(mistral).max_position_embeddings, 64);
  EXPECT_EQ(grpo::config_from_pretrained(mistral).sliding_window, 48);
  json gpt2 = llama;
  gpt2["architectures"] = {"GPT2LMHeadModel"};
  EXPECT_HAS(error_of([&] { grpo::config_from_pretrained(gpt2, "x/config.json"); }),
             "x/config.json: architecture \"GPT2LMHeadModel\" is not supported");
  json scaled = llama;
  scaled["rope_scaling"] = {{"rope_type", "llama3"}};  // no factor
  EXPECT_HAS(error_of([&] { grpo::config_from_pretrained(scaled, "y/config.json"); }), "y/config.json");
  EXPECT_HAS(error_of([&] { grpo::config_from_pretrained(scaled, "y/config.json"); }), "rope_scaling.factor");
}

TEST(Pretrained, BadFoldersAreNamed) {
  TempDir dir("pretrained_bad");
  EXPECT_HAS(error_of([&] { grpo::load_pretrained(dir / "nothing"); }), "config.json");
  // stories260K's weights under a config that wants another shape and one more layer.
  fs::create_directories(dir / "mismatch");
  fs::copy_file(kModels + "/stories260K/model.safetensors", dir / "mismatch/model.safetensors");
  std::ifstream in(kModels + "/stories260K/config.json");
  json config = json::parse(in);
  config["intermediate_size"] = 176;
  config["num_hidden_layers"] = 6;
  std::ofstream(dir / "mismatch/config.json") << config.dump();
  const std::string msg = error_of([&] { grpo::load_pretrained(dir / "mismatch"); });
  EXPECT_HAS(msg, "the weights do not fit config.json");
  EXPECT_HAS(msg, "missing tensor 'model.layers.5.self_attn.q_proj.weight'");
  EXPECT_HAS(msg, "tensor 'model.layers.0.mlp.up_proj.weight' has shape [172, 64], the config implies [176, 64]");

  // A folder with PyTorch pickles only is refused by name, never unpickled.
  fs::create_directories(dir / "pickled");
  fs::copy_file(kModels + "/stories260K/config.json", dir / "pickled/config.json");
  std::ofstream(dir / "pickled/pytorch_model.bin") << "not read";
  const std::string pickled = error_of([&] { grpo::load_pretrained(dir / "pickled"); });
  EXPECT_HAS(pickled, "pytorch_model.bin");
  EXPECT_HAS(pickled, "model.safetensors");
  EXPECT_HAS(pickled, "only safetensors");
}
