// SFTTrainer: batches of prompt → completion pairs, left-padded prompts and
// right-padded completions (EOS appended), loss = mean negative log-likelihood
// over the completion tokens of the batch. Data parallel: each rank takes its
// share of every batch, and the token count and the gradients are summed over
// the ranks, so the update is the whole batch's.
#include "grpo/train/sft_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <optional>

#include "grpo/error.h"
#include "grpo/log.h"
#include "grpo/train/checkpoint.h"
#include "grpo/train/factory.h"
#include "grpo/train/metrics.h"
#include "train/optimizer.h"

namespace grpo {

namespace fs = std::filesystem;

SFTTrainer::SFTTrainer(TrainConfig config, std::shared_ptr<CausalLM> model, std::shared_ptr<const Tokenizer> tokenizer,
                       PromptDataset pairs, std::shared_ptr<Distributed> dist)
    : config_(std::move(config)),
      dist_(dist ? std::move(dist) : std::make_shared<Distributed>()),
      tokenizer_(std::move(tokenizer)),
      pairs_(std::move(pairs)) {
  config_.validate();
  if (!model) throw Error("SFTTrainer: the model is null");
  if (!tokenizer_) throw Error("SFTTrainer: the tokenizer is null");
  if (config_.sft.batch_size > pairs_.size()) {
    throw Error("sft.batch_size: must be <= the " + std::to_string(pairs_.size()) + " training pairs, got " +
                std::to_string(config_.sft.batch_size));
  }
  for (int64_t i = 0; i < pairs_.size(); ++i) {
    const nlohmann::json& r = pairs_.record(i);
    auto it = r.find(config_.sft.completion_key);
    if (it == r.end() || !it->is_string()) {
      throw Error("sft.train: record " + std::to_string(i) + " has no string field \"" + config_.sft.completion_key +
                  "\"");
    }
  }
  if (config_.sft.batch_size < dist_->world_size()) {
    throw Error("sft.batch_size: must be >= the " + std::to_string(dist_->world_size()) + " processes of the job, got " +
                std::to_string(config_.sft.batch_size));
  }
  apply_threads(config_.threads);
  apply_allow_tf32(config_.model.allow_tf32);
  policy_ = std::make_unique<Policy>(std::move(model));
  optimizer_ = std::make_unique<MasterAdamW>(policy_->model(), config_.sft.optimizer, dist_.get());
  optimizer_->broadcast_state();
}

SFTTrainer::~SFTTrainer() = default;

CausalLM& SFTTrainer::master_model() { return optimizer_->master(); }

std::unique_ptr<SFTTrainer> SFTTrainer::from_config(const TrainConfig& config) {
  config.validate();
  if (config.sft.train.empty()) throw Error("sft.train: a JSONL file of prompt/completion pairs is required");
  std::shared_ptr<Distributed> dist = Distributed::from_env(config.distributed, config.model.device);
  std::shared_ptr<const Tokenizer> tokenizer = make_tokenizer(config.tokenizer, config.model.init_from);
  ModelConfig model_config = config.model;
  model_config.device = dist->device_for(config.model.device);
  auto model = make_model(model_config, *tokenizer, config.seed);
  return std::make_unique<SFTTrainer>(
      config, std::move(model), std::move(tokenizer),
      PromptDataset::from_jsonl(config.sft.train, sft_dataset_options(config.sft, config.data, config.seed)),
      std::move(dist));
}

std::string SFTTrainer::output_checkpoint() const { return (fs::path(config_.output_dir) / "sft").string(); }

nlohmann::json SFTTrainer::step() {
  // NB: every rank draws the same batch and keeps its share.
  const std::vector<PromptRecord> drawn = pairs_.next_batch(config_.sft.batch_size);
  const auto [first, end] = dist_->share(static_cast<int64_t>(drawn.size()));
  const std::vector<PromptRecord> batch(drawn.begin() + first, drawn.begin() + end);
  const int64_t B = static_cast<int64_t>(batch.size());
  std::vector<std::vector<int64_t>> prompts, completions;
  size_t Lp = 0, T = 0;
  for (const PromptRecord& r : batch) {
    prompts.push_back(tokenizer_->encode_prompt(r.prompt));
    completions.push_back(tokenizer_->encode(r.fields.at(config_.sft.completion_key).get<std::string>()));
    completions.back().push_back(tokenizer_->eos_id());
    Lp = std::max(Lp, prompts.back().size());
    T = std::max(T, completions.back().size());
  }
  const int64_t pad = tokenizer_->pad_id();
  torch::Tensor prompt_ids = torch::full({B, static_cast<int64_t>(Lp)}, pad, torch::kLong);
  torch::Tensor prompt_mask = torch::zeros({B, static_cast<int64_t>(Lp)}, torch::kLong);
  torch::Tensor completion_ids = torch::full({B, static_cast<int64_t>(T)}, pad, torch::kLong);
  torch::Tensor completion_mask = torch::zeros({B, static_cast<int64_t>(T)}, torch::kLong);
  auto pi = prompt_ids.accessor<int64_t, 2>(), pm = prompt_mask.accessor<int64_t, 2>();
  auto ci = completion_ids.accessor<int64_t, 2>(), cm = completion_mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[static_cast<size_t>(b)];
    const auto& c = completions[static_cast<size_t>(b)];
    const int64_t offset = static_cast<int64_t>(Lp - p.size());  // left padding
    for (size_t t = 0; t < p.size(); ++t) {
      pi[b][offset + static_cast<int64_t>(t)] = p[t];
      pm[b][offset + static_cast<int64_t>(t)] = 1;
    }
    for (size_t t = 0; t < c.size(); ++t) {
      ci[b][static_cast<int64_t>(t)] = c[t];
      cm[b][static_cast<int64_t>(t)] = 1;
    }
  }
  if (static_cast<int64_t>(Lp + T) > policy_->model().max_positions()) {
    throw Error("sft: a prompt and completion of " + std::to_string(Lp + T) + " tokens exceed the model's " +
                std::to_string(policy_->model().max_positions()) + " positions");
  }

