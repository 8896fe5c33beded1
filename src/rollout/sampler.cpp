// GroupSampler: tokenizes prompts, asks the policy for G completions each, and
// decodes the kept tokens. Shapes: P prompts, N = P·G rows, T completion positions.
#include "grpo/rollout/sampler.h"

#include <torch/torch.h>

#include <algorithm>

#include "grpo/error.h"

namespace grpo {

GroupSampler::GroupSampler(Policy& policy, std::shared_ptr<const Tokenizer> tokenizer, GroupSamplerConfig config)
    : policy_(policy), tokenizer_(std::move(tokenizer)), config_(std::move(config)) {
  if (!tokenizer_) throw Error("GroupSampler: the tokenizer is null");
  if (config_.group_size < 1) {
    throw Error("GroupSampler: group_size (G) must be >= 1, got " + std::to_string(config_.group_size));
  }
  if (config_.generation.eos_ids.empty()) config_.generation.eos_ids = {tokenizer_->eos_id()};
  config_.generation.pad_id = tokenizer_->pad_id();
  config_.generation.validate();
}

RolloutBatch GroupSampler::sample(const std::vector<PromptRecord>& prompts) {
  return sample(prompts, config_.generation.seed + calls_++);
}

RolloutBatch GroupSampler::sample(const std::vector<PromptRecord>& prompts, uint64_t seed) {
  GenerationConfig generation = config_.generation;
  generation.seed = seed;
  return sample_with(prompts, generation);
}

RolloutBatch GroupSampler::sample(const std::vector<PromptRecord>& prompts, const std::vector<uint64_t>& prompt_seeds) {
  if (prompt_seeds.size() != prompts.size()) {
    throw Error("GroupSampler::sample: " + std::to_string(prompt_seeds.size()) + " prompt seeds for " +
                std::to_string(prompts.size()) + " prompts");
  }
  GenerationConfig generation = config_.generation;
  generation.prompt_seeds = prompt_seeds;
  return sample_with(prompts, generation);
}

RolloutBatch GroupSampler::sample_with(const std::vector<PromptRecord>& prompts, const GenerationConfig& generation) {
  if (prompts.empty()) throw Error("GroupSampler::sample: no prompts");
  std::vector<std::vector<int64_t>> ids;
  ids.reserve(prompts.size());
  for (size_t p = 0; p < prompts.size(); ++p) {
    if (prompts[p].prompt.empty()) throw Error("GroupSampler::sample: prompt " + std::to_string(p) + " is empty");
    ids.push_back(tokenizer_->encode_prompt(prompts[p].prompt));
  }
  Generation g = policy_.generate(ids, generation, config_.group_size);

  RolloutBatch batch;
  batch.num_prompts = static_cast<int64_t>(prompts.size());
  batch.group_size = config_.group_size;
  const int64_t N = batch.size();
  // NB: a batch lives on the CPU whatever the model's device: rewards,
  // advantages and row bookkeeping are CPU work, and the model's own calls
  // (token_logprobs) move what they need.
  batch.prompt_ids = g.prompt_ids.cpu();
  batch.prompt_mask = g.prompt_mask.cpu();
  batch.completion_ids = g.completion_ids.cpu();
  batch.completion_mask = g.completion_mask.cpu();
  batch.truncated = g.truncated.cpu();
  batch.logprobs = g.logprobs.cpu();
  batch.sampling_logprobs = g.sampling_logprobs.cpu();
  batch.group_index = torch::arange(batch.num_prompts, torch::kLong).repeat_interleave(config_.group_size);
  batch.prompts = prompts;

  const torch::Tensor& ids_cpu = batch.completion_ids;
  const torch::Tensor& kept_cpu = batch.completion_mask;
  const auto kept_ids = ids_cpu.accessor<int64_t, 2>();
  const auto kept = kept_cpu.accessor<int64_t, 2>();
  const auto& eos = generation.eos_ids;
  batch.completion_texts.reserve(N);
  batch.completion_lengths.reserve(N);
  for (int64_t i = 0; i < N; ++i) {
    std::vector<int64_t> tokens;
    int64_t length = 0;
    for (int64_t t = 0; t < ids_cpu.size(1) && kept[i][t] == 1; ++t) {
      ++length;
      if (std::find(eos.begin(), eos.end(), kept_ids[i][t]) == eos.end()) tokens.push_back(kept_ids[i][t]);
    }
    batch.completion_texts.push_back(tokenizer_->decode(tokens));
    batch.completion_lengths.push_back(length);
  }
  // NB: after decoding, so rewards still see a truncated completion's text; only the loss ignores it.
  if (config_.mask_truncated_completions) {
    batch.completion_mask = batch.completion_mask * torch::logical_not(batch.truncated).to(torch::kLong).unsqueeze(1);
  }
  return batch;
}

std::vector<Sample> RolloutBatch::samples() const {
  const RolloutBatch& batch = *this;
  const int64_t N = batch.size();
  auto expect = [&](const char* what, int64_t got) {
    if (got != N) {
      throw Error(std::string("RolloutBatch::samples: the batch has N = ") + std::to_string(N) + " rows but " + what + " has " +
                  std::to_string(got));
    }
  };
  expect("completion_texts", static_cast<int64_t>(batch.completion_texts.size()));
  expect("completion_lengths", static_cast<int64_t>(batch.completion_lengths.size()));
  expect("group_index", batch.group_index.defined() ? batch.group_index.numel() : 0);
  const bool has_truncated = batch.truncated.defined() && batch.truncated.numel() > 0;
  if (has_truncated) expect("truncated", batch.truncated.numel());
  const torch::Tensor group = batch.group_index.to(torch::kCPU, torch::kLong).contiguous();
  const torch::Tensor truncated = has_truncated ? batch.truncated.to(torch::kCPU, torch::kBool).contiguous() : torch::Tensor();
  const int64_t* g = group.data_ptr<int64_t>();
  const bool* tr = has_truncated ? truncated.data_ptr<bool>() : nullptr;

  std::vector<Sample> samples(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    if (g[i] < 0 || g[i] >= static_cast<int64_t>(batch.prompts.size())) {
      throw Error("RolloutBatch::samples: row " + std::to_string(i) + " has group_index " + std::to_string(g[i]) + " but there are " +
                  std::to_string(batch.prompts.size()) + " prompts");
    }
    const PromptRecord& record = batch.prompts[static_cast<size_t>(g[i])];
    Sample& s = samples[static_cast<size_t>(i)];
    s.prompt = record.prompt;
    s.completion = batch.completion_texts[static_cast<size_t>(i)];
    s.completion_tokens = batch.completion_lengths[static_cast<size_t>(i)];
    s.truncated = tr ? tr[i] : false;
    s.fields = &record.fields;
  }
  return samples;
}

}  // namespace grpo
