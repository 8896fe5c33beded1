// Supervised stages of the R1 recipe: cold-start SFT (cross-entropy on prompt
// → completion pairs, masked to the completion and its EOS) and, with a
// frozen teacher, distillation (grpo/train/distiller.h), on the same loop:
// exact micro-batch accumulation, a held-out loss, resumable checkpoints
// (optimizer state included), the same AdamW schedule and checkpoint format as
// GRPO. Shapes: B pairs a batch, Lp prompt and T completion positions.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/data/prompt_dataset.h"
#include "grpo/rollout/policy.h"
#include "grpo/tokenizers/tokenizer.h"
#include "grpo/train/distributed.h"

namespace grpo {

class MasterAdamW;

class SFTTrainer {
 public:
  // pairs: records with the prompt (rendered by the dataset's template) and a
  // string field sft.completion_key. Raises grpo::Error for a record without
  // that field (naming the record) or sft.batch_size larger than the set.
  // With `dist` active (a data-parallel job, grpo/train/distributed.h) every
  // rank takes its share of each batch; the update is the whole batch's, and
  // rank 0 alone writes the metrics and the checkpoints.
  SFTTrainer(TrainConfig config, std::shared_ptr<CausalLM> model, std::shared_ptr<const Tokenizer> tokenizer,
             PromptDataset pairs, std::shared_ptr<Distributed> dist = nullptr);
  // Builds tokenizer, model and pairs (sft.train, required) from the config
  // (grpo/train/factory.h), and the job from torchrun's environment
  // (Distributed::from_env).
  static std::unique_ptr<SFTTrainer> from_config(const TrainConfig& config);
  virtual ~SFTTrainer();

  // Resumes from the newest checkpoint of this stage when checkpoint.resume
  // (a finished stage is not trained again), runs the remaining of sft.steps
  // updates, appending {"step", "loss", "learning_rate", "grad_norm",
  // "tokens", ...} to output_dir/<stage>_metrics.jsonl, evaluates on sft.eval
  // (before, every sft.eval_every updates, after), checkpoints every
  // sft.save_every updates into output_dir/<stage>_checkpoints, and writes the
  // final model and tokenizer to output_checkpoint() (a checkpoint folder
  // model.init_from can name). Returns the report: {"stage", "steps",
  // "final_loss", "seconds", "checkpoint", "evaluations", and "eval_loss_before"
  // / "eval_loss_after" with an eval set}.
  nlohmann::json train();
  // One update on the next batch, micro-batch by micro-batch; returns its metrics record.
  nlohmann::json step();
  // The held-out loss per completion token on sft.eval (its first
  // sft.eval_limit pairs), without gradient: {"step", "loss", "tokens",
  // "perplexity"}, and "kd" (the divergence per token) with a teacher.
  // Raises grpo::Error when the config names no eval set.
  nlohmann::json evaluate();

  Policy& policy() { return *policy_; }
  Distributed& distributed() { return *dist_; }
  // The weights the optimizer steps, which the checkpoint saves: float32
  // master copies when the policy computes in bfloat16 (model.dtype), else
  // the policy's model itself.
  CausalLM& master_model();
  int64_t global_step() const { return step_; }
  // "sft", or "distill" for a Distiller: the name of its folders and metrics.
  const std::string& stage() const { return stage_; }
  // output_dir/<stage>: where train() writes the final model.
  std::string output_checkpoint() const;
  // output_dir/<stage>_checkpoints: the resumable checkpoint-<step> folders.
  std::string checkpoints_dir() const;

 protected:
  // With a teacher, the loss is distillation's (config.distill); stage names the folders.
  SFTTrainer(TrainConfig config, std::shared_ptr<CausalLM> model, std::shared_ptr<CausalLM> teacher,
             std::shared_ptr<const Tokenizer> tokenizer, PromptDataset pairs, std::shared_ptr<Distributed> dist,
             std::string stage);

 private:
  struct Pair {
    std::vector<int64_t> prompt, completion;  // token ids; the completion ends with EOS unless sampled short
  };
  struct Sums {
    double loss = 0, nll = 0, kd = 0, tokens = 0;
  };
  Pair encode(const PromptRecord& record) const;
  // The student's own completions of the pairs' prompts (on-policy distillation).
  void sample_completions(std::vector<Pair>& pairs, int64_t first_global);
  // Forward (and backward when `backward`) of pairs [begin, end) under a loss normalized by `tokens`.
  Sums run(const std::vector<Pair>& pairs, size_t begin, size_t end, double tokens, bool on_policy, bool backward);
  nlohmann::json train_loop();
  nlohmann::json trainer_state(double last_loss) const;
  void save_checkpoint(const std::string& dir, double last_loss);
  double load_checkpoint(const std::string& dir);
  std::optional<std::string> checkpoint_to_resume() const;
  nlohmann::json report(double last_loss) const;

  TrainConfig config_;
  std::string stage_;
  std::shared_ptr<Distributed> dist_;  // a job of one unless the caller gave another
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::unique_ptr<Policy> policy_;
  std::shared_ptr<CausalLM> teacher_;       // frozen; null for SFT
  std::unique_ptr<MasterAdamW> optimizer_;  // AdamW over the master weights
  PromptDataset pairs_;
  std::optional<PromptDataset> eval_pairs_;
  int64_t step_ = 0;
  double seconds_ = 0;                      // training time across resumes
  std::vector<nlohmann::json> evals_;
};

}  // namespace grpo