  LogprobOptions lo;
  lo.chunk_tokens = config_.grpo.logprob_chunk_tokens;
  optimizer_->zero_grad();
  const torch::Tensor logp = policy_->token_logprobs(prompt_ids, prompt_mask, completion_ids, completion_mask, lo).logprobs;
  const double tokens = dist_->all_reduce_sum(completion_mask.sum().item<double>(), "the SFT token count");
  const torch::Tensor loss = -logp.sum() / tokens;
  optimizer_->overlap_next_backward();
  loss.backward();
  const double lr = config_.sft.optimizer.lr_at(step_, config_.sft.steps);
  const double loss_value = dist_->all_reduce_sum(loss.item<double>(), "the SFT loss");
  if (!std::isfinite(loss_value)) {
    throw Error("sft: step " + std::to_string(step_ + 1) + ": the loss is not finite; training stopped");
  }
  const double norm = optimizer_->step(lr, "sft: step " + std::to_string(step_ + 1));
  ++step_;
  return {{"step", step_}, {"loss", loss_value}, {"learning_rate", lr}, {"grad_norm", norm}, {"tokens", tokens}};
}

nlohmann::json SFTTrainer::train() {
  // NB: the other ranks' next collective fails with this rank's message, rather than at their timeout.
  return dist_->reporting_failures([&] { return train_loop(); });
}

nlohmann::json SFTTrainer::train_loop() {
  const bool main = dist_->is_main();
  std::error_code ec;
  if (main) fs::create_directories(config_.output_dir, ec);
  if (ec) throw Error("output_dir " + config_.output_dir + ": cannot create (" + ec.message() + ")");
  std::optional<MetricsWriter> metrics;
  if (main) metrics.emplace((fs::path(config_.output_dir) / "sft_metrics.jsonl").string());
  const auto start = std::chrono::steady_clock::now();
  double last_loss = 0;
  while (step_ < config_.sft.steps) {
    const nlohmann::json m = step();
    if (main) metrics->write(m);
    last_loss = m["loss"].get<double>();
    if (main && config_.logging.console && (step_ % config_.logging.log_every == 0 || step_ == config_.sft.steps)) {
      log::info("sft step " + std::to_string(step_) + "/" + std::to_string(config_.sft.steps) + " | loss " +
                log::fixed(last_loss, 4) + " | lr " + log::scientific(m["learning_rate"].get<double>(), 2));
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CheckpointContents c;
  c.model = &policy_->model();
  if (optimizer_->has_copy()) c.weights = &optimizer_->master();
  c.tokenizer = tokenizer_.get();
  c.trainer_state = {{"step", step_}, {"stage", "sft"}, {"final_loss", last_loss}};
  c.config = config_.to_json();
  if (main) write_checkpoint(output_checkpoint(), c);
  dist_->barrier("the SFT checkpoint");
  return {{"steps", step_}, {"final_loss", last_loss}, {"seconds", seconds}, {"checkpoint", output_checkpoint()}};
}

}  // namespace grpo
