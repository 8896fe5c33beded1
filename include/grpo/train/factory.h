// One place that builds a run's parts from its config: the tokenizer, the
// model, the datasets' options, the stop tokens and the thread count. The GRPO
// and SFT trainers and the command line all build through here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/data/prompt_dataset.h"
#include "grpo/models/causal_lm.h"
#include "grpo/tokenizers/tokenizer.h"

namespace grpo {

// The tokenizer a config asks for: a tokenizer file or folder (tokenizer.path,
// of tokenizer.type), or a CharTokenizer built from tokenizer.characters with
// the default special tokens; with neither, the one saved in `checkpoint`
// (e.g. model.init_from). grpo::Error when there is none.
std::shared_ptr<Tokenizer> make_tokenizer(const TokenizerConfig& config, const std::string& checkpoint = "");

// The model a config asks for: loaded from model.init_from (load_model), or a
// fresh TransformerLM from model.config through the ModelRegistry (vocab_size
// 0 = the tokenizer's), in model.dtype on model.device. A model whose
// vocabulary is larger than the tokenizer's (a padded embedding) comes as a
// VocabularyLimit view at the tokenizer's size. Seeds LibTorch's generator
// with `seed` before initializing a fresh model. grpo::Error when the model
// has fewer ids than the tokenizer or the device is not available.
std::shared_ptr<CausalLM> make_model(const ModelConfig& config, const Tokenizer& tokenizer, uint64_t seed);

// PromptDataset options from the data section, shuffled with `seed`.
PromptDatasetOptions dataset_options(const DataConfig& data, uint64_t seed);
// PromptDataset options for the SFT pairs (sft.train), shuffled with `seed`.
// The chat settings are the data section's (data.chat_template,
// data.system_prompt), so SFT shows the model its prompts as GRPO does.
PromptDatasetOptions sft_dataset_options(const SftConfig& sft, const DataConfig& data, uint64_t seed);

// The ids a completion stops on: the tokenizer's EOS, then sampling.stop_tokens
// (grpo::Error naming a spelling the tokenizer does not have as one token).
std::vector<int64_t> stop_ids(const SamplingConfig& sampling, const Tokenizer& tokenizer);

// Sets LibTorch's intra-op threads when threads > 0.
void apply_threads(int64_t threads);
// Sets whether float32 matmuls on CUDA may use TF32 (model.allow_tf32), for
// the whole process, as LibTorch's setting is. No effect on the CPU.
void apply_allow_tf32(bool allow);

}  // namespace grpo
