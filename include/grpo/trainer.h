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

#include "grpo/config.h"
#include "grpo/data.h"
#include "grpo/model.h"
#include "grpo/policy.h"
#include "grpo/reward.h"
#include "grpo/sampler.h"
#include "grpo/tokenizer.h"

namespace torch::optim {
class AdamW;
}

namespace grpo {

class ReferenceModel;

// Held-out results with greedy decoding.
struct EvalResult {
  int64_t step = 0;                       // the training step the policy had reached
  int64_t problems = 0;                   // prompts evaluated
  std::optional<double> accuracy;         // mean of the accuracy reward (EvalConfig::accuracy_reward), if the run has it
  double mean_reward = 0;                 // mean weighted reward
  std::vector<std::string> reward_names;  // (R)
  std::vector<double> reward_means;       // (R)
  double mean_completion_length = 0;      // tokens
  std::vector<nlohmann::json> samples;    // the first few: {"prompt", "completion", "reward"}

  nlohmann::json to_json() const;
};

// The tokenizer a config asks for: a CharTokenizer file, or one built from its
// characters with the default special tokens; with neither, the one saved in
// `checkpoint` (e.g. model.init_from). grpo::Error when there is none.
std::shared_ptr<Tokenizer> make_tokenizer(const TokenizerConfig& config, const std::string& checkpoint = "");
// PromptDataset options from the data section, shuffled with `seed`.
PromptDatasetOptions dataset_options(const DataConfig& data, uint64_t seed);
// The model a config asks for: loaded from model.init_from, or a fresh
// TransformerLM (vocab_size 0 = the tokenizer's), in model.dtype. Seeds
// LibTorch's generator with `seed` before initializing a fresh model.
std::shared_ptr<CausalLM> make_model(const ModelConfig& config, const Tokenizer& tokenizer, uint64_t seed);
// The ids a completion stops on: the tokenizer's EOS, then sampling.stop_tokens
// (grpo::Error naming a spelling the tokenizer does not have as one token).
std::vector<int64_t> stop_ids(const SamplingConfig& sampling, const Tokenizer& tokenizer);
// Sets LibTorch's intra-op threads when threads > 0.
void apply_threads(int64_t threads);

// Greedy completions of every prompt of `data` (in file order, up to `limit`
// prompts; 0 = all), scored with `rewards`, each stopping at any of `eos_ids`
// (empty = the tokenizer's EOS). Runs without grad.
EvalResult evaluate(Policy& policy, const Tokenizer& tokenizer, const PromptDataset& data,
                    const RewardSet& rewards, const EvalConfig& eval, int64_t max_new_tokens, int64_t limit = 0,
                    const std::string& accuracy_reward = "accuracy", const std::vector<int64_t>& eos_ids = {});

class GRPOTrainer {
 public:
  using StepCallback = std::function<void(const nlohmann::json& metrics)>;  // one metrics.jsonl record
  using EvalCallback = std::function<void(const EvalResult& result)>;

  // Takes the parts as built by the caller. `eval` may be null (no evaluation).
  // config.validate() is called; a RewardSet without rewards, or prompts_per_step
  // larger than the training set, is a grpo::Error.
  GRPOTrainer(TrainConfig config, std::shared_ptr<CausalLM> model, std::shared_ptr<const Tokenizer> tokenizer,
              RewardSet rewards, PromptDataset train, std::optional<PromptDataset> eval = std::nullopt);
  // Builds every part from the config: tokenizer, model, rewards (config.rewards
  // with the global registry), datasets (data.train required).
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
  const TrainConfig& config() const { return config_; }
  const std::shared_ptr<const Tokenizer>& tokenizer() const { return tokenizer_; }

 private:
  struct Batch;  // a RolloutBatch plus its rewards, advantages and log-probs

  Batch collect(nlohmann::json& metrics);
  void update(Batch& batch, nlohmann::json& metrics);
  nlohmann::json trainer_state() const;
  nlohmann::json report() const;
  void write_outputs() const;

  TrainConfig config_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::unique_ptr<Policy> policy_;
  std::unique_ptr<ReferenceModel> reference_;  // null when β = 0
  std::unique_ptr<GroupSampler> sampler_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
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
