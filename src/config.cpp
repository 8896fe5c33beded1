// TrainConfig's JSON form, its range checks and the config-file loader. Each
// section's keys are listed once (the fields() functions below); from_json and
// to_json both walk those lists, so the two directions cannot disagree.
#include "grpo/config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <utility>

#include "grpo/error.h"

namespace grpo {

namespace {

using nlohmann::json;

constexpr double kPi = 3.14159265358979323846;

// A value as it appears in a message: JSON text, cut short when long.
std::string show(const json& v) {
  std::string s = v.dump();
  constexpr size_t kMax = 80;
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

std::string join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

std::string list(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// ---------------------------------------------------------------- the keys

// Every JSON key of a section and the field it maps to. `v(key, field)` is a
// plain value, `v.section(key, sub)` a nested object.
template <class V>
void fields(V& v, ModelConfig& c) {
  v("init_from", c.init_from);
  v("config", c.config);
  v("dtype", c.dtype);
  v("device", c.device);
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
  v("loss_type", c.loss_type);
  v("beta", c.beta);
  v("epsilon_low", c.epsilon_low);
  v("epsilon_high", c.epsilon_high);
  v("delta", c.delta);
  v("importance_sampling", c.importance_sampling);
  v("advantage_scale", c.advantage_scale);
  v("advantage_eps", c.advantage_eps);
  v("log_ratio_clamp", c.log_ratio_clamp);
  v("kl_clamp", c.kl_clamp);
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
}

template <class V>
void fields(V& v, SftConfig& c) {
  v("train", c.train);
  v("prompt_key", c.prompt_key);
  v("completion_key", c.completion_key);
  v("template", c.template_text);
  v("steps", c.steps);
  v("batch_size", c.batch_size);
  v.section("optimizer", c.optimizer);
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
  v.section("eval", c.eval);
  v.section("checkpoint", c.checkpoint);
  v.section("logging", c.logging);
}

// ---------------------------------------------------------------- reading

[[noreturn]] void type_error(const std::string& path, const std::string& expected, const json& got) {
  throw Error(path + ": expected " + expected + ", got " + show(got));
}

void read(const json& v, const std::string& path, int64_t& out) {
  if (!v.is_number_integer()) type_error(path, "an integer", v);
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    type_error(path, "an integer that fits in int64", v);
  out = v.get<int64_t>();
}

void read(const json& v, const std::string& path, uint64_t& out) {
  if (!v.is_number_integer()) type_error(path, "a non-negative integer", v);
  if (!v.is_number_unsigned() && v.get<int64_t>() < 0) type_error(path, "a non-negative integer", v);
  out = v.get<uint64_t>();
}

void read(const json& v, const std::string& path, double& out) {
  if (!v.is_number()) type_error(path, "a number", v);
  out = v.get<double>();
}

void read(const json& v, const std::string& path, std::optional<double>& out) {
  if (v.is_null()) {
    out.reset();
    return;
  }
  if (!v.is_number()) type_error(path, "a number or null", v);
  out = v.get<double>();
}

void read(const json& v, const std::string& path, bool& out) {
  if (!v.is_boolean()) type_error(path, "true or false", v);
  out = v.get<bool>();
}

void read(const json& v, const std::string& path, std::string& out) {
  if (!v.is_string()) type_error(path, "a string", v);
  out = v.get<std::string>();
}

void read(const json& v, const std::string& path, std::vector<std::string>& out) {
  if (!v.is_array()) type_error(path, "an array of strings", v);
  std::vector<std::string> items;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) type_error(path + "[" + std::to_string(i) + "]", "a string", v[i]);
    items.push_back(v[i].get<std::string>());
  }
  out = std::move(items);
}

// Kept as it is; RewardSet::from_json checks what is inside.
void read(const json& v, const std::string& path, json& out) {
  if (!v.is_object()) type_error(path, "an object", v);
  out = v;
}

// TransformerConfig's own messages ("TransformerConfig.hidden_size: ...",
// "TransformerConfig JSON: key \"x\" ...") restated under `path`.
std::string restate(const std::string& message, const std::string& path) {
  const std::string field = "TransformerConfig.";
  const std::string key = "TransformerConfig JSON: key \"";
  const std::string unknown = "TransformerConfig JSON: unknown key \"";
  auto quoted_key = [&](size_t start, std::string& name) {
    const size_t close = message.find('"', start);
    if (close == std::string::npos) return std::string::npos;
    name = message.substr(start, close - start);
    return close + 1;
  };
  std::string name;
  if (message.rfind(field, 0) == 0) return path + "." + message.substr(field.size());
  if (message.rfind(key, 0) == 0) {
    const size_t rest = quoted_key(key.size(), name);
    if (rest != std::string::npos) return path + "." + name + ":" + message.substr(rest);
  }
  if (message.rfind(unknown, 0) == 0) {
    const size_t rest = quoted_key(unknown.size(), name);
    if (rest != std::string::npos) {
      std::string tail = message.substr(rest);
      // NB: strictness is not the user's to choose here.
      const size_t hint = tail.find("; parse with strict");
      if (hint != std::string::npos) tail = tail.substr(0, hint) + ")";
      return path + "." + name + ": unknown key" + tail;
    }
  }
  return path + ": " + message;
}

void read(const json& v, const std::string& path, TransformerConfig& out) {
  if (!v.is_object()) type_error(path, "an object", v);
  // NB: TransformerConfig::from_json validates, and vocab_size 0 ("the
  // tokenizer's") is not a valid model; parse with a stand-in and put 0 back.
  const auto vocab = v.find("vocab_size");
  const bool tokenizer_vocab = vocab != v.end() && vocab->is_number_integer() && *vocab == 0;
  json j = v;
  if (tokenizer_vocab) j["vocab_size"] = 1;
  try {
    out = TransformerConfig::from_json(j, /*strict=*/true);
  } catch (const Error& e) {
    throw Error(restate(e.what(), path));
  }
  if (tokenizer_vocab) out.vocab_size = 0;
}

// Fills a config struct from one JSON object: a missing key keeps the field's
// value, an unknown key is an error listing the known ones (checked last, once
// fields() has named them all).
class Reader {
 public:
  Reader(const json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j.is_object()) {
      if (path_.empty()) throw Error("the config: expected a JSON object, got " + show(j));
      type_error(path_, "an object", j);
    }
  }

