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
  // Data parallel: the next backward is the update's last (its last
  // micro-batch), so each bucket of gradients is summed over the ranks as
  // soon as backward has produced all of it, while backward goes on. Without
  // it (a rank with no rows in an update), step() sums them all at once.
  void overlap_next_backward();
  // The share of the last update's gradient buckets whose sum started while
  // backward was still running (0 in a job of one).
  double overlapped_fraction() const { return overlapped_fraction_; }
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
  // Resumes from a checkpoint folder: the master weights from dir/model.pt
  // (the model rounded from them) and AdamW's state from dir/optimizer.pt.
  // grpo::Error naming the file that is missing or unreadable.
  void load_state(const std::string& dir);
  // Makes every rank's masters, model and optimizer state rank 0's.
  void broadcast_state();

 private:
  CausalLM& model_;
  std::shared_ptr<CausalLM> master_;          // null: the model is its own master
  std::vector<torch::Tensor> model_params_;   // in the order of master_params_
  std::vector<torch::Tensor> master_params_;
  OptimizerConfig config_;
  Distributed* dist_ = nullptr;

  // Data parallel: the gradients are summed over the ranks in buckets, in a
  // fixed order the same on every rank (the parameters in reverse, about the
  // order backward produces them), each started once all of it is known.
  struct Bucket {
    std::vector<size_t> params;        // indices into master_params_
    std::vector<int64_t> offsets;      // each one's place in `flat`
    int64_t numel = 0;
    torch::Tensor flat;                // the update's gradients of these parameters, master dtype
    size_t ready = 0;                  // parameters written into `flat`
    Distributed::Pending sum;
  };
  void plan_buckets();
  void arm();                          // allocates the buckets for an update
  void write_param(size_t i, const torch::Tensor* last);  // param i's update gradient into its bucket
  void start_ready_buckets();
  void sum_gradients();                // step(): the rest, wait, gradients back
  std::vector<Bucket> buckets_;
  std::vector<std::pair<size_t, int64_t>> where_;  // param -> (bucket, offset)
  std::vector<bool> written_;
  size_t next_start_ = 0;
  bool armed_ = false;                 // an update's buckets are allocated
  bool overlap_ = false;               // this backward writes the buckets from its hooks
  size_t started_in_backward_ = 0;
  double overlapped_fraction_ = 0;
  std::unique_ptr<torch::optim::AdamW> adamw_;
};

}  // namespace grpo
