// Every option of a training run as plain structs, one per concern, with JSON
// that maps one-to-one onto the fields (the JSON key is the field's name unless
// said). from_json rejects unknown keys and wrong types; validate() checks
// ranges. Both raise grpo::Error naming the key path and what came, e.g.
//   loss.epsilon_high: must be >= 0, got -0.1
// Sizes are stated as what they count: prompts_per_step (P) prompts, group_size
// (G) completions per prompt, so one step samples N = P·G completions.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "grpo/models/transformer.h"
#include "grpo/ops/group_advantages.h"
#include "grpo/ops/grpo_loss.h"
#include "grpo/rollout/sampling.h"

namespace grpo {

// Where the model comes from: a checkpoint folder written by this library (its
// model.json and weights) or a Hugging Face model folder (load_model), or a
// fresh TransformerLM built from `config`.
struct ModelConfig {
  std::string init_from;              // model folder to load weights (and the model config) from; "" = fresh
  TransformerConfig config;           // JSON "config": Hugging Face keys; vocab_size 0 = the tokenizer's
  // "float32" | "float64": weights, gradients and AdamW state in that dtype.
  // "bfloat16": mixed precision: the policy and reference compute and sample
  // in bfloat16, while the optimizer steps float32 master weights with float32
  // gradients and state (what checkpoints save).
  std::string dtype = "float32";
  bool allow_tf32 = false;            // float32 matmuls on CUDA may use TF32 (faster, ~10 mantissa bits); no effect on the CPU
  // Where the policy and reference run: "cpu", "cuda" or "cuda:N". Rewards and
  // advantages are computed on the CPU; each step's batch then moves to the
  // model's device once, where its log-probs and loss are computed.
  std::string device = "cpu";
  // Decode and score every token in a fixed order (CausalLM::set_batch_invariant):
  // the sampler's log-probs then equal the trainer's bit for bit, so
  // grpo.old_logprobs "sampler" is exact. Slower; float32/float64 on the CPU.
  bool batch_invariant = false;
};

// The tokenizer: files on disk, or a CharTokenizer built from a character set,
// or (neither given) the one in model.init_from's folder.
struct TokenizerConfig {
  std::string type = "auto";          // "auto" (by what `path` holds) | "char" | "sentencepiece" | "hf"
  std::string path;                   // a folder (picked as load_tokenizer does), a tokenizer.model,
                                      // a tokenizer.json, or a CharTokenizer JSON file
  std::string characters;             // every character the texts use (UTF-8), with `path` empty
};

// Prompts: JSONL files of objects with a prompt field and whatever rewards read.
struct DataConfig {
  std::string train;                  // JSONL of training prompts (required for train)
  std::string eval;                   // JSONL of held-out prompts; "" = no evaluation
  std::string prompt_key = "prompt";  // the field holding each record's prompt
  std::string template_text = "{prompt}";  // JSON "template": {field} placeholders, {{ }} braces
  bool shuffle = true;                // shuffle training prompts each epoch (seeded by TrainConfig::seed)
  int64_t eval_limit = 0;             // evaluate on the first eval_limit records; 0 = all
  // Instruction models: each templated prompt (GRPO's, and SFT's with
  // sft.template) becomes the user turn of a chat
  // ("" = plain text; "chatml", "llama3", "llama2", or a per-message template
  // with {role} and {content}), after the system prompt when one is given, and
  // ends with the assistant's generation prompt.
  std::string chat_template;
  std::string system_prompt;
};

// Sampling of completions during training (eval always decodes greedily).
struct SamplingConfig {
  int64_t max_new_tokens = 128;       // completion length cap (T)
  double temperature = 1.0;           // > 0 while training
  int64_t top_k = 0;                  // 0 = all
  double top_p = 1.0;                 // 1 = all
  double min_p = 0.0;                 // 0 = none
  bool mask_truncated_completions = false;  // completions without EOS get no loss (DAPO)
  // Tokens (by spelling) that end a completion besides the tokenizer's EOS:
  // "<|im_end|>" for ChatML models, "<s>" for llama2.c models, which end a
  // story by starting the next. Training and evaluation both stop on them.
  std::vector<std::string> stop_tokens;

  GenerationConfig to_generation() const;   // eos/pad/seed left for the sampler to fill
};

// The loss and the advantages: the ops' own option structs, so each default
// is written once (grpo/ops/grpo_loss.h). The JSON keys are flat:
//   "loss": {"loss_type": "dapo", "beta": 0.04, "epsilon_low": 0.2, "epsilon_high": 0.28,
//            "delta": null, "importance_sampling": "token", "log_ratio_clamp": 20,
//            "kl_clamp": 10, "advantage_scale": "group", "advantage_eps": 1e-4}
// Names are parsed when the config is read. The trainer sets the options that
// are not config keys: max_completion_length (sampling.max_new_tokens) and
// normalizer (loss_normalizer, per update).
struct LossConfig {
  GrpoLossOptions policy = GrpoLossOptions::dapo();  // the DAPO recipe: token-level loss, clip-higher
  GroupAdvantageOptions advantages;
};

// AdamW with linear warmup then a cosine, linear or constant schedule, and grad-norm clipping.
struct OptimizerConfig {
  double lr = 1e-5;                   // peak learning rate
  double weight_decay = 0.0;          // AdamW decoupled weight decay
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  int64_t warmup_steps = 0;           // optimizer updates of linear warmup from 0
  std::string schedule = "cosine";    // "cosine" | "constant" | "linear" (after warmup, down to min_lr_ratio · lr)
  double min_lr_ratio = 0.0;          // the schedule's floor, a fraction of lr
  double max_grad_norm = 1.0;         // clip the global grad norm to this; 0 = no clipping

