// Checkpoints: a folder per save, written under a temporary name and renamed
// into place, so a failed or interrupted write never replaces or damages the
// previous one. A checkpoint folder holds
//   model.json        the model's architecture (CausalLM::architecture(), e.g. {"type": "transformer",
//                     "config": {Hugging Face keys}}), "dtype", the one it computes in, and
//                     "tokenizer", what identifies the tokenizer its ids belong to (tokenizer_identity)
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

#include "grpo/error.h"
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

// What identifies a tokenizer's ids: {"vocab_size": V, "vocabulary_hash": 16
// hex digits}, the hash (64-bit FNV-1a) of every id's spelling and whether it
// is special, and of the EOS, PAD and BOS ids. Two tokenizers with the same
// identity give every token the same id.
nlohmann::json tokenizer_identity(const Tokenizer& tokenizer);

// What resuming raises for a checkpoint written by another kind of run (another
// model.dtype or tokenizer): unlike damage, it is not passed over for an older
// checkpoint of the folder, which that run wrote too.
class CheckpointMismatch : public Error {
 public:
  using Error::Error;
};

// Raises CheckpointMismatch, naming `dir` and both sides, when the checkpoint
// in `dir` cannot be resumed by a run of `model` (in its current dtype) with
// `tokenizer`: model.json's "dtype" or "tokenizer" differs. A checkpoint that
// records no tokenizer (written before the record was kept) passes with a
// warning. A model.json that cannot be read is left for the load to report.
void check_resumable(const std::string& dir, CausalLM& model, const Tokenizer& tokenizer);

// Clears from `dir` what a process killed mid-write leaves, when no process
// <pid> is alive (one that is, this process included, may be writing now):
// write_folder_atomic's "<name>.tmp-<pid>" folders (removed) and
// "<name>.old-<pid>" folders (put back as <name> when <name> is missing: the
// kill came between its two renames; else removed), prune_checkpoints'
// "checkpoint-<step>.pruned-<pid>" folders (removed), where <name> is
// "checkpoint-<step>" or one of `names`; and AtomicFile's "<file>.tmp.<pid>"
// files (removed). Logs each, and warns of one that cannot be removed;
// returns those removed.
std::vector<std::string> remove_stale_checkpoint_temporaries(const std::string& dir,
                                                             const std::vector<std::string>& names = {});

// "checkpoint-<step>" folders of a run, oldest first, by step.
std::vector<std::string> list_checkpoints(const std::string& output_dir);
// The newest complete checkpoint folder in output_dir, if any.
std::optional<std::string> latest_checkpoint(const std::string& output_dir);
// The folder name for `step` inside output_dir.
std::string checkpoint_dir(const std::string& output_dir, int64_t step);
// Removes all but the newest `keep_last` checkpoint folders, each renamed to
// "<folder>.pruned-<pid>" first, so that a kill halfway leaves no partial checkpoint.
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
