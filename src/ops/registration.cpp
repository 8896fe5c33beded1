// The op schemas of the `grpo` namespace in the PyTorch dispatcher, and the
// names of the op options. Kernels are registered next to their code
// (src/ops/<op>.cpp for CPU and autograd, src/ops/<op>_cuda.cpp for CUDA).
#include <torch/library.h>

#include <array>
#include <utility>

#include "grpo/ops.h"

TORCH_LIBRARY(grpo, m) {
  m.def(
      "group_advantages(Tensor rewards, int group_size, float eps=0.0001, str scale=\"group\")"
      " -> (Tensor advantages, Tensor group_mean, Tensor group_std)");
  m.def(
      "grpo_loss(Tensor logp, Tensor? old_logp, Tensor? ref_logp, Tensor advantages, Tensor mask,"
      " float epsilon_low=0.2, float epsilon_high=0.2, float? delta=None, float beta=0.04,"
      " str loss_type=\"grpo\", int max_completion_length=0, float normalizer=0.0,"
      " str importance_sampling=\"token\", float log_ratio_clamp=20.0, float kl_clamp=10.0,"
      " bool check_inputs=True) -> (Tensor loss, Tensor stats)");
  // The fused forward (loss, statistics, saved gradient and its scale) and the
  // backward that scales the saved gradient; grpo_loss's autograd uses them.
  m.def(
      "_grpo_loss_forward(Tensor logp, Tensor? old_logp, Tensor? ref_logp, Tensor advantages, Tensor mask,"
      " float epsilon_low, float epsilon_high, float? delta, float beta, str loss_type,"
      " int max_completion_length, float normalizer, str importance_sampling, float log_ratio_clamp,"
      " float kl_clamp, bool check_inputs, bool compute_grad)"
      " -> (Tensor loss, Tensor stats, Tensor grad_logp, Tensor grad_scale)");
  m.def("_grpo_loss_backward(Tensor grad_loss, Tensor grad_logp, Tensor grad_scale, ScalarType dtype) -> Tensor");
}

namespace grpo {

namespace {

template <typename Enum, size_t K>
using Names = std::array<std::pair<Enum, const char*>, K>;

constexpr Names<LossType, 4> kLossTypes{{{LossType::GRPO, "grpo"},
                                         {LossType::BNPO, "bnpo"},
                                         {LossType::DrGRPO, "dr_grpo"},
                                         {LossType::DAPO, "dapo"}}};
constexpr Names<ImportanceSampling, 2> kLevels{
    {{ImportanceSampling::Token, "token"}, {ImportanceSampling::Sequence, "sequence"}}};
constexpr Names<AdvantageScale, 3> kScales{
    {{AdvantageScale::Group, "group"}, {AdvantageScale::Batch, "batch"}, {AdvantageScale::None, "none"}}};

template <typename Enum, size_t K>
std::string name_of(const Names<Enum, K>& names, Enum value) {
  for (const auto& [v, name] : names) {
    if (v == value) return name;
  }
  return "?";
}

template <typename Enum, size_t K>
Enum parse(const Names<Enum, K>& names, const std::string& name, const char* what) {
  std::string valid;
  for (const auto& [v, n] : names) {
    if (name == n) return v;
    valid += valid.empty() ? n : std::string(", ") + n;
  }
  TORCH_CHECK(false, what, " must be one of ", valid, "; got '", name, "'");
  return names[0].first;  // unreachable
}

}  // namespace

std::string to_string(LossType type) { return name_of(kLossTypes, type); }
std::string to_string(ImportanceSampling level) { return name_of(kLevels, level); }
std::string to_string(AdvantageScale scale) { return name_of(kScales, scale); }
LossType parse_loss_type(const std::string& name) { return parse(kLossTypes, name, "loss_type"); }
ImportanceSampling parse_importance_sampling(const std::string& name) {
  return parse(kLevels, name, "importance_sampling");
}
AdvantageScale parse_advantage_scale(const std::string& name) { return parse(kScales, name, "scale"); }

}  // namespace grpo
