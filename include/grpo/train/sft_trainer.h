// Cold-start SFT (DeepSeek-R1's first stage): cross-entropy on prompt →
// completion pairs, masked to the completion (and its EOS), with the same
// AdamW schedule and checkpoint format as GRPO. Shapes: B pairs a batch,
// Lp prompt and T completion positions.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

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
  // rank 0 alone writes the metrics and the checkpoint.
  SFTTrainer(TrainConfig config, std::shared_ptr<CausalLM> model, std::shared_ptr<const Tokenizer> tokenizer,
             PromptDataset pairs, std::shared_ptr<Distributed> dist = nullptr);
  // Builds tokenizer, model and pairs (sft.train, required) from the config
  // (grpo/train/factory.h), and the job from torchrun's environment
  // (Distributed::from_env).
  static std::unique_ptr<SFTTrainer> from_config(const TrainConfig& config);
  ~SFTTrainer();

  // sft.steps updates; appends {"step", "loss", "learning_rate", "grad_norm",
  // "tokens"} to output_dir/sft_metrics.jsonl, writes the model and tokenizer
  // to output_dir/sft (a checkpoint folder model.init_from can name) and
  // returns {"steps", "final_loss", "seconds", "checkpoint"}.
  nlohmann::json train();
  // One update on the next batch; returns its metrics record.
  nlohmann::json step();

  Policy& policy() { return *policy_; }
  Distributed& distributed() { return *dist_; }
  // The weights the optimizer steps, which the checkpoint saves: float32
  // master copies when the policy computes in bfloat16 (model.dtype), else
  // the policy's model itself.
  CausalLM& master_model();
  int64_t global_step() const { return step_; }
  // The folder train() writes the model to.
  std::string output_checkpoint() const;

 private:
  nlohmann::json train_loop();

  TrainConfig config_;
  std::shared_ptr<Distributed> dist_;  // a job of one unless the caller gave another
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::unique_ptr<Policy> policy_;
  std::unique_ptr<MasterAdamW> optimizer_;  // AdamW over the master weights
  PromptDataset pairs_;
  int64_t step_ = 0;
};

}  // namespace grpo