  template <class T>
  void operator()(const char* key, T& field) {
    known_.emplace_back(key);
    const auto it = j_.find(key);
    if (it != j_.end()) read(*it, join(path_, key), field);
  }

  template <class S>
  void section(const char* key, S& sub) {
    known_.emplace_back(key);
    const auto it = j_.find(key);
    if (it == j_.end()) return;
    Reader r(*it, join(path_, key));
    fields(r, sub);
    r.finish();
  }

  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (std::find(known_.begin(), known_.end(), it.key()) == known_.end())
        throw Error(join(path_, it.key()) + ": unknown key (known: " + list(known_) + ")");
    }
  }

 private:
  const json& j_;
  std::string path_;
  std::vector<std::string> known_;
};

// ---------------------------------------------------------------- writing

template <class T>
json value(const T& x) {
  return x;
}

json value(const std::optional<double>& x) { return x ? json(*x) : json(nullptr); }

// TransformerConfig::to_json with 0 ("derive it") kept as null rather than
// resolved, so that reading it back gives the same config.
json value(const TransformerConfig& c) {
  json j = c.to_json();
  if (c.num_kv_heads == 0) j["num_key_value_heads"] = nullptr;
  if (c.head_dim == 0) j["head_dim"] = nullptr;
  return j;
}

class Writer {
 public:
  template <class T>
  void operator()(const char* key, T& field) {
    j_[key] = value(field);
  }

  template <class S>
  void section(const char* key, S& sub) {
    Writer w;
    fields(w, sub);
    j_[key] = std::move(w.j_);
  }

