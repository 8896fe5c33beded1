// The ops' choices as plain enums with their names, shared by the public API,
// the config (which parses the names at its JSON edge) and the kernels
// (kernels/*_math.cuh include this header), so each choice has one form from
// the config to the kernel. Plain C++: no torch, no CUDA.
#pragma once

#include <cstdint>

#include "grpo/enum_names.h"

namespace grpo {

// What the centred rewards of a group are divided by.
enum class AdvantageScale : int32_t {
  Group = 0,  // the group's std (GRPO)
  Batch = 1,  // the std of all N rewards
  None = 2,   // nothing: only the group mean is subtracted (Dr. GRPO)
};

// How the per-token losses become one number (docs/ARCHITECTURE.md, "Adding a loss variant").
enum class LossType : int32_t {
  GRPO = 0,    // mean over sequences of each sequence's mean token loss
  BNPO = 1,    // sum of token losses / tokens in this call
  DrGRPO = 2,  // sum of token losses / (sequences · max_completion_length)
  DAPO = 3,    // sum of token losses / tokens in the whole generation batch (normalizer)
};

enum class ImportanceSampling : int32_t {
  Token = 0,     // one ratio per token (GRPO)
  Sequence = 1,  // one ratio per sequence, exp(mean_t log ρ_t) (GSPO)
};

// What distill_loss measures between the teacher's and the student's distributions.
enum class Divergence : int32_t {
  ForwardKL = 0,  // KL(teacher ‖ student)
  ReverseKL = 1,  // KL(student ‖ teacher)
  JSD = 2,        // generalized Jensen-Shannon, mixture weight β
};

// Indices into grpo_loss's stats tensor, in this order.
enum class LossStat : int64_t {
  KlMean = 0,      // mean k3 KL over masked tokens (0 when beta = 0)
  ClipLowFrac,     // fraction of masked tokens with ρ < 1 - epsilon_low and A < 0
  ClipHighFrac,    // fraction of masked tokens with ρ > 1 + epsilon_high and A > 0
  ClipRegionFrac,  // either of the two
  RatioMean,       // mean ρ over masked tokens
  TokenCount,      // masked tokens in this call
  InvalidInputs,   // bad mask values and non-finite inputs seen (0 unless check_inputs is false)
  Count
};

inline constexpr EnumNames<AdvantageScale, 3> kAdvantageScaleNames{
    {{AdvantageScale::Group, "group"}, {AdvantageScale::Batch, "batch"}, {AdvantageScale::None, "none"}}};
inline constexpr EnumNames<LossType, 4> kLossTypeNames{
    {{LossType::GRPO, "grpo"}, {LossType::BNPO, "bnpo"}, {LossType::DrGRPO, "dr_grpo"}, {LossType::DAPO, "dapo"}}};
inline constexpr EnumNames<ImportanceSampling, 2> kImportanceSamplingNames{
    {{ImportanceSampling::Token, "token"}, {ImportanceSampling::Sequence, "sequence"}}};
inline constexpr EnumNames<Divergence, 3> kDivergenceNames{
    {{Divergence::ForwardKL, "forward_kl"}, {Divergence::ReverseKL, "reverse_kl"}, {Divergence::JSD, "jsd"}}};

}  // namespace grpo
