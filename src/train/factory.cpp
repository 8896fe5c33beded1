// Building a run's parts from its config (grpo/train/factory.h).
#include "grpo/train/factory.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "grpo/error.h"
#include "grpo/models/registry.h"
#include "grpo/models/transformer.h"
#include "grpo/tokenizers/char_tokenizer.h"
#include "grpo/tokenizers/sentencepiece.h"
#include "grpo/train/checkpoint.h"

namespace grpo {

namespace fs = std::filesystem;

std::shared_ptr<Tokenizer> make_tokenizer(const TokenizerConfig& config, const std::string& checkpoint) {
  std::error_code ec;
  if (!config.path.empty()) {
    const std::string& path = config.path;
    if (fs::is_directory(path, ec)) {
      auto tokenizer = load_tokenizer(path);
      if (config.type == "char" && !dynamic_cast<CharTokenizer*>(tokenizer.get())) {
        throw Error("tokenizer.path " + path + ": holds no CharTokenizer, but tokenizer.type is \"char\"");
      }
      return tokenizer;
    }
    const bool sp_file = fs::path(path).extension() == ".model";
    if (config.type == "sentencepiece" || (config.type == "auto" && sp_file)) {
      return std::make_shared<SentencePieceTokenizer>(SentencePieceTokenizer::load(path));
    }
    if (config.type == "char") return std::make_shared<CharTokenizer>(CharTokenizer::load(path));
    // "auto" or "hf" naming a tokenizer.json: the folder around it holds its settings.
    if (fs::path(path).filename() != "tokenizer.json") {
      throw Error("tokenizer.path " + path + ": name a folder, a tokenizer.model or a tokenizer.json");
    }
    const std::string dir = fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path().string();
    auto tokenizer = load_tokenizer(dir);
    if (config.type == "hf" && (dynamic_cast<CharTokenizer*>(tokenizer.get()) ||
                                dynamic_cast<SentencePieceTokenizer*>(tokenizer.get()))) {
      throw Error("tokenizer.path " + path + ": not a Hugging Face tokenizer.json, but tokenizer.type is \"hf\"");
    }
    return tokenizer;
  }
  if (!config.characters.empty()) return std::make_shared<CharTokenizer>(CharTokenizer::from_texts({config.characters}));
  if (!checkpoint.empty()) return load_tokenizer(checkpoint);
  throw Error("tokenizer: give \"path\" (a tokenizer file or folder) or \"characters\", "
              "or start from a model folder that has a tokenizer (model.init_from)");
}

PromptDatasetOptions dataset_options(const DataConfig& data, uint64_t seed) {
  PromptDatasetOptions opt;
  opt.prompt_key = data.prompt_key;
  opt.template_text = data.template_text;
  opt.shuffle = data.shuffle;
  opt.seed = seed;
  opt.chat_template = data.chat_template;
  opt.system_prompt = data.system_prompt;
  return opt;
}

std::shared_ptr<CausalLM> make_model(const ModelConfig& config, const Tokenizer& tokenizer, uint64_t seed) {
  std::shared_ptr<CausalLM> model;
  if (!config.init_from.empty()) {
    model = load_model(config.init_from);
    if (model->vocab_size() < tokenizer.vocab_size()) {
      throw Error("model.init_from " + config.init_from + ": the model's vocabulary has " +
                  std::to_string(model->vocab_size()) + " tokens but the tokenizer has " +
                  std::to_string(tokenizer.vocab_size()) + "; a model must cover every token id");
    }
  } else {
    TransformerConfig tc = config.config;
    if (tc.vocab_size == 0) tc.vocab_size = tokenizer.vocab_size();
    if (tc.vocab_size < tokenizer.vocab_size()) {
      throw Error("model.config.vocab_size: must be >= the tokenizer's " + std::to_string(tokenizer.vocab_size()) +
                  " tokens, got " + std::to_string(tc.vocab_size));
    }
    torch::manual_seed(seed);
    model = ModelRegistry::global().create("transformer", tc.to_json(), /*initialize=*/true, "model.config");
  }
  model->set_batch_invariant(config.batch_invariant);
  if (config.dtype == "bfloat16") model->module().to(torch::kBFloat16);
  else if (config.dtype == "float64") model->module().to(torch::kFloat64);
  else model->module().to(torch::kFloat32);
  // NB: the embedding may be padded past the tokenizer (Qwen2.5); ids from
  // there on are not the tokenizer's, so the policy never samples them.
  if (model->vocab_size() > tokenizer.vocab_size())
    model = std::make_shared<VocabularyLimit>(std::move(model), tokenizer.vocab_size());
  if (config.device != "cpu") {
    if (!torch::cuda::is_available()) {
      throw Error("model.device: \"" + config.device +
                  "\" asked for, but CUDA is not available (no GPU visible, or a LibTorch built without CUDA)");
    }
    const torch::Device device(config.device);
    if (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count())) {
      throw Error("model.device: \"" + config.device + "\" asked for, but there are " +
                  std::to_string(torch::cuda::device_count()) + " CUDA devices");
    }
    model->module().to(device);
  }
  return model;
}

std::vector<int64_t> stop_ids(const SamplingConfig& sampling, const Tokenizer& tokenizer) {
  std::vector<int64_t> ids = {tokenizer.eos_id()};
  for (size_t i = 0; i < sampling.stop_tokens.size(); ++i) {
    const auto id = tokenizer.token_to_id(sampling.stop_tokens[i]);
    if (!id) {
      throw Error("sampling.stop_tokens[" + std::to_string(i) + "]: the tokenizer has no token \"" +
                  sampling.stop_tokens[i] + "\"");
    }
    if (std::find(ids.begin(), ids.end(), *id) == ids.end()) ids.push_back(*id);
  }
  return ids;
}

PromptDatasetOptions sft_dataset_options(const SftConfig& sft, const DataConfig& data, uint64_t seed) {
  PromptDatasetOptions opt;
  opt.prompt_key = sft.prompt_key;
  opt.template_text = sft.template_text;
  opt.seed = seed;
  opt.chat_template = data.chat_template;
  opt.system_prompt = data.system_prompt;
  return opt;
}

void apply_threads(int64_t threads) {
  if (threads > 0) at::set_num_threads(static_cast<int>(threads));
}

void apply_allow_tf32(bool allow) {
  // NB: this setter keeps LibTorch's legacy flag and its per-backend precision
  // in step; setting only the new one makes allowTF32CuBLAS() throw.
  at::globalContext().setAllowTF32CuBLAS(allow);
}

}  // namespace grpo