  json take() { return std::move(j_); }

 private:
  json j_ = json::object();
};

// ---------------------------------------------------------------- checking

// The shortest text that reads back as x: 0.1, -1, 1e-08.
std::string number(double x) {
  char buf[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

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

// Reads the whole file; errors name the path.
std::string read_text(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": no such file");
  if (fs::is_directory(path, ec)) throw Error(path + ": is a directory, expected a JSON config file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path + ": read failed");
  return text;
}

// "line L, column C" of the 1-based byte offset a parse_error reports.
std::string position(const std::string& text, size_t byte) {
  const size_t at = std::min(byte == 0 ? 0 : byte - 1, text.size());  // 0-based offset of the bad byte
  const auto before = text.begin() + static_cast<std::ptrdiff_t>(at);
  const size_t line = 1 + static_cast<size_t>(std::count(text.begin(), before, '\n'));
  const size_t newline = at == 0 ? std::string::npos : text.rfind('\n', at - 1);  // ends the previous line
  const size_t column = newline == std::string::npos ? at + 1 : at - newline;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// nlohmann's message without its "[json.exception...] parse error at ...: " lead.
std::string parse_reason(const std::string& what) {
  const size_t lead = what.find("parse error");
  if (lead == std::string::npos) return what;
  const size_t colon = what.find(": ", lead);
  return colon == std::string::npos ? what : what.substr(colon + 2);
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

GrpoLossOptions LossConfig::to_options(int64_t max_completion_length) const {
  GrpoLossOptions o;
  o.epsilon_low = epsilon_low;
  o.epsilon_high = epsilon_high;
  if (delta) o.delta = *delta;
  o.beta = beta;
  o.loss_type = parse_loss_type(loss_type);
  o.max_completion_length = max_completion_length;
  o.importance_sampling = parse_importance_sampling(importance_sampling);
  o.log_ratio_clamp = log_ratio_clamp;
  o.kl_clamp = kl_clamp;
  return o;
}

GroupAdvantageOptions LossConfig::to_advantage_options() const {
  GroupAdvantageOptions o;
  o.eps = advantage_eps;
  o.scale = parse_advantage_scale(advantage_scale);
  return o;
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
  require(threads >= 0, "threads", ">= 0", threads);

  require_one_of("model.dtype", model.dtype, {"float32", "bfloat16", "float64"});
  {
    const std::string& d = model.device;
    const bool cuda_n = d.rfind("cuda:", 0) == 0 && d.size() > 5 &&
                        d.find_first_not_of("0123456789", 5) == std::string::npos;
    if (d != "cpu" && d != "cuda" && !cuda_n) {
      throw Error("model.device: must be \"cpu\", \"cuda\" or \"cuda:N\", got \"" + d + "\"");
    }
  }
  if (!checkpoint.save_pretrained.empty()) {
    require_one_of("checkpoint.save_pretrained", checkpoint.save_pretrained, {"float32", "bfloat16", "float16"});
  }
  {
    // vocab_size 0 is "the tokenizer's": check the rest with a stand-in.
    TransformerConfig c = model.config;
    if (c.vocab_size == 0) c.vocab_size = 1;
    try {
      c.validate();
    } catch (const Error& e) {
      throw Error(restate(e.what(), "model.config"));
    }
  }

  // NB: whether there is a tokenizer to build (path, characters, or the one in
  // model.init_from) is make_tokenizer's to say: a C++ caller may bring its own.
  require_one_of("tokenizer.type", tokenizer.type, {"auto", "char", "sentencepiece", "hf"});

  require(data.eval_limit >= 0, "data.eval_limit", ">= 0", data.eval_limit);

  require(sampling.max_new_tokens >= 1, "sampling.max_new_tokens", ">= 1", sampling.max_new_tokens);
  require(sampling.temperature > 0, "sampling.temperature", "> 0 (training samples)", sampling.temperature);
  require(sampling.top_k >= 0, "sampling.top_k", ">= 0", sampling.top_k);
  require(sampling.top_p > 0 && sampling.top_p <= 1, "sampling.top_p", "in (0, 1]", sampling.top_p);
  require(sampling.min_p >= 0 && sampling.min_p < 1, "sampling.min_p", "in [0, 1)", sampling.min_p);

  require_one_of("loss.loss_type", loss.loss_type,
                 {to_string(LossType::GRPO), to_string(LossType::BNPO), to_string(LossType::DrGRPO),
                  to_string(LossType::DAPO)});
  require_one_of("loss.importance_sampling", loss.importance_sampling,
                 {to_string(ImportanceSampling::Token), to_string(ImportanceSampling::Sequence)});
  require_one_of("loss.advantage_scale", loss.advantage_scale,
                 {to_string(AdvantageScale::Group), to_string(AdvantageScale::Batch),
                  to_string(AdvantageScale::None)});
  require(loss.beta >= 0, "loss.beta", ">= 0", loss.beta);
  require(loss.epsilon_low >= 0 && loss.epsilon_low < 1, "loss.epsilon_low", "in [0, 1)", loss.epsilon_low);
  require(loss.epsilon_high >= 0, "loss.epsilon_high", ">= 0", loss.epsilon_high);
  if (loss.delta) {
    require(*loss.delta > 1 + loss.epsilon_high, "loss.delta",
            "> 1 + epsilon_high = " + number(1 + loss.epsilon_high) + " (or null)", *loss.delta);
  }
  require(loss.advantage_eps > 0, "loss.advantage_eps", "> 0", loss.advantage_eps);
  require(loss.log_ratio_clamp > 0, "loss.log_ratio_clamp", "> 0", loss.log_ratio_clamp);
  require(loss.kl_clamp > 0, "loss.kl_clamp", "> 0", loss.kl_clamp);

  require(rewards.is_object(), "rewards", "a JSON object", rewards);

  validate_optimizer(optimizer, "optimizer");

  require(grpo.steps >= 0, "grpo.steps", ">= 0", grpo.steps);
  require(grpo.prompts_per_step >= 1, "grpo.prompts_per_step", ">= 1", grpo.prompts_per_step);
  require(grpo.group_size >= 2, "grpo.group_size", ">= 2", grpo.group_size);
  require(grpo.prompts_per_step <= std::numeric_limits<int64_t>::max() / grpo.group_size, "grpo.prompts_per_step",
          "small enough that prompts_per_step * group_size fits in int64", grpo.prompts_per_step);
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

  require(sft.steps >= 0, "sft.steps", ">= 0", sft.steps);
  require(sft.batch_size >= 1, "sft.batch_size", ">= 1", sft.batch_size);
  validate_optimizer(sft.optimizer, "sft.optimizer");

  require(eval.every >= 0, "eval.every", ">= 0", eval.every);
  require(eval.batch_size >= 1, "eval.batch_size", ">= 1", eval.batch_size);
  require(eval.max_new_tokens >= 0, "eval.max_new_tokens", ">= 0", eval.max_new_tokens);

  require(checkpoint.save_every >= 0, "checkpoint.save_every", ">= 0", checkpoint.save_every);
  require(checkpoint.keep_last >= 1, "checkpoint.keep_last", ">= 1", checkpoint.keep_last);

  require(logging.log_every >= 1, "logging.log_every", ">= 1", logging.log_every);
  require_one_of("logging.level", logging.level, {"trace", "debug", "info", "warn", "error", "off"});
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  TrainConfig c;
  Reader r(j, "");
  fields(r, c);
  r.finish();
  return c;
}

nlohmann::json TrainConfig::to_json() const {
  TrainConfig c = *this;  // fields() takes its struct by reference; the Writer only reads it
  Writer w;
  fields(w, c);
  return w.take();
}

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
  try {
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text;
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
  const std::string text = read_text(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error(path + ": " + position(text, e.byte) + ": invalid JSON: " + parse_reason(e.what()));
  }
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
