// The op schemas of the `grpo` namespace in the PyTorch dispatcher, with the
// defaults of their options taken from the C++ option structs, and the names
// of the op options. Kernels are registered next to their code
// (src/ops/<op>.cpp for autograd and the public entry point,
// src/ops/<op>_cpu.cpp and <op>_cuda.cpp for the backends).
#include <torch/library.h>

#include <c10/util/Exception.h>

#include <string>

#include "grpo/ops/distill_loss.h"
#include "grpo/ops/group_advantages.h"
#include "grpo/ops/grpo_loss.h"
#include "json_fields.h"

namespace {

// A float default as the schema parser reads it: 0.2, 0.0001, 20.0 (never "20").
std::string number(double x) {
  std::string s = grpo::json_fields::number(x);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

std::string group_advantages_schema() {
  const grpo::GroupAdvantageOptions d;
  return "group_advantages(Tensor rewards, int group_size, float eps=" + number(d.eps) +
         ", str scale=" + quoted(grpo::to_string(d.scale)) +
         ") -> (Tensor advantages, Tensor group_mean, Tensor group_std)";
}

std::string grpo_loss_schema() {
  const grpo::GrpoLossOptions d;
  return "grpo_loss(Tensor logp, Tensor? old_logp, Tensor? ref_logp, Tensor advantages, Tensor mask,"
         " float epsilon_low=" + number(d.epsilon_low) + ", float epsilon_high=" + number(d.epsilon_high) +
         ", float? delta=" + (d.delta ? number(*d.delta) : std::string("None")) + ", float beta=" + number(d.beta) +
         ", str loss_type=" + quoted(grpo::to_string(d.loss_type)) +
         ", int max_completion_length=" + std::to_string(d.max_completion_length) +
         ", float normalizer=" + number(d.normalizer) +
         ", str importance_sampling=" + quoted(grpo::to_string(d.importance_sampling)) +
         ", float log_ratio_clamp=" + number(d.log_ratio_clamp) + ", float kl_clamp=" + number(d.kl_clamp) +
         ", bool check_inputs=" + (d.check_inputs ? "True" : "False") + ") -> (Tensor loss, Tensor stats)";
}

std::string distill_loss_schema() {
  const grpo::DistillLossOptions d;
  return "distill_loss(Tensor student_hidden, Tensor student_weight, Tensor teacher_hidden, Tensor teacher_weight,"
         " Tensor targets, float alpha=" + number(d.alpha) + ", float temperature=" + number(d.temperature) +
         ", str divergence=" + quoted(grpo::to_string(d.divergence)) + ", float beta=" + number(d.beta) +
         ", float normalizer=" + number(d.normalizer) + ", int chunk_tokens=" + std::to_string(d.chunk_tokens) +
         ") -> (Tensor loss, Tensor stats)";
}

}  // namespace

TORCH_LIBRARY(grpo, m) {
  m.def(group_advantages_schema().c_str());
  m.def(grpo_loss_schema().c_str());
  // The fused forward (loss, statistics, saved gradient and its scale) and the
  // backward that scales the saved gradient; grpo_loss's autograd uses them.
  m.def(
      "_grpo_loss_forward(Tensor logp, Tensor? old_logp, Tensor? ref_logp, Tensor advantages, Tensor mask,"
      " float epsilon_low, float epsilon_high, float? delta, float beta, str loss_type,"
      " int max_completion_length, float normalizer, str importance_sampling, float log_ratio_clamp,"
      " float kl_clamp, bool check_inputs, bool compute_grad)"
      " -> (Tensor loss, Tensor stats, Tensor grad_logp, Tensor grad_scale)");
  m.def("_grpo_loss_backward(Tensor grad_loss, Tensor grad_logp, Tensor grad_scale, ScalarType dtype) -> Tensor");
  m.def("token_logprobs(Tensor hidden, Tensor weight, Tensor targets, float temperature=1.0, int chunk_tokens=1024)"
        " -> Tensor");
  m.def("token_logprobs_and_entropy(Tensor hidden, Tensor weight, Tensor targets, float temperature=1.0,"
        " int chunk_tokens=1024) -> (Tensor logprobs, Tensor entropy)");
  m.def(distill_loss_schema().c_str());
}

namespace grpo {

namespace {

template <typename Enum, size_t K>
Enum parse(const EnumNames<Enum, K>& names, const std::string& name, const char* what) {
  const auto value = enum_from_name(names, name);
  TORCH_CHECK(value.has_value(), what, " must be one of ", enum_names(names), "; got '", name, "'");
  return *value;
}

}  // namespace

std::string to_string(LossType type) { return enum_name(kLossTypeNames, type); }
std::string to_string(ImportanceSampling level) { return enum_name(kImportanceSamplingNames, level); }
std::string to_string(AdvantageScale scale) { return enum_name(kAdvantageScaleNames, scale); }
LossType parse_loss_type(const std::string& name) { return parse(kLossTypeNames, name, "loss_type"); }
ImportanceSampling parse_importance_sampling(const std::string& name) {
  return parse(kImportanceSamplingNames, name, "importance_sampling");
}
std::string to_string(Divergence divergence) { return enum_name(kDivergenceNames, divergence); }
Divergence parse_divergence(const std::string& name) { return parse(kDivergenceNames, name, "divergence"); }
AdvantageScale parse_advantage_scale(const std::string& name) { return parse(kAdvantageScaleNames, name, "scale"); }

}  // namespace grpo
