// Checkpoints: a folder per save, written under a temporary name and renamed
// into place, so a failed or interrupted write never replaces or damages the
// previous one. A checkpoint folder holds
//   model.json        the model's architecture (CausalLM::architecture(), e.g. {"type": "transformer",
//                     "config": {Hugging Face keys}}) and "dtype", the one it computes in
//   model.pt          every parameter and buffer by name (LibTorch archive); in mixed
//                     precision the float32 master weights of the bfloat16 model
//   tokenizer files   what Tokenizer::save_to writes (tokenizer.json, or tokenizer.model
//                     and tokenizer_config.json), when the run's tokenizer can be saved
//   reference.pt      the reference model's weights, when the run has one (β > 0)
//   optimizer.pt      the optimizer state, for resuming
//   trainer_state.json  step, dataset position, RNG state and what else resuming needs
//   config.json       the run's TrainConfig
// Only model.json and model.pt are needed to load the weights (init_from, eval).
#pragma once

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "grpo/models/causal_lm.h"
#include "grpo/tokenizers/tokenizer.h"

namespace torch::optim {
class Optimizer;
}

namespace grpo {

// The CausalLM in `dir`: a checkpoint folder (model.json naming a registered
// architecture, and model.pt), or a Hugging Face model folder (config.json
// with a model_type and safetensors weights; see load_pretrained_model),
// loaded in float32 (a checkpoint: in model.json's dtype, rounded from
// model.pt's float32 masters after a mixed-precision run). Raises
// grpo::Error naming the folder and the file when one is missing or bad, or
// model.json names no registered architecture.
std::shared_ptr<CausalLM> load_model(const std::string& dir);

// What a trainer puts into one checkpoint; null members are left out.
struct CheckpointContents {
  CausalLM* model = nullptr;                    // required
  CausalLM* weights = nullptr;                  // model.pt's tensors when not the model's own: its float32 masters
  const Tokenizer* tokenizer = nullptr;         // saved through Tokenizer::save_to
  CausalLM* reference = nullptr;
  torch::optim::Optimizer* optimizer = nullptr;
  nlohmann::json trainer_state;                 // written as trainer_state.json when not null
  nlohmann::json config;                        // written as config.json when not null
};

// Writes `contents` into `dir` atomically: everything goes to a sibling
// temporary folder first, which is renamed to `dir` once complete (an existing
// `dir` is replaced only then). Raises grpo::Error naming the file that failed;
// the temporary folder is removed and `dir`, if it existed, is untouched.
void write_checkpoint(const std::string& dir, const CheckpointContents& contents);

// "checkpoint-<step>" folders of a run, oldest first, by step.
std::vector<std::string> list_checkpoints(const std::string& output_dir);
// The newest complete checkpoint folder in output_dir, if any.
std::optional<std::string> latest_checkpoint(const std::string& output_dir);
// The folder name for `step` inside output_dir.
std::string checkpoint_dir(const std::string& output_dir, int64_t step);
// Removes all but the newest `keep_last` checkpoint folders.
void prune_checkpoints(const std::string& output_dir, int64_t keep_last);

// Clears the way for a fresh run (one that resumes nothing) in `dir`: the
// entries of `dir` named in `names`, and with `checkpoints` also its
// "checkpoint-<step>" folders (complete or not, their temporary folders too),
// are moved together into `dir`/previous-<n>, the first n free. So a new run
// never prunes, resumes from or appends to an earlier run's files, and nothing
// of that run is deleted. Returns the folder they went to, or nullopt when
// there was nothing to move. Raises grpo::Error when a move fails.
std::optional<std::string> set_aside_previous_run(const std::string& dir, const std::vector<std::string>& names,
                                                  bool checkpoints);

// The trainer_state.json of a checkpoint folder (grpo::Error when missing or malformed).
nlohmann::json read_trainer_state(const std::string& dir);

// LibTorch's global CPU generator state, as JSON (for trainer_state.json), and back.
nlohmann::json cpu_rng_state();
void set_cpu_rng_state(const nlohmann::json& state);

}  // namespace grpo
