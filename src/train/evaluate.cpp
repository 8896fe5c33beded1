// Greedy held-out evaluation and its JSON record.
#include "grpo/train/evaluate.h"

#include <torch/torch.h>

#include <algorithm>

#include "grpo/error.h"
#include "grpo/rollout/sampler.h"

namespace grpo {

nlohmann::json EvalResult::to_json() const {
  nlohmann::json j = {{"step", step},
                      {"problems", problems},
                      {"accuracy", accuracy ? nlohmann::json(*accuracy) : nlohmann::json(nullptr)},
                      {"mean_reward", mean_reward},
                      {"mean_completion_length", mean_completion_length},
                      {"rewards", nlohmann::json::object()},
                      {"samples", samples}};
  for (size_t r = 0; r < reward_names.size(); ++r) j["rewards"][reward_names[r]] = reward_means[r];
  return j;
}

EvalResult EvalResult::from_json(const nlohmann::json& e) {
  EvalResult r;
  r.step = e.at("step").get<int64_t>();
  r.problems = e.at("problems").get<int64_t>();
  if (!e.at("accuracy").is_null()) r.accuracy = e.at("accuracy").get<double>();
  r.mean_reward = e.at("mean_reward").get<double>();
  r.mean_completion_length = e.at("mean_completion_length").get<double>();
  for (const auto& kv : e.at("rewards").items()) {
    r.reward_names.push_back(kv.key());
    r.reward_means.push_back(kv.value().get<double>());
  }
  r.samples = e.at("samples").get<std::vector<nlohmann::json>>();
  return r;
}

void check_accuracy_reward(const std::string& name, const RewardSet& rewards) {
  const std::vector<std::string> names = rewards.names();
  // NB: the default ("accuracy") may name no reward: a run without one simply reports no accuracy.
  if (name.empty() || name == EvalConfig{}.accuracy_reward || std::find(names.begin(), names.end(), name) != names.end()) return;
  std::string known;
  for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
  throw Error("eval.accuracy_reward: \"" + name + "\" is not one of the run's rewards (" + known +
              "); name one of them, or \"\" for none");
}

EvalResult evaluate(Policy& policy, const Tokenizer& tokenizer, const PromptDataset& data, const RewardSet& rewards,
                    const EvalConfig& eval, int64_t max_new_tokens, int64_t limit,
                    const std::string& accuracy_reward, const std::vector<int64_t>& eos_ids, Distributed* dist) {
  check_accuracy_reward(accuracy_reward, rewards);
  torch::NoGradGuard no_grad;
  const int64_t n = limit > 0 ? std::min(limit, data.size()) : data.size();
  GroupSamplerConfig sc;
  sc.group_size = 1;
  sc.generation.max_new_tokens = max_new_tokens;
  sc.generation.temperature = 0;  // greedy
  sc.generation.eos_ids = eos_ids;
  // NB: the sampler only reads the tokenizer; the shared_ptr does not own it here.
  GroupSampler sampler(policy, std::shared_ptr<const Tokenizer>(&tokenizer, [](const Tokenizer*) {}), sc);

  EvalResult out;
  out.problems = n;
  out.reward_names = rewards.names();
  const size_t R = out.reward_names.size();
  std::vector<double> sums(R, 0.0);
  double total = 0, length = 0;
  const bool split = dist && dist->active();
  const auto [first, end] = split ? dist->share(n) : std::make_pair(int64_t{0}, n);
  for (int64_t begin = first; begin < end; begin += eval.batch_size) {
    std::vector<PromptRecord> prompts;
    for (int64_t i = begin; i < std::min(end, begin + eval.batch_size); ++i) prompts.push_back(data.get(i));
    const RolloutBatch batch = sampler.sample(prompts, /*seed=*/0);
    const RewardScores scores = rewards.score(batch.samples());
    for (int64_t i = 0; i < batch.size(); ++i) {
      total += scores.total(i);
      length += static_cast<double>(batch.completion_lengths[static_cast<size_t>(i)]);
      for (size_t r = 0; r < R; ++r) sums[r] += scores.per_function(i, static_cast<int64_t>(r));
      if (out.samples.size() < 4) {
        out.samples.push_back({{"prompt", batch.prompts[static_cast<size_t>(i)].prompt},
                               {"completion", batch.completion_texts[static_cast<size_t>(i)]},
                               {"reward", scores.total(i)}});
      }
    }
  }
  if (split) {
    std::vector<double> parts = sums;
    parts.push_back(total);
    parts.push_back(length);
    const torch::Tensor all = dist->all_reduce_sum(torch::tensor(parts, torch::kFloat64), "the evaluation's scores");
    const auto a = all.accessor<double, 1>();
    for (size_t r = 0; r < R; ++r) sums[r] = a[static_cast<int64_t>(r)];
    total = a[static_cast<int64_t>(R)];
    length = a[static_cast<int64_t>(R) + 1];
  }
  const double denom = std::max<double>(1.0, static_cast<double>(n));
  out.mean_reward = total / denom;
  out.mean_completion_length = length / denom;
  for (size_t r = 0; r < R; ++r) {
    out.reward_means.push_back(sums[r] / denom);
    if (out.reward_names[r] == accuracy_reward) out.accuracy = sums[r] / denom;
  }
  return out;
}

}  // namespace grpo
