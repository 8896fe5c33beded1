// AdamW as the trainers use it (internal): built from an OptimizerConfig, and
// one update = set the learning rate, clip the gradient norm, step.
#pragma once

#include <torch/optim/adamw.h>

#include <memory>
#include <string>
#include <vector>

#include "grpo/config/config.h"

namespace grpo {

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& params, const OptimizerConfig& o);

// Sets every group's learning rate to `lr`, clips the global gradient norm to
// o.max_grad_norm (0 = no clipping) and steps. Returns the norm before
// clipping. A non-finite norm raises grpo::Error, prefixed with `where`,
// before anything is changed.
double optimizer_step(torch::optim::AdamW& optimizer, const OptimizerConfig& o, double lr, const std::string& where);

}  // namespace grpo
