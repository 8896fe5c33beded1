// GRPOTrainer: the GRPO loop. One step samples G completions for each of P
// prompts, scores them, turns the rewards into group-relative advantages, and
// makes μ passes of mini-batch updates over them with the fused loss; it logs
// metrics, evaluates and checkpoints on the way. Shapes: P prompts, G group
// size, N = P·G completions, T completion positions.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/data/prompt_dataset.h"
#include "grpo/models/causal_lm.h"
#include "grpo/rewards/reward.h"
#include "grpo/rollout/policy.h"
#include "grpo/tokenizers/tokenizer.h"
#include "grpo/train/distributed.h"
#include "grpo/train/evaluate.h"

namespace grpo {

class GroupSampler;
class MasterAdamW;
class ReferenceModel;

class GRPOTrainer {
 public:
  using StepCallback = std::function<void(const nlohmann::json& metrics)>;  // one metrics.jsonl record
  using EvalCallback = std::function<void(const EvalResult& result)>;

  // Takes the parts as built by the caller. `eval` may be null (no evaluation).
  // config.validate() is called; a RewardSet without rewards, or prompts_per_step
  // larger than the training set, is a grpo::Error.
  //
  // Data parallel: with `dist` active (a job of K processes, e.g. from
  // Distributed::from_env under torchrun) every rank builds the same parts
  // from the same config; the weights and optimizer state are then made rank
  // 0's. Each step every rank draws the same P prompts and samples, scores
  // and trains on its own share of the groups; the loss normalizer and the
  // gradients are summed over the ranks, so the update is the one of the
  // whole batch on one process. Rank 0 alone writes metrics, checkpoints and
  // reports (output_dir must be one folder every rank sees, for resuming).
  GRPOTrainer(TrainConfig config, std::shared_ptr<CausalLM> model, std::shared_ptr<const Tokenizer> tokenizer,
              RewardSet rewards, PromptDataset train, std::optional<PromptDataset> eval = std::nullopt,
              std::shared_ptr<Distributed> dist = nullptr);
  // Builds every part from the config (grpo/train/factory.h): tokenizer,
  // model, rewards (config.rewards with the global registry), datasets
  // (data.train required), and the job from torchrun's environment
  // (Distributed::from_env; a single process without it), with model.device
  // cuda meaning cuda:LOCAL_RANK.
  static std::unique_ptr<GRPOTrainer> from_config(const TrainConfig& config);
  ~GRPOTrainer();

  // Called after every step with its metrics, and after every evaluation.
  void on_step_end(StepCallback callback);
  void on_evaluate(EvalCallback callback);

  // The whole run: resumes from the latest checkpoint in output_dir when
  // checkpoint.resume is set; evaluates before the first step (when there is an
  // eval set); runs until grpo.steps; evaluates every eval.every steps and at
  // the end; writes output_dir/metrics.jsonl (one record a step), plot.svg,
  // report.json and checkpoints. Returns the report.
  nlohmann::json train();

  // One GRPO step (sample, score, advantages, updates); returns its metrics
  // record (also appended to metrics.jsonl while train() runs).
  nlohmann::json step();

  // Greedy evaluation on the eval set; grpo::Error when there is none.
  EvalResult evaluate();

  // Writes a checkpoint of the current step to output_dir/checkpoint-<step>
  // and prunes old ones (checkpoint.keep_last). Returns its folder.
  std::string save_checkpoint();
  // Restores everything saved by save_checkpoint from `dir`.
  void load_checkpoint(const std::string& dir);

  int64_t global_step() const { return step_; }
  Policy& policy() { return *policy_; }
  // The weights the optimizer steps, which checkpoints save: float32 master
  // copies when the policy computes in bfloat16 (model.dtype), else the
  // policy's model itself.
  CausalLM& master_model();
  const TrainConfig& config() const { return config_; }
  Distributed& distributed() { return *dist_; }
  const std::shared_ptr<const Tokenizer>& tokenizer() const { return tokenizer_; }

 private:
  // Raises grpo::Error naming `source`, the first offending record and the
  // count when a prompt of `data` and `new_tokens` do not fit the model.
  void check_prompt_lengths(const PromptDataset& data, const std::string& source, int64_t new_tokens,
                            const std::string& new_tokens_key) const;
  struct Batch;    // a RolloutBatch plus its rewards, advantages and log-probs, on the model's device
  struct Sampled;  // every group sampled and scored in one step's rounds, and the ones kept

  // One step's data: sample_rounds, rollout_metrics, select_groups, then fixed_logprobs.
  Batch collect(nlohmann::json& metrics);
  // Sampling and scoring rounds: one, or under dynamic sampling as many as it
  // takes (up to max_sampling_rounds) to find P groups whose rewards differ.
  Sampled sample_rounds();
  // The P kept groups as one batch, moved to the model's device.
  Batch select_groups(Sampled& sampled) const;
  // Rewards, lengths and phase times over every completion sampled (TRL's names).
  void rollout_metrics(const Sampled& sampled, nlohmann::json& metrics) const;
  // The old (μ·mini_batches > 1) and reference (β > 0) log-probs, without grad.
  void fixed_logprobs(Batch& batch, nlohmann::json& metrics);
  // μ passes of mini-batch updates, each accumulated over micro-batches.
  void update(Batch& batch, nlohmann::json& metrics);
  // Every rank's state for trainer_state.json: a collective, called on every rank.
  nlohmann::json trainer_state() const;
  nlohmann::json train_loop();
  nlohmann::json report() const;
  void write_outputs() const;

  TrainConfig config_;
  std::shared_ptr<Distributed> dist_;          // a job of one unless the caller gave another
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::unique_ptr<Policy> policy_;
  std::unique_ptr<ReferenceModel> reference_;  // null when β = 0
  std::unique_ptr<GroupSampler> sampler_;
  std::unique_ptr<MasterAdamW> optimizer_;     // AdamW over the master weights
  RewardSet rewards_;
  PromptDataset train_;
  std::optional<PromptDataset> eval_;
  int64_t step_ = 0;
  int64_t updates_ = 0;                        // optimizer updates so far
  std::vector<StepCallback> step_callbacks_;
  std::vector<EvalCallback> eval_callbacks_;
  std::vector<nlohmann::json> history_;        // per step: step, reward, accuracy (for the plot)
  std::vector<EvalResult> evals_;              // every evaluation so far, the first before training
  double seconds_ = 0;                         // training time so far, across resumes
};

}  // namespace grpo
