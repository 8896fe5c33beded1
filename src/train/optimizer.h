// AdamW as the trainers use it (internal): built from an OptimizerConfig over
// the run's master weights, and one update = set the learning rate, clip the
// gradient norm, step, refresh the model from the masters.
//
// Mixed precision: a bfloat16 (or float16) model runs forward, backward and
// sampling in its own dtype, while AdamW steps float32 master copies of its
// parameters. After each backward, add_grads() moves the model's gradients
// into float32 master gradients, so accumulation over micro-batches is in
// float32; clipping and AdamW's moments are float32 too; after each step the
// model's weights are rounded from the masters. NB: a bfloat16 weight keeps 8
// significant bits, so an update smaller than |w|/512 always rounds to nothing:
// stepped in bfloat16 itself, nearly every update at lr 1e-6 would be lost.
// A float32 or float64 model is its own master: add_grads() and the refresh
// do nothing, and AdamW steps the model's parameters.
#pragma once

#include <torch/optim/adamw.h>

#include <memory>
#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/models/causal_lm.h"
#include "grpo/train/distributed.h"

namespace grpo {

class MasterAdamW {
 public:
  // `model` must outlive this. Its parameters' dtype (the first one's) picks
  // the mode: bfloat16 or float16 get a float32 master copy (a clone of the
  // model), anything else is stepped in place. With `dist` active, step()
  // sums the master gradients over the ranks before clipping (`dist` must
  // outlive this).
  MasterAdamW(CausalLM& model, const OptimizerConfig& o, Distributed* dist = nullptr);
  ~MasterAdamW();

  // The weights AdamW steps: the float32 copy, or the model itself. This is
  // what checkpoints save and exports convert.
  CausalLM& master() { return master_ ? *master_ : model_; }
  // Whether master() is a float32 copy rather than the model.
  bool has_copy() const { return master_ != nullptr; }
  torch::optim::AdamW& adamw() { return *adamw_; }

  // Clears the gradients of the model and of the masters.
  void zero_grad();
  // Adds the model's gradients (from the backward just done) into the float32
  // master gradients and clears the model's; with no copy, does nothing.
  void add_grads();
  // Sets every group's learning rate to `lr`, adds any gradients still on the
  // model (add_grads), sums the master gradients over the ranks (a gradient
  // this rank has none of counts as zeros), clips their global norm to
  // o.max_grad_norm (0 = no clipping), steps AdamW and refreshes the model.
  // Returns the norm before clipping. A non-finite norm raises grpo::Error,
  // prefixed with `where`, before any weight is changed.
  double step(double lr, const std::string& where);
  // Rounds the master weights into the model: after the masters were loaded
  // from a checkpoint. With no copy, does nothing.
  void refresh_model();
  // Makes every rank's masters, model and optimizer state rank 0's.
  void broadcast_state();

 private:
  CausalLM& model_;
  std::shared_ptr<CausalLM> master_;          // null: the model is its own master
  std::vector<torch::Tensor> model_params_;   // in the order of master_params_
  std::vector<torch::Tensor> master_params_;
  OptimizerConfig config_;
  Distributed* dist_ = nullptr;
  std::unique_ptr<torch::optim::AdamW> adamw_;
};

}  // namespace grpo
