// Distillation (the last stage of the R1 recipe): a student learns from a
// frozen teacher of the same vocabulary, loss α·τ²·KD + (1 − α)·CE per
// completion token (grpo/ops/distill_loss.h: forward KL, reverse KL or
// generalized JSD), on the sft section's pairs (off-policy) and, for a share
// of the updates (distill.on_policy), on the student's own samples of their
// prompts. Everything else (micro-batches, held-out loss, checkpoints and
// resume, data parallel) is SFTTrainer's; folders and metrics are named
// "distill".
#pragma once

#include <memory>

#include "grpo/train/sft_trainer.h"

namespace grpo {

class Distiller : public SFTTrainer {
 public:
  // `teacher` is frozen (no gradient, put in eval mode) and must be on the
  // student's device. Raises grpo::Error when the vocabularies differ (naming
  // both sizes) or either model is null.
  Distiller(TrainConfig config, std::shared_ptr<CausalLM> student, std::shared_ptr<CausalLM> teacher,
            std::shared_ptr<const Tokenizer> tokenizer, PromptDataset pairs,
            std::shared_ptr<Distributed> dist = nullptr);
  // The student as SFTTrainer::from_config builds its model; the teacher from
  // distill.teacher (load_model, in model.dtype on the student's device).
  // Raises grpo::Error when distill.teacher is empty or unreadable, or its
  // tokenizer (when its folder has one) differs from the student's.
  static std::unique_ptr<Distiller> from_config(const TrainConfig& config);
};

}  // namespace grpo