  // The learning rate of optimizer update `update` (0-based) of `total`:
  // lr·(update + 1)/warmup_steps during warmup, then the schedule over
  // p = (update - warmup_steps)/max(1, total - warmup_steps) clamped to [0, 1].
  double lr_at(int64_t update, int64_t total) const;
};

// The GRPO loop's sizes and cadence.
struct GrpoConfig {
  int64_t steps = 100;                // generation steps (each: sample, score, update)
  int64_t prompts_per_step = 8;       // P prompts sampled per step
  int64_t group_size = 8;             // G completions per prompt, >= 2
  int64_t num_iterations = 1;         // μ passes over each generation batch
  int64_t mini_batches = 1;           // optimizer updates per pass; N = P·G must divide evenly
  int64_t micro_batch_size = 0;       // completions per forward/backward (gradient accumulation); 0 = the mini-batch
  bool dynamic_sampling = false;      // drop groups of equal rewards and sample more prompts (DAPO)
  int64_t max_sampling_rounds = 4;    // dynamic sampling: sampling rounds per step before giving up on refilling
  int64_t ref_sync_steps = 0;         // copy the policy into the reference every this many steps; 0 = never
  double ref_sync_alpha = 1.0;        // the mix on sync: ref = alpha·policy + (1 - alpha)·ref
  int64_t logprob_chunk_tokens = 1024;  // completion tokens whose logits exist at once
  // Where the old log-probs (μ·mini_batches > 1) come from: "recompute" (a
  // forward pass over the batch before the updates) or "sampler" (the ones the
  // sampler recorded while decoding: no extra pass; exact with
  // model.batch_invariant, otherwise off by rounding).
  std::string old_logprobs = "recompute";
  // Correction for the sampler's distribution differing from the trainer's
  // (TRL's vllm_importance_sampling_*): the surrogate of each token is weighted
  // by w = π_old / π_sampler (its token's, or its sequence's product), either
  // clamped to [importance_min, importance_max] ("*_truncate", TIS) or set to 0
  // outside it ("*_mask", MIS). "none" | "token_truncate" | "token_mask" |
  // "sequence_truncate" | "sequence_mask". Needs old_logprobs "recompute".
  std::string importance_correction = "none";
  double importance_min = 0.0;
  double importance_max = 3.0;
};

// Cold-start SFT: cross-entropy on prompt → completion pairs, masked to the completion.
struct SftConfig {
  std::string train;                  // JSONL with prompt and completion fields (required for sft)
  std::string prompt_key = "prompt";
  std::string completion_key = "completion";
  std::string template_text = "{prompt}";  // JSON "template", as DataConfig's; then data's chat_template and system_prompt
  int64_t steps = 100;                // optimizer updates
  int64_t batch_size = 32;            // pairs per update
  int64_t micro_batch_size = 0;       // pairs per forward/backward (gradient accumulation, exact); 0 = the batch
  std::string eval;                   // JSONL of held-out pairs: their loss per token is reported; "" = none
  int64_t eval_every = 0;             // evaluate every this many updates; 0 = only before and after training
  int64_t eval_limit = 0;             // evaluate on the first eval_limit pairs; 0 = all
  int64_t save_every = 0;             // updates between resumable checkpoints; 0 = only the final one
  OptimizerConfig optimizer = default_optimizer();  // its own; by default lr 1e-3, 10 warmup updates, cosine

