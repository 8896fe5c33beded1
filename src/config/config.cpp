// TrainConfig's JSON form, its range checks and the config-file loader. Each
// section's keys are listed once (the fields() functions below, read and
// written by json_fields.h, as TransformerConfig's are); from_json and
// to_json both walk those lists, so the two directions cannot disagree.
#include "grpo/config/config.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "grpo/error.h"
#include "grpo/files.h"
#include "json_fields.h"
#include "models/transformer_fields.h"

namespace grpo {

namespace json_fields {

// ---------------------------------------------------------------- the keys

// Every JSON key of a section and the field it maps to. `v(key, field)` is a
// plain value, `v.section(key, sub)` a nested object.
template <class V>
void fields(V& v, ModelConfig& c) {
  v("init_from", c.init_from);
  v.section("config", c.config);
  v("dtype", c.dtype);
  v("allow_tf32", c.allow_tf32);
  v("device", c.device);
  v("batch_invariant", c.batch_invariant);
}

template <class V>
void fields(V& v, TokenizerConfig& c) {
  v("type", c.type);
  v("path", c.path);
  v("characters", c.characters);
}

template <class V>
void fields(V& v, DataConfig& c) {
  v("train", c.train);
  v("eval", c.eval);
  v("prompt_key", c.prompt_key);
  v("template", c.template_text);
  v("shuffle", c.shuffle);
  v("eval_limit", c.eval_limit);
  v("chat_template", c.chat_template);
  v("system_prompt", c.system_prompt);
}

template <class V>
void fields(V& v, SamplingConfig& c) {
  v("max_new_tokens", c.max_new_tokens);
  v("temperature", c.temperature);
  v("top_k", c.top_k);
  v("top_p", c.top_p);
  v("min_p", c.min_p);
  v("mask_truncated_completions", c.mask_truncated_completions);
  v("stop_tokens", c.stop_tokens);
}

template <class V>
void fields(V& v, LossConfig& c) {
  v("loss_type", c.policy.loss_type, kLossTypeNames);
  v("beta", c.policy.beta);
  v("epsilon_low", c.policy.epsilon_low);
  v("epsilon_high", c.policy.epsilon_high);
  v("delta", c.policy.delta);
  v("importance_sampling", c.policy.importance_sampling, kImportanceSamplingNames);
  v("advantage_scale", c.advantages.scale, kAdvantageScaleNames);
  v("advantage_eps", c.advantages.eps);
  v("log_ratio_clamp", c.policy.log_ratio_clamp);
  v("kl_clamp", c.policy.kl_clamp);
}

template <class V>
void fields(V& v, OptimizerConfig& c) {
  v("lr", c.lr);
  v("weight_decay", c.weight_decay);
  v("beta1", c.beta1);
  v("beta2", c.beta2);
  v("eps", c.eps);
  v("warmup_steps", c.warmup_steps);
  v("schedule", c.schedule);
  v("min_lr_ratio", c.min_lr_ratio);
  v("max_grad_norm", c.max_grad_norm);
}

template <class V>
void fields(V& v, GrpoConfig& c) {
  v("steps", c.steps);
  v("prompts_per_step", c.prompts_per_step);
  v("group_size", c.group_size);
  v("num_iterations", c.num_iterations);
  v("mini_batches", c.mini_batches);
  v("micro_batch_size", c.micro_batch_size);
  v("dynamic_sampling", c.dynamic_sampling);
  v("max_sampling_rounds", c.max_sampling_rounds);
  v("ref_sync_steps", c.ref_sync_steps);
  v("ref_sync_alpha", c.ref_sync_alpha);
  v("logprob_chunk_tokens", c.logprob_chunk_tokens);
  v("old_logprobs", c.old_logprobs);
  v("importance_correction", c.importance_correction);
  v("importance_min", c.importance_min);
  v("importance_max", c.importance_max);
}

template <class V>
void fields(V& v, SftConfig& c) {
  v("train", c.train);
  v("prompt_key", c.prompt_key);
  v("completion_key", c.completion_key);
  v("template", c.template_text);
  v("steps", c.steps);
  v("batch_size", c.batch_size);
  v("micro_batch_size", c.micro_batch_size);
  v("eval", c.eval);
  v("eval_every", c.eval_every);
  v("eval_limit", c.eval_limit);
  v("save_every", c.save_every);
  v.section("optimizer", c.optimizer);
}

template <class V>
void fields(V& v, DistillConfig& c) {
  v("teacher", c.teacher);
  v("alpha", c.alpha);
  v("temperature", c.temperature);
  v("divergence", c.divergence);
  v("beta", c.beta);
  v("on_policy", c.on_policy);
  v("max_new_tokens", c.max_new_tokens);
}

template <class V>
void fields(V& v, RejectionConfig& c) {
  v("prompts", c.prompts);
  v("samples_per_prompt", c.samples_per_prompt);
  v("prompts_per_batch", c.prompts_per_batch);
  v("limit", c.limit);
  v("min_rewards", c.min_rewards);
  v("max_tokens", c.max_tokens);
  v("accept_truncated", c.accept_truncated);
  v("keep", c.keep);
  v("dedupe", c.dedupe);
  v("output", c.output);
}

template <class V>
void fields(V& v, EvalConfig& c) {
  v("every", c.every);
  v("batch_size", c.batch_size);
  v("max_new_tokens", c.max_new_tokens);
  v("accuracy_reward", c.accuracy_reward);
}

template <class V>
void fields(V& v, CheckpointConfig& c) {
  v("save_every", c.save_every);
  v("keep_last", c.keep_last);
  v("resume", c.resume);
  v("save_pretrained", c.save_pretrained);
}

template <class V>
void fields(V& v, LoggingConfig& c) {
  v("log_every", c.log_every);
  v("console", c.console);
  v("level", c.level);
}

template <class V>
void fields(V& v, DistributedConfig& c) {
  v("backend", c.backend);
  v("timeout_seconds", c.timeout_seconds);
  v("bucket_mb", c.bucket_mb);
}

template <class V>
void fields(V& v, TrainConfig& c) {
  v("seed", c.seed);
  v("output_dir", c.output_dir);
  v("threads", c.threads);
  v.section("model", c.model);
  v.section("tokenizer", c.tokenizer);
  v.section("data", c.data);
  v.section("sampling", c.sampling);
  v.section("loss", c.loss);
  v("rewards", c.rewards);
  v.section("optimizer", c.optimizer);
  v.section("grpo", c.grpo);
  v.section("sft", c.sft);
  v.section("distill", c.distill);
  v.section("rejection", c.rejection);
  v.section("eval", c.eval);
  v.section("checkpoint", c.checkpoint);
  v.section("logging", c.logging);
  v.section("distributed", c.distributed);
}

}  // namespace json_fields

namespace {

using nlohmann::json;
using json_fields::join;
using json_fields::list;
using json_fields::number;
using json_fields::show;

constexpr double kPi = 3.14159265358979323846;

// ---------------------------------------------------------------- checking

std::string shown(double x) { return number(x); }
std::string shown(int64_t x) { return std::to_string(x); }
std::string shown(const std::string& s) { return json(s).dump(); }
std::string shown(const json& j) { return show(j); }

// Every range error reads "<key.path>: must be <rule>, got <value>".
template <class T>
void require(bool ok, const std::string& path, const std::string& rule, const T& got) {
  if (!ok) throw Error(path + ": must be " + rule + ", got " + shown(got));
}

void require_one_of(const std::string& path, const std::string& value, const std::vector<std::string>& names) {
  require(std::find(names.begin(), names.end(), value) != names.end(), path, "one of " + list(names), value);
}

void validate_optimizer(const OptimizerConfig& c, const std::string& path) {
  require(c.lr > 0, path + ".lr", "> 0", c.lr);
  require(c.weight_decay >= 0, path + ".weight_decay", ">= 0", c.weight_decay);
  require(c.beta1 >= 0 && c.beta1 < 1, path + ".beta1", "in [0, 1)", c.beta1);
  require(c.beta2 >= 0 && c.beta2 < 1, path + ".beta2", "in [0, 1)", c.beta2);
  require(c.eps > 0, path + ".eps", "> 0", c.eps);
  require(c.warmup_steps >= 0, path + ".warmup_steps", ">= 0", c.warmup_steps);
  require_one_of(path + ".schedule", c.schedule, {"cosine", "constant", "linear"});
  require(c.min_lr_ratio >= 0 && c.min_lr_ratio <= 1, path + ".min_lr_ratio", "in [0, 1]", c.min_lr_ratio);
  require(c.max_grad_norm >= 0, path + ".max_grad_norm", ">= 0", c.max_grad_norm);
}

}  // namespace

// ---------------------------------------------------------------- conversions

GenerationConfig SamplingConfig::to_generation() const {
  GenerationConfig g;
  g.max_new_tokens = max_new_tokens;
  g.temperature = temperature;
  g.top_k = top_k;
  g.top_p = top_p;
  g.min_p = min_p;
  return g;
}

OptimizerConfig SftConfig::default_optimizer() {
  OptimizerConfig o;
  o.lr = 1e-3;
  o.warmup_steps = 10;
  o.schedule = "cosine";
  o.min_lr_ratio = 0.1;
  o.weight_decay = 0.0;
  o.max_grad_norm = 1.0;
  return o;
}

double OptimizerConfig::lr_at(int64_t update, int64_t total) const {
  if (update < warmup_steps) return lr * static_cast<double>(update + 1) / static_cast<double>(warmup_steps);
  const double span = static_cast<double>(std::max<int64_t>(1, total - warmup_steps));
  const double p = std::clamp(static_cast<double>(update - warmup_steps) / span, 0.0, 1.0);
  const double floor = min_lr_ratio * lr;
  if (schedule == "cosine") return floor + (lr - floor) * 0.5 * (1.0 + std::cos(kPi * p));
  if (schedule == "linear") return lr - (lr - floor) * p;
  if (schedule == "constant") return lr;
  throw Error("optimizer.schedule: must be one of cosine, constant, linear, got \"" + schedule + "\"");
}

// ---------------------------------------------------------------- TrainConfig

void TrainConfig::validate() const {
  // NB: the upper bounds are far beyond any machine or run; past them a value is a typo, not a setting.
  require(threads >= 0 && threads <= 4096, "threads", "in [0, 4096] (0 = LibTorch's default)", threads);

  require_one_of("model.dtype", model.dtype, {"float32", "bfloat16", "float64"});
  {
    const std::string& d = model.device;
    const bool cuda_n = d.rfind("cuda:", 0) == 0 && d.size() > 5 &&
                        d.find_first_not_of("0123456789", 5) == std::string::npos;
    if (d != "cpu" && d != "cuda" && !cuda_n) {
      throw Error("model.device: must be \"cpu\", \"cuda\" or \"cuda:N\", got \"" + d + "\"");
    }
  }
  if (model.batch_invariant && (model.device != "cpu" || model.dtype == "bfloat16")) {
    throw Error("model.batch_invariant: the exact mode runs float32 or float64 models on the CPU, got model.dtype \"" +
                model.dtype + "\" on \"" + model.device + "\"");
  }
  if (!checkpoint.save_pretrained.empty()) {
    require_one_of("checkpoint.save_pretrained", checkpoint.save_pretrained, {"float32", "bfloat16", "float16"});
  }
  {
    // vocab_size 0 is "the tokenizer's": check the rest with a stand-in.
    TransformerConfig c = model.config;
    if (c.vocab_size == 0) c.vocab_size = 1;
    c.validate("model.config");
  }

  // NB: whether there is a tokenizer to build (path, characters, or the one in
  // model.init_from) is make_tokenizer's to say: a C++ caller may bring its own.
  require_one_of("tokenizer.type", tokenizer.type, {"auto", "char", "sentencepiece", "hf"});

  require(data.eval_limit >= 0, "data.eval_limit", ">= 0", data.eval_limit);

  require(sampling.max_new_tokens >= 1 && sampling.max_new_tokens <= (int64_t{1} << 20), "sampling.max_new_tokens",
          "in [1, 1048576]", sampling.max_new_tokens);
  require(sampling.temperature > 0, "sampling.temperature", "> 0 (training samples)", sampling.temperature);
  require(sampling.top_k >= 0, "sampling.top_k", ">= 0", sampling.top_k);
  require(sampling.top_p > 0 && sampling.top_p <= 1, "sampling.top_p", "in (0, 1]", sampling.top_p);
  require(sampling.min_p >= 0 && sampling.min_p < 1, "sampling.min_p", "in [0, 1)", sampling.min_p);

  // NB: loss_type, importance_sampling and advantage_scale are enums, checked when read.
  const GrpoLossOptions& policy = loss.policy;
  require(policy.beta >= 0, "loss.beta", ">= 0", policy.beta);
  require(policy.epsilon_low >= 0 && policy.epsilon_low < 1, "loss.epsilon_low", "in [0, 1)", policy.epsilon_low);
  require(policy.epsilon_high >= 0, "loss.epsilon_high", ">= 0", policy.epsilon_high);
  if (policy.delta) {
    require(*policy.delta > 1 + policy.epsilon_high, "loss.delta",
            "> 1 + epsilon_high = " + number(1 + policy.epsilon_high) + " (or null)", *policy.delta);
  }
  require(loss.advantages.eps > 0, "loss.advantage_eps", "> 0", loss.advantages.eps);
  require(policy.log_ratio_clamp > 0, "loss.log_ratio_clamp", "> 0", policy.log_ratio_clamp);
  require(policy.kl_clamp > 0, "loss.kl_clamp", "> 0", policy.kl_clamp);

  require(rewards.is_object(), "rewards", "a JSON object", rewards);

  validate_optimizer(optimizer, "optimizer");

  require(grpo.steps >= 0, "grpo.steps", ">= 0", grpo.steps);
  require(grpo.prompts_per_step >= 1, "grpo.prompts_per_step", ">= 1", grpo.prompts_per_step);
  require(grpo.group_size >= 2 && grpo.group_size <= 65536, "grpo.group_size", "in [2, 65536]", grpo.group_size);
  require(grpo.prompts_per_step <= 65536, "grpo.prompts_per_step", "<= 65536", grpo.prompts_per_step);
  require(grpo.prompts_per_step * grpo.group_size <= (int64_t{1} << 22), "grpo.prompts_per_step",
          "small enough that N = prompts_per_step * group_size (" + std::to_string(grpo.group_size) +
              ") is at most 4194304 completions a step",
          grpo.prompts_per_step);
  require(grpo.num_iterations >= 1, "grpo.num_iterations", ">= 1", grpo.num_iterations);
  require(grpo.mini_batches >= 1, "grpo.mini_batches", ">= 1", grpo.mini_batches);
  const int64_t N = grpo.prompts_per_step * grpo.group_size;
  require(N % grpo.mini_batches == 0, "grpo.mini_batches",
          "a divisor of N = prompts_per_step * group_size = " + std::to_string(N), grpo.mini_batches);
  const int64_t mini_batch = N / grpo.mini_batches;
  require(grpo.micro_batch_size >= 0, "grpo.micro_batch_size", ">= 0", grpo.micro_batch_size);
  require(grpo.micro_batch_size == 0 || mini_batch % grpo.micro_batch_size == 0, "grpo.micro_batch_size",
          "0 or a divisor of the mini-batch size N / mini_batches = " + std::to_string(mini_batch),
          grpo.micro_batch_size);
  require(grpo.max_sampling_rounds >= 1, "grpo.max_sampling_rounds", ">= 1", grpo.max_sampling_rounds);
  require(grpo.ref_sync_steps >= 0, "grpo.ref_sync_steps", ">= 0", grpo.ref_sync_steps);
  require(grpo.ref_sync_alpha >= 0 && grpo.ref_sync_alpha <= 1, "grpo.ref_sync_alpha", "in [0, 1]",
          grpo.ref_sync_alpha);
  require(grpo.logprob_chunk_tokens >= 1, "grpo.logprob_chunk_tokens", ">= 1", grpo.logprob_chunk_tokens);
  require_one_of("grpo.old_logprobs", grpo.old_logprobs, {"recompute", "sampler"});
  require_one_of("grpo.importance_correction", grpo.importance_correction,
                 {"none", "token_truncate", "token_mask", "sequence_truncate", "sequence_mask"});
  require(std::isfinite(grpo.importance_min) && grpo.importance_min >= 0, "grpo.importance_min", "finite and >= 0",
          grpo.importance_min);
  require(std::isfinite(grpo.importance_max) && grpo.importance_max > grpo.importance_min, "grpo.importance_max",
          "finite and > grpo.importance_min", grpo.importance_max);
  if (grpo.importance_correction != "none" && loss.policy.importance_sampling == ImportanceSampling::Sequence) {
    throw Error("grpo.importance_correction: weighs each token, which the sequence-level ratio (loss.importance_sampling "
                "\"sequence\") cannot take; use \"token\" or no correction");
  }
  if (grpo.importance_correction != "none" && grpo.old_logprobs == "sampler") {
    throw Error("grpo.importance_correction: \"" + grpo.importance_correction +
                "\" weighs by the recomputed old log-probs over the sampler's; with grpo.old_logprobs \"sampler\" "
                "they are the same numbers. Use old_logprobs \"recompute\"");
  }

  require(sft.steps >= 0, "sft.steps", ">= 0", sft.steps);
  require(sft.batch_size >= 1, "sft.batch_size", ">= 1", sft.batch_size);
  require(sft.micro_batch_size >= 0 && sft.micro_batch_size <= sft.batch_size, "sft.micro_batch_size",
          "in [0, sft.batch_size = " + std::to_string(sft.batch_size) + "]", sft.micro_batch_size);
  require(sft.eval_every >= 0, "sft.eval_every", ">= 0", sft.eval_every);
  require(sft.eval_limit >= 0, "sft.eval_limit", ">= 0", sft.eval_limit);
  require(sft.save_every >= 0, "sft.save_every", ">= 0", sft.save_every);
  validate_optimizer(sft.optimizer, "sft.optimizer");

  require(distill.alpha >= 0 && distill.alpha <= 1, "distill.alpha", "in [0, 1]", distill.alpha);
  require(distill.temperature > 0 && distill.temperature <= 100, "distill.temperature", "in (0, 100]",
          distill.temperature);
  require_one_of("distill.divergence", distill.divergence, {"forward_kl", "reverse_kl", "jsd"});
  require(distill.beta > 0 && distill.beta < 1, "distill.beta", "in (0, 1)", distill.beta);
  require(distill.on_policy >= 0 && distill.on_policy <= 1, "distill.on_policy", "in [0, 1]", distill.on_policy);
  require(distill.max_new_tokens >= 0, "distill.max_new_tokens", ">= 0", distill.max_new_tokens);

  require(rejection.samples_per_prompt >= 1 && rejection.samples_per_prompt <= 4096, "rejection.samples_per_prompt",
          "in [1, 4096]", rejection.samples_per_prompt);
  require(rejection.prompts_per_batch >= 1 && rejection.prompts_per_batch <= 65536, "rejection.prompts_per_batch",
          "in [1, 65536]", rejection.prompts_per_batch);
  require(rejection.limit >= 0, "rejection.limit", ">= 0", rejection.limit);
  require(rejection.max_tokens >= 0, "rejection.max_tokens", ">= 0", rejection.max_tokens);
  require_one_of("rejection.keep", rejection.keep, {"best", "all"});
  require(rejection.min_rewards.is_object(), "rejection.min_rewards", "an object of reward name -> minimum score",
          rejection.min_rewards.dump());
  for (const auto& kv : rejection.min_rewards.items()) {
    require(kv.value().is_number() && std::isfinite(kv.value().get<double>()), "rejection.min_rewards." + kv.key(),
            "a finite number", kv.value().dump());
  }

  require(eval.every >= 0, "eval.every", ">= 0", eval.every);
  require(eval.batch_size >= 1 && eval.batch_size <= 65536, "eval.batch_size", "in [1, 65536]", eval.batch_size);
  require(eval.max_new_tokens >= 0, "eval.max_new_tokens", ">= 0", eval.max_new_tokens);

  require(checkpoint.save_every >= 0, "checkpoint.save_every", ">= 0", checkpoint.save_every);
  require(checkpoint.keep_last >= 1, "checkpoint.keep_last", ">= 1", checkpoint.keep_last);

  require(logging.log_every >= 1, "logging.log_every", ">= 1", logging.log_every);
  require_one_of("logging.level", logging.level, {"trace", "debug", "info", "warn", "error", "off"});

  require_one_of("distributed.backend", distributed.backend, {"auto", "gloo", "nccl"});
  require(distributed.timeout_seconds > 0 && distributed.timeout_seconds <= 7 * 24 * 3600.0,
          "distributed.timeout_seconds", "in (0, 604800]", distributed.timeout_seconds);
  require(distributed.bucket_mb > 0 && distributed.bucket_mb <= 4096, "distributed.bucket_mb", "in (0, 4096]",
          distributed.bucket_mb);
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  TrainConfig c;
  json_fields::read_struct(j, "", c);
  return c;
}

nlohmann::json TrainConfig::to_json() const { return json_fields::write_struct(*this); }

// ---------------------------------------------------------------- files and overrides

void apply_override(nlohmann::json& j, const std::string& override_text) {
  const std::string where = "override \"" + override_text + "\"";
  const size_t eq = override_text.find('=');
  if (eq == std::string::npos) throw Error(where + ": expected key.path=value");
  const std::string key = override_text.substr(0, eq);
  const std::string text = override_text.substr(eq + 1);

  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (parts.back().empty())
      throw Error(where + ": the key path must be names separated by single dots, like loss.beta=0");
    if (dot == std::string::npos) break;
    start = dot + 1;
  }

  // A value that parses as JSON is that value (0.5, true, null, [1, 2], "\"s\""); anything else is a string.
  json value;
  if (json_too_deep(text) != std::string::npos) {
    throw Error(where + ": the value is JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  try {
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text;
  } catch (const json::out_of_range&) {
    // NB: a number past double's range (1e400) is this, not a parse error.
    throw Error(where + ": the value " + text + " is a number beyond the range of a double");
  }

  if (j.is_null()) j = json::object();
  if (!j.is_object()) throw Error(where + ": the config is not a JSON object, got " + show(j));
  json* section = &j;
  std::string path;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    path = join(path, parts[i]);
    if (!section->contains(parts[i])) (*section)[parts[i]] = json::object();
    json& next = (*section)[parts[i]];
    if (!next.is_object()) throw Error(where + ": " + path + " is not a section, it holds " + show(next));
    section = &next;
  }
  (*section)[parts.back()] = std::move(value);
}

TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  json j = read_json_file(path, "a JSON config file");
  try {
    for (const std::string& o : overrides) apply_override(j, o);
    TrainConfig c = TrainConfig::from_json(j);
    c.validate();
    return c;
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

}  // namespace grpo