  static OptimizerConfig default_optimizer();
};

// Distillation (grpo distill): SFT on the sft section's pairs with a frozen
// teacher; the loss is α·τ²·KD + (1 − α)·CE (grpo/ops/distill_loss.h).
struct DistillConfig {
  std::string teacher;                // the teacher's folder (checkpoint or Hugging Face), same tokenizer
  double alpha = 0.5;                 // weight of the KD term; 1 − α weighs the cross-entropy on the data
  double temperature = 1.0;           // τ of both distributions in the KD term
  std::string divergence = "forward_kl";  // "forward_kl" | "reverse_kl" | "jsd"
  double beta = 0.5;                  // jsd's mixture weight of the teacher, in (0, 1)
  // The share of updates whose completions the student samples itself from
  // the batch's prompts (on-policy, as GKD's λ); those are KD only (α = 1),
  // since the data has nothing to say about them. 0 = always the data's.
  double on_policy = 0.0;
  int64_t max_new_tokens = 0;         // on-policy completion cap; 0 = sampling.max_new_tokens
};

// Rejection sampling (grpo sample --dataset; the pipeline's rejection_sample
// stage): K completions of every prompt of a dataset, sampled as training
// samples (the sampling section), scored by the rewards; the accepted ones are
// written as SFT pairs. The prompts are read a batch at a time.
struct RejectionConfig {
  std::string prompts;                // JSONL of prompts, as data.train's ("" = data.train)
  int64_t samples_per_prompt = 8;     // K
  int64_t prompts_per_batch = 16;     // prompts sampled at once (K rows each)
  int64_t limit = 0;                  // the first `limit` prompts; 0 = all
  // The minimum score of each named reward an accepted completion reaches,
  // e.g. {"accuracy": 1, "format": 1, "language": 0.95}; every name must be
  // one of the run's rewards.
  nlohmann::json min_rewards = nlohmann::json::object();
  int64_t max_tokens = 0;             // accepted completions have at most this many tokens (EOS included); 0 = any
  bool accept_truncated = false;      // completions that hit max_new_tokens without EOS are rejected unless true
  // "best": each prompt's best accepted completion (highest total reward,
  // then fewest tokens, then first sampled); "all": every accepted one.
  std::string keep = "best";
  bool dedupe = true;                 // a prompt's identical accepted completions are written once
  std::string output;                 // the output folder; "" = output_dir/rejection
};

// Held-out evaluation with greedy decoding.
struct EvalConfig {
  int64_t every = 0;                  // evaluate every this many steps; 0 = only before and after training
  int64_t batch_size = 256;           // prompts decoded at once
  int64_t max_new_tokens = 0;         // 0 = sampling.max_new_tokens
  std::string accuracy_reward = "accuracy";  // the reward whose mean is reported as accuracy ("" = none)
};

struct CheckpointConfig {
  int64_t save_every = 0;             // steps between checkpoints; 0 = only at the end
  int64_t keep_last = 2;              // checkpoints kept in output_dir; >= 1
  bool resume = true;                 // continue from the latest checkpoint in output_dir when there is one
  // At the end of training, also write the policy as a Hugging Face folder
  // (export_pretrained) to output_dir/final in this dtype: "float32",
  // "bfloat16" or "float16"; "" = not.
  std::string save_pretrained;
};

struct LoggingConfig {
  int64_t log_every = 1;              // console progress line every this many steps
  bool console = true;                // false = no progress lines (metrics.jsonl is always written)
  std::string level = "info";         // level: "trace" | "debug" | "info" | "warn" | "error" | "off"
};

// Data parallel (grpo/train/distributed.h): read when the process was started
// by torchrun (RANK and WORLD_SIZE set); a single process ignores it.
struct DistributedConfig {
  std::string backend = "auto";       // "auto" (NCCL when model.device is cuda, else Gloo) | "gloo" | "nccl"
  double timeout_seconds = 1800;      // the rendezvous and every collective; longer fails the job, naming the rank
  double bucket_mb = 25;              // gradients are all-reduced in buckets of about this many MiB
};

// A whole run. JSON: {"seed": 0, "output_dir": "runs/x", "threads": 0, "model": {...},
// "tokenizer": {...}, "data": {...}, "sampling": {...}, "loss": {...},
// "rewards": {RewardSet config}, "optimizer": {...}, "grpo": {...}, "sft": {...},
// "distill": {...}, "rejection": {...}, "eval": {...}, "checkpoint": {...}, "logging": {...}, "distributed": {...}}; every section optional.
struct TrainConfig {
  uint64_t seed = 0;                  // every random choice of the run derives from it
  std::string output_dir = "runs/grpo";  // checkpoints, metrics.jsonl, report.json, plot.svg
  int64_t threads = 0;                // LibTorch intra-op threads; 0 = LibTorch's default
  ModelConfig model;
  TokenizerConfig tokenizer;
  DataConfig data;
  SamplingConfig sampling;
  LossConfig loss;
  nlohmann::json rewards = nlohmann::json::object();  // RewardSet::from_json's config, checked when built
  OptimizerConfig optimizer;
  GrpoConfig grpo;
  SftConfig sft;
  DistillConfig distill;
  RejectionConfig rejection;
  EvalConfig eval;
  CheckpointConfig checkpoint;
  LoggingConfig logging;
  DistributedConfig distributed;

  // Raises grpo::Error naming the key path of the first bad value, including
  // the checks that involve several sections (e.g. N = P·G divisible by
  // mini_batches, delta > 1 + epsilon_high).
  void validate() const;

  // A missing key keeps the field's default. Unknown keys, wrong types and
  // unknown names (loss.loss_type, ...) raise grpo::Error naming the key path;
  // ranges are validate()'s.
  static TrainConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;  // every field, so from_json(to_json()) is the same config
};

// Reads a JSON config file, applies `overrides` in order ("key.path=value", the
// value parsed as JSON when it parses, else taken as a string), parses and
// validates it. Errors start with the path, then the line/column of a JSON
// syntax error, the override, or the key path.
TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Applies one "key.path=value" override to `j` in place; the path's sections
// must exist or be creatable as objects. Raises grpo::Error on a malformed override.
void apply_override(nlohmann::json& j, const std::string& override_text);

}  // namespace grpo
