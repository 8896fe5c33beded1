// grpo::TrainConfig: JSON in and out (every field survives a round trip),
// unknown keys and wrong types named by their key path, the range and
// cross-section rules of validate(), the learning-rate schedule, "key=value"
// overrides and the config-file loader's errors.
#include <grpo/config/config.h>
#include <grpo/error.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using grpo::TrainConfig;
using nlohmann::json;

// The smallest config that validates: the defaults plus a character set.
json minimal() { return json{{"tokenizer", {{"characters", "0123456789+="}}}}; }

// minimal() with `overrides` applied, parsed and validated.
TrainConfig parse(const std::vector<std::string>& overrides = {}) {
  json j = minimal();
  for (const std::string& o : overrides) grpo::apply_override(j, o);
  TrainConfig c = TrainConfig::from_json(j);
  c.validate();
  return c;
}

std::string parse_error(const std::vector<std::string>& overrides) {
  return error_of([&] { parse(overrides); });
}

std::string from_json_error(const json& j) {
  return error_of([&] { TrainConfig::from_json(j); });
}

// A config with every field away from its default (and still valid).
TrainConfig non_default() {
  TrainConfig c;
  c.seed = 18446744073709551615ull;  // the largest uint64
  c.output_dir = "runs/elsewhere";
  c.threads = 3;
  c.model.init_from = "runs/sft/checkpoint-100";
  c.model.config.vocab_size = 0;
  c.model.config.hidden_size = 48;
  c.model.config.intermediate_size = 96;
  c.model.config.num_layers = 3;
  c.model.config.num_heads = 6;
  c.model.config.num_kv_heads = 2;
  c.model.config.head_dim = 12;
  c.model.config.rope_theta = 50000.5;
  c.model.config.rms_norm_eps = 1e-6;
  c.model.config.max_position_embeddings = 300;
  c.model.config.tie_word_embeddings = true;
  c.model.config.attention_bias = true;
  c.model.dtype = "bfloat16";
  c.model.allow_tf32 = true;
  c.model.device = "cuda:1";
  c.tokenizer.type = "sentencepiece";
  c.tokenizer.path = "tok.json";
  c.tokenizer.characters = "ab\xc3\xa9";
  c.data.train = "train.jsonl";
  c.data.eval = "eval.jsonl";
  c.data.prompt_key = "question";
  c.data.template_text = "Q: {question} {{A}}";
  c.data.shuffle = false;
  c.data.eval_limit = 7;
  c.data.chat_template = "chatml";
  c.data.system_prompt = "Be brief.";
  c.sampling.max_new_tokens = 33;
  c.sampling.temperature = 0.7;
  c.sampling.top_k = 5;
  c.sampling.top_p = 0.9;
  c.sampling.min_p = 0.05;
  c.sampling.mask_truncated_completions = true;
  c.sampling.stop_tokens = {"<|im_end|>", "<s>"};
  c.loss.policy.loss_type = grpo::LossType::DrGRPO;
  c.loss.policy.beta = 0.1;
  c.loss.policy.epsilon_low = 0.1;
  c.loss.policy.epsilon_high = 0.3;
  c.loss.policy.delta = 3.5;
  c.loss.policy.importance_sampling = grpo::ImportanceSampling::Sequence;
  c.loss.advantages.scale = grpo::AdvantageScale::None;
  c.loss.advantages.eps = 1e-6;
  c.loss.policy.log_ratio_clamp = 15.0;
  c.loss.policy.kl_clamp = 5.0;
  c.rewards = json{{"accuracy", {{"weight", 2.0}}}};
  c.optimizer.lr = 3e-4;
  c.optimizer.weight_decay = 0.01;
  c.optimizer.beta1 = 0.8;
  c.optimizer.beta2 = 0.95;
  c.optimizer.eps = 1e-7;
  c.optimizer.warmup_steps = 5;
  c.optimizer.schedule = "linear";
  c.optimizer.min_lr_ratio = 0.2;
  c.optimizer.max_grad_norm = 0.5;
  c.grpo.steps = 11;
  c.grpo.prompts_per_step = 3;
  c.grpo.group_size = 4;
  c.grpo.num_iterations = 2;
  c.grpo.mini_batches = 2;
  c.grpo.micro_batch_size = 3;
  c.grpo.dynamic_sampling = true;
  c.grpo.max_sampling_rounds = 6;
  c.grpo.ref_sync_steps = 9;
  c.grpo.ref_sync_alpha = 0.6;
  c.grpo.logprob_chunk_tokens = 256;
  c.grpo.old_logprobs = "sampler";
  c.grpo.importance_min = 0.25;
  c.grpo.importance_max = 4.0;
  c.sft.train = "sft.jsonl";
  c.sft.prompt_key = "p";
  c.sft.completion_key = "c";
  c.sft.template_text = "{p}=";
  c.sft.steps = 12;
  c.sft.batch_size = 4;
  c.sft.optimizer.lr = 2e-3;
  c.sft.optimizer.weight_decay = 0.1;
  c.sft.optimizer.beta1 = 0.85;
  c.sft.optimizer.beta2 = 0.98;
  c.sft.optimizer.eps = 1e-6;
  c.sft.optimizer.warmup_steps = 3;
  c.sft.optimizer.schedule = "constant";
  c.sft.optimizer.min_lr_ratio = 0.3;
  c.sft.optimizer.max_grad_norm = 2.0;
  c.eval.every = 4;
  c.eval.batch_size = 16;
  c.eval.max_new_tokens = 20;
  c.eval.accuracy_reward = "exact";
  c.checkpoint.save_every = 5;
  c.checkpoint.keep_last = 3;
  c.checkpoint.resume = false;
  c.checkpoint.save_pretrained = "bfloat16";
  c.logging.log_every = 2;
  c.logging.console = false;
  c.logging.level = "debug";
  return c;
}

void expect_same_optimizer(const grpo::OptimizerConfig& a, const grpo::OptimizerConfig& b) {
  EXPECT_EQ(a.lr, b.lr);
  EXPECT_EQ(a.weight_decay, b.weight_decay);
  EXPECT_EQ(a.beta1, b.beta1);
  EXPECT_EQ(a.beta2, b.beta2);
  EXPECT_EQ(a.eps, b.eps);
  EXPECT_EQ(a.warmup_steps, b.warmup_steps);
  EXPECT_EQ(a.schedule, b.schedule);
  EXPECT_EQ(a.min_lr_ratio, b.min_lr_ratio);
  EXPECT_EQ(a.max_grad_norm, b.max_grad_norm);
}

// Field by field, so a key that one direction forgets cannot hide.
void expect_same(const TrainConfig& a, const TrainConfig& b) {
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.output_dir, b.output_dir);
  EXPECT_EQ(a.threads, b.threads);
  EXPECT_EQ(a.model.init_from, b.model.init_from);
  EXPECT_EQ(a.model.device, b.model.device);
  EXPECT_EQ(a.data.chat_template, b.data.chat_template);
  EXPECT_EQ(a.data.system_prompt, b.data.system_prompt);
  EXPECT_EQ(a.sampling.stop_tokens, b.sampling.stop_tokens);
  EXPECT_EQ(a.checkpoint.save_pretrained, b.checkpoint.save_pretrained);
  EXPECT_EQ(a.model.config.vocab_size, b.model.config.vocab_size);
  EXPECT_EQ(a.model.config.hidden_size, b.model.config.hidden_size);
  EXPECT_EQ(a.model.config.intermediate_size, b.model.config.intermediate_size);
  EXPECT_EQ(a.model.config.num_layers, b.model.config.num_layers);
  EXPECT_EQ(a.model.config.num_heads, b.model.config.num_heads);
  EXPECT_EQ(a.model.config.num_kv_heads, b.model.config.num_kv_heads);
  EXPECT_EQ(a.model.config.head_dim, b.model.config.head_dim);
  EXPECT_EQ(a.model.config.rope_theta, b.model.config.rope_theta);
  EXPECT_EQ(a.model.config.rms_norm_eps, b.model.config.rms_norm_eps);
  EXPECT_EQ(a.model.config.max_position_embeddings, b.model.config.max_position_embeddings);
  EXPECT_EQ(a.model.config.tie_word_embeddings, b.model.config.tie_word_embeddings);
  EXPECT_EQ(a.model.config.attention_bias, b.model.config.attention_bias);
  EXPECT_EQ(a.model.dtype, b.model.dtype);
  EXPECT_EQ(a.model.allow_tf32, b.model.allow_tf32);
  EXPECT_EQ(a.model.batch_invariant, b.model.batch_invariant);
  EXPECT_EQ(a.tokenizer.type, b.tokenizer.type);
  EXPECT_EQ(a.tokenizer.path, b.tokenizer.path);
  EXPECT_EQ(a.tokenizer.characters, b.tokenizer.characters);
  EXPECT_EQ(a.data.train, b.data.train);
  EXPECT_EQ(a.data.eval, b.data.eval);
  EXPECT_EQ(a.data.prompt_key, b.data.prompt_key);
  EXPECT_EQ(a.data.template_text, b.data.template_text);
  EXPECT_EQ(a.data.shuffle, b.data.shuffle);
  EXPECT_EQ(a.data.eval_limit, b.data.eval_limit);
  EXPECT_EQ(a.sampling.max_new_tokens, b.sampling.max_new_tokens);
  EXPECT_EQ(a.sampling.temperature, b.sampling.temperature);
  EXPECT_EQ(a.sampling.top_k, b.sampling.top_k);
  EXPECT_EQ(a.sampling.top_p, b.sampling.top_p);
  EXPECT_EQ(a.sampling.min_p, b.sampling.min_p);
  EXPECT_EQ(a.sampling.mask_truncated_completions, b.sampling.mask_truncated_completions);
  EXPECT_EQ(a.loss.policy.loss_type, b.loss.policy.loss_type);
  EXPECT_EQ(a.loss.policy.beta, b.loss.policy.beta);
  EXPECT_EQ(a.loss.policy.epsilon_low, b.loss.policy.epsilon_low);
  EXPECT_EQ(a.loss.policy.epsilon_high, b.loss.policy.epsilon_high);
  EXPECT_EQ(a.loss.policy.delta, b.loss.policy.delta);
  EXPECT_EQ(a.loss.policy.importance_sampling, b.loss.policy.importance_sampling);
  EXPECT_EQ(a.loss.advantages.scale, b.loss.advantages.scale);
  EXPECT_EQ(a.loss.advantages.eps, b.loss.advantages.eps);
  EXPECT_EQ(a.loss.policy.log_ratio_clamp, b.loss.policy.log_ratio_clamp);
  EXPECT_EQ(a.loss.policy.kl_clamp, b.loss.policy.kl_clamp);
  EXPECT_EQ(a.rewards, b.rewards);
  expect_same_optimizer(a.optimizer, b.optimizer);
  EXPECT_EQ(a.grpo.steps, b.grpo.steps);
  EXPECT_EQ(a.grpo.prompts_per_step, b.grpo.prompts_per_step);
  EXPECT_EQ(a.grpo.group_size, b.grpo.group_size);
  EXPECT_EQ(a.grpo.num_iterations, b.grpo.num_iterations);
  EXPECT_EQ(a.grpo.mini_batches, b.grpo.mini_batches);
  EXPECT_EQ(a.grpo.micro_batch_size, b.grpo.micro_batch_size);
  EXPECT_EQ(a.grpo.dynamic_sampling, b.grpo.dynamic_sampling);
  EXPECT_EQ(a.grpo.max_sampling_rounds, b.grpo.max_sampling_rounds);
  EXPECT_EQ(a.grpo.ref_sync_steps, b.grpo.ref_sync_steps);
  EXPECT_EQ(a.grpo.ref_sync_alpha, b.grpo.ref_sync_alpha);
  EXPECT_EQ(a.grpo.logprob_chunk_tokens, b.grpo.logprob_chunk_tokens);
  EXPECT_EQ(a.grpo.old_logprobs, b.grpo.old_logprobs);
  EXPECT_EQ(a.grpo.importance_correction, b.grpo.importance_correction);
  EXPECT_EQ(a.grpo.importance_min, b.grpo.importance_min);
  EXPECT_EQ(a.grpo.importance_max, b.grpo.importance_max);
  EXPECT_EQ(a.sft.train, b.sft.train);
  EXPECT_EQ(a.sft.prompt_key, b.sft.prompt_key);
  EXPECT_EQ(a.sft.completion_key, b.sft.completion_key);
  EXPECT_EQ(a.sft.template_text, b.sft.template_text);
  EXPECT_EQ(a.sft.steps, b.sft.steps);
  EXPECT_EQ(a.sft.batch_size, b.sft.batch_size);
  expect_same_optimizer(a.sft.optimizer, b.sft.optimizer);
  EXPECT_EQ(a.eval.every, b.eval.every);
  EXPECT_EQ(a.eval.batch_size, b.eval.batch_size);
  EXPECT_EQ(a.eval.max_new_tokens, b.eval.max_new_tokens);
  EXPECT_EQ(a.eval.accuracy_reward, b.eval.accuracy_reward);
  EXPECT_EQ(a.checkpoint.save_every, b.checkpoint.save_every);
  EXPECT_EQ(a.checkpoint.keep_last, b.checkpoint.keep_last);
  EXPECT_EQ(a.checkpoint.resume, b.checkpoint.resume);
  EXPECT_EQ(a.logging.log_every, b.logging.log_every);
  EXPECT_EQ(a.logging.console, b.logging.console);
  EXPECT_EQ(a.logging.level, b.logging.level);
}

// ---------------------------------------------------------------- JSON in and out

TEST(ConfigDefaults, Validate) {
  TrainConfig c;
  EXPECT_NO_THROW(c.validate());  // the tokenizer, data.train and sft.train are checked where they are used
  EXPECT_NO_THROW(parse());
}

TEST(ConfigJson, EmptyObjectGivesTheDefaults) {
  expect_same(TrainConfig::from_json(json::object()), TrainConfig{});
  const TrainConfig c = TrainConfig::from_json(json::object());
  EXPECT_EQ(c.sft.optimizer.lr, 1e-3);
  EXPECT_FALSE(c.loss.policy.delta.has_value());
}

TEST(ConfigJson, RoundTripKeepsEveryField) {
  const TrainConfig c = non_default();
  ASSERT_NO_THROW(c.validate());
  // Through text too, so the doubles survive printing.
  const TrainConfig back = TrainConfig::from_json(json::parse(c.to_json().dump()));
  expect_same(back, c);
  EXPECT_EQ(back.to_json(), c.to_json());
  // The defaults (num_kv_heads and head_dim 0, delta none) come back as well.
  expect_same(TrainConfig::from_json(TrainConfig{}.to_json()), TrainConfig{});
}

TEST(ConfigJson, KeysAreTheFieldNames) {
  const json j = non_default().to_json();
  EXPECT_EQ(j.at("data").at("template"), "Q: {question} {{A}}");
  EXPECT_FALSE(j.at("data").contains("template_text"));
  EXPECT_EQ(j.at("sft").at("template"), "{p}=");
  EXPECT_EQ(j.at("model").at("config").at("num_hidden_layers"), 3);
  EXPECT_EQ(j.at("model").at("config").at("vocab_size"), 0);
  EXPECT_EQ(j.at("loss").at("delta"), 3.5);
  EXPECT_EQ(j.at("grpo").size(), 15u);
  EXPECT_TRUE(TrainConfig::from_json(json{{"model", {{"batch_invariant", true}}}}).model.batch_invariant);
  EXPECT_EQ(j.at("loss").size(), 10u);
  EXPECT_EQ(j.at("sft").at("optimizer").size(), 9u);
  EXPECT_TRUE(TrainConfig{}.to_json().at("loss").at("delta").is_null());
}

TEST(ConfigJson, MissingKeysKeepTheirDefaults) {
  const TrainConfig c = TrainConfig::from_json(
      json{{"loss", {{"beta", 0}}}, {"sft", {{"optimizer", {{"warmup_steps", 2}}}}}, {"seed", 5}});
  EXPECT_EQ(c.loss.policy.beta, 0.0);
  EXPECT_EQ(c.loss.policy.loss_type, grpo::LossType::DAPO);
  EXPECT_EQ(c.seed, 5u);
  EXPECT_EQ(c.sft.optimizer.warmup_steps, 2);
  // The rest of sft.optimizer is SFT's default, not the GRPO optimizer's.
  EXPECT_EQ(c.sft.optimizer.lr, 1e-3);
  EXPECT_EQ(c.sft.optimizer.min_lr_ratio, 0.1);
}

TEST(ConfigJson, DeltaIsANumberOrNull) {
  EXPECT_FALSE(TrainConfig::from_json(json{{"loss", {{"delta", nullptr}}}}).loss.policy.delta.has_value());
  const TrainConfig c = TrainConfig::from_json(json{{"loss", {{"delta", 2}}}});
  ASSERT_TRUE(c.loss.policy.delta.has_value());
  EXPECT_EQ(*c.loss.policy.delta, 2.0);
  EXPECT_HAS(from_json_error(json{{"loss", {{"delta", "big"}}}}), "loss.delta: expected a number or null, got \"big\"");
}

TEST(ConfigJson, ModelConfigTakesTheTokenizersVocab) {
  const json model = {{"config",
                       {{"vocab_size", 0},
                        {"hidden_size", 32},
                        {"intermediate_size", 64},
                        {"num_hidden_layers", 2},
                        {"num_attention_heads", 4}}}};
  json j = minimal();
  j["model"] = model;
  const TrainConfig c = TrainConfig::from_json(j);
  EXPECT_EQ(c.model.config.vocab_size, 0);
  EXPECT_EQ(c.model.config.hidden_size, 32);
  EXPECT_EQ(c.model.config.num_layers, 2);
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.to_json()["model"]["config"]["vocab_size"], 0);
}

TEST(ConfigJson, UnknownKeysNameTheirPath) {
  std::string m = from_json_error(json{{"seeed", 1}});
  EXPECT_HAS(m, "seeed: unknown key (known: seed, output_dir, threads, model,");
  m = from_json_error(json{{"grpo", {{"group_sizee", 4}}}});
  EXPECT_HAS(m, "grpo.group_sizee: unknown key (known: steps, prompts_per_step, group_size,");
  m = from_json_error(json{{"sft", {{"optimizer", {{"learning_rate", 1}}}}}});
  EXPECT_HAS(m, "sft.optimizer.learning_rate: unknown key (known: lr,");
  m = from_json_error(json{{"data", {{"template_text", "{prompt}"}}}});  // the key is "template"
  EXPECT_HAS(m, "data.template_text: unknown key");
  m = from_json_error(json{{"model", {{"config", {{"num_layers", 2}}}}}});  // the key is num_hidden_layers
  EXPECT_HAS(m, "model.config.num_layers: unknown key");
  EXPECT_HAS(m, "num_hidden_layers");
}

TEST(ConfigJson, WrongTypesNameThePathAndTheValue) {
  EXPECT_HAS(from_json_error(json{{"loss", {{"beta", "x"}}}}), "loss.beta: expected a number, got \"x\"");
  EXPECT_HAS(from_json_error(json{{"grpo", {{"steps", 2.5}}}}), "grpo.steps: expected an integer, got 2.5");
  EXPECT_HAS(from_json_error(json{{"grpo", {{"group_size", "8"}}}}), "grpo.group_size: expected an integer, got \"8\"");
  EXPECT_HAS(from_json_error(json{{"grpo", {{"steps", 9223372036854775808ull}}}}),
             "grpo.steps: expected an integer that fits in int64, got 9223372036854775808");
  EXPECT_HAS(from_json_error(json{{"data", {{"shuffle", "yes"}}}}), "data.shuffle: expected true or false, got \"yes\"");
  EXPECT_HAS(from_json_error(json{{"tokenizer", {{"path", 3}}}}), "tokenizer.path: expected a string, got 3");
  EXPECT_HAS(from_json_error(json{{"seed", -1}}), "seed: expected a non-negative integer, got -1");
  EXPECT_HAS(from_json_error(json{{"loss", 3}}), "loss: expected an object, got 3");
  EXPECT_HAS(from_json_error(json{{"sft", {{"optimizer", nullptr}}}}), "sft.optimizer: expected an object, got null");
  EXPECT_HAS(from_json_error(json{{"rewards", json::array()}}), "rewards: expected an object, got []");
  EXPECT_HAS(from_json_error(json{{"model", {{"config", {{"hidden_size", 2.5}}}}}}), "model.config.hidden_size:");
  EXPECT_HAS(from_json_error(json::array({1, 2})), "expected a JSON object, got [1,2]");
}

// ---------------------------------------------------------------- validate()

TEST(ConfigValidate, RangeRulesNameTheKeyAndTheValue) {
  struct Case {
    std::string override_text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"threads=-1", "threads: must be in [0, 4096] (0 = LibTorch's default), got -1"},
      {"threads=100000", "threads: must be in [0, 4096] (0 = LibTorch's default), got 100000"},
      {"model.dtype=float16", "model.dtype: must be one of float32, bfloat16, float64, got \"float16\""},
      {"model.device=gpu", "model.device: must be \"cpu\", \"cuda\" or \"cuda:N\", got \"gpu\""},
      {"model.device=cuda:x", "model.device: must be \"cpu\", \"cuda\" or \"cuda:N\", got \"cuda:x\""},
      {"checkpoint.save_pretrained=int8", "checkpoint.save_pretrained: must be one of float32, bfloat16, float16, got \"int8\""},
      {"tokenizer.type=bpe", "tokenizer.type: must be one of auto, char, sentencepiece, hf, got \"bpe\""},
      {"data.eval_limit=-2", "data.eval_limit: must be >= 0, got -2"},
      {"sampling.max_new_tokens=0", "sampling.max_new_tokens: must be in [1, 1048576], got 0"},
      {"sampling.max_new_tokens=2000000000", "sampling.max_new_tokens: must be in [1, 1048576], got 2000000000"},
      {"sampling.temperature=0", "sampling.temperature: must be > 0"},
      {"sampling.top_k=-1", "sampling.top_k: must be >= 0, got -1"},
      {"sampling.top_p=0", "sampling.top_p: must be in (0, 1], got 0"},
      {"sampling.top_p=1.5", "sampling.top_p: must be in (0, 1], got 1.5"},
      {"sampling.min_p=1", "sampling.min_p: must be in [0, 1), got 1"},
      {"loss.loss_type=ppo", "loss.loss_type: must be one of grpo, bnpo, dr_grpo, dapo, got \"ppo\""},
      {"loss.importance_sampling=word", "loss.importance_sampling: must be one of token, sequence, got \"word\""},
      {"loss.advantage_scale=max", "loss.advantage_scale: must be one of group, batch, none, got \"max\""},
      {"loss.beta=-1", "loss.beta: must be >= 0, got -1"},
      {"loss.epsilon_low=1", "loss.epsilon_low: must be in [0, 1), got 1"},
      {"loss.epsilon_high=-0.1", "loss.epsilon_high: must be >= 0, got -0.1"},
      {"loss.advantage_eps=0", "loss.advantage_eps: must be > 0, got 0"},
      {"loss.log_ratio_clamp=0", "loss.log_ratio_clamp: must be > 0, got 0"},
      {"loss.kl_clamp=-1", "loss.kl_clamp: must be > 0, got -1"},
      {"optimizer.lr=0", "optimizer.lr: must be > 0, got 0"},
      {"optimizer.weight_decay=-0.5", "optimizer.weight_decay: must be >= 0, got -0.5"},
      {"optimizer.beta1=1", "optimizer.beta1: must be in [0, 1), got 1"},
      {"optimizer.beta2=-0.1", "optimizer.beta2: must be in [0, 1), got -0.1"},
      {"optimizer.eps=0", "optimizer.eps: must be > 0, got 0"},
      {"optimizer.warmup_steps=-1", "optimizer.warmup_steps: must be >= 0, got -1"},
      {"optimizer.schedule=step", "optimizer.schedule: must be one of cosine, constant, linear, got \"step\""},
      {"optimizer.min_lr_ratio=1.5", "optimizer.min_lr_ratio: must be in [0, 1], got 1.5"},
      {"optimizer.max_grad_norm=-1", "optimizer.max_grad_norm: must be >= 0, got -1"},
      {"grpo.steps=-1", "grpo.steps: must be >= 0, got -1"},
      {"grpo.prompts_per_step=0", "grpo.prompts_per_step: must be >= 1, got 0"},
      {"grpo.group_size=1", "grpo.group_size: must be in [2, 65536], got 1"},
      {"grpo.group_size=1000000000", "grpo.group_size: must be in [2, 65536], got 1000000000"},
      {"grpo.prompts_per_step=100000", "grpo.prompts_per_step: must be <= 65536, got 100000"},
      {"grpo.num_iterations=0", "grpo.num_iterations: must be >= 1, got 0"},
      {"grpo.mini_batches=0", "grpo.mini_batches: must be >= 1, got 0"},
      {"grpo.micro_batch_size=-1", "grpo.micro_batch_size: must be >= 0, got -1"},
      {"grpo.max_sampling_rounds=0", "grpo.max_sampling_rounds: must be >= 1, got 0"},
      {"grpo.ref_sync_steps=-3", "grpo.ref_sync_steps: must be >= 0, got -3"},
      {"grpo.ref_sync_alpha=1.5", "grpo.ref_sync_alpha: must be in [0, 1], got 1.5"},
      {"grpo.logprob_chunk_tokens=0", "grpo.logprob_chunk_tokens: must be >= 1, got 0"},
      {"sft.steps=-1", "sft.steps: must be >= 0, got -1"},
      {"sft.batch_size=0", "sft.batch_size: must be >= 1, got 0"},
      {"sft.optimizer.lr=-1", "sft.optimizer.lr: must be > 0, got -1"},
      {"sft.optimizer.schedule=exp", "sft.optimizer.schedule: must be one of cosine, constant, linear, got \"exp\""},
      {"eval.every=-1", "eval.every: must be >= 0, got -1"},
      {"eval.batch_size=0", "eval.batch_size: must be in [1, 65536], got 0"},
      {"eval.max_new_tokens=-1", "eval.max_new_tokens: must be >= 0, got -1"},
      {"checkpoint.save_every=-1", "checkpoint.save_every: must be >= 0, got -1"},
      {"checkpoint.keep_last=0", "checkpoint.keep_last: must be >= 1, got 0"},
      {"logging.log_every=0", "logging.log_every: must be >= 1, got 0"},
      {"logging.level=verbose", "logging.level: must be one of trace, debug, info, warn, error, off, got \"verbose\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.override_text);
    EXPECT_HAS(parse_error({c.override_text}), c.message);
  }
  EXPECT_HAS(parse_error({"rewards=" + std::string(100000, '[') + std::string(100000, ']')}),
            "the value is JSON nested deeper than 512 levels");
  EXPECT_HAS(parse_error({"grpo.prompts_per_step=65536", "grpo.group_size=128"}),
            "grpo.prompts_per_step: must be small enough that N = prompts_per_step * group_size (128) is at most 4194304");
  // The bounds themselves pass.
  EXPECT_NO_THROW(parse({"sampling.top_p=1", "sampling.min_p=0", "loss.epsilon_low=0", "loss.beta=0",
                         "optimizer.min_lr_ratio=1", "grpo.ref_sync_alpha=0", "grpo.group_size=2", "threads=4096",
                         "optimizer.max_grad_norm=0", "eval.max_new_tokens=0", "logging.level=off"}));
}

TEST(ConfigValidate, MiniBatchesMustDivideN) {
  const std::vector<std::string> pg = {"grpo.prompts_per_step=3", "grpo.group_size=4"};  // N = 12
  auto with = [&](const std::string& o) {
    std::vector<std::string> all = pg;
    all.push_back(o);
    return all;
  };
  const std::string m = parse_error(with("grpo.mini_batches=5"));
  EXPECT_HAS(m, "grpo.mini_batches: must be a divisor of N = prompts_per_step * group_size = 12, got 5");
  EXPECT_NO_THROW(parse(with("grpo.mini_batches=4")));
  EXPECT_NO_THROW(parse(with("grpo.mini_batches=12")));
  EXPECT_HAS(parse_error(with("grpo.mini_batches=24")), "grpo.mini_batches:");
}

TEST(ConfigValidate, MicroBatchMustDivideTheMiniBatch) {
  // N = 12 in 2 mini-batches of 6.
  const std::vector<std::string> base = {"grpo.prompts_per_step=3", "grpo.group_size=4", "grpo.mini_batches=2"};
  auto with = [&](const std::string& o) {
    std::vector<std::string> all = base;
    all.push_back(o);
    return all;
  };
  const std::string m = parse_error(with("grpo.micro_batch_size=4"));
  EXPECT_HAS(m, "grpo.micro_batch_size: must be 0 or a divisor of the mini-batch size N / mini_batches = 6, got 4");
  EXPECT_HAS(parse_error(with("grpo.micro_batch_size=12")), "got 12");
  EXPECT_NO_THROW(parse(with("grpo.micro_batch_size=3")));
  EXPECT_NO_THROW(parse(with("grpo.micro_batch_size=6")));
  EXPECT_NO_THROW(parse(with("grpo.micro_batch_size=0")));
}

TEST(ConfigValidate, DeltaMustExceedOnePlusEpsilonHigh) {
  const std::string m = parse_error({"loss.epsilon_high=0.5", "loss.delta=1.5"});
  EXPECT_HAS(m, "loss.delta: must be > 1 + epsilon_high = 1.5");
  EXPECT_HAS(m, "got 1.5");
  EXPECT_HAS(parse_error({"loss.delta=0.5"}), "loss.delta:");
  EXPECT_NO_THROW(parse({"loss.epsilon_high=0.5", "loss.delta=1.6"}));
  EXPECT_NO_THROW(parse({"loss.delta=null"}));
}

TEST(ConfigValidate, ModelConfigErrorsArePrefixed) {
  std::string m = parse_error({"model.config.num_hidden_layers=0"});
  EXPECT_HAS(m, "model.config.num_layers");
  EXPECT_HAS(m, "must be positive, got 0");
  TrainConfig c = parse();
  c.model.config.vocab_size = 0;
  EXPECT_NO_THROW(c.validate());
  c.model.config.vocab_size = -1;
  EXPECT_HAS(error_of([&] { c.validate(); }), "model.config.vocab_size: must be positive, got -1");
  c.model.config.vocab_size = 0;
  c.model.config.num_kv_heads = 5;  // does not divide 32 heads
  EXPECT_HAS(error_of([&] { c.validate(); }), "model.config.num_kv_heads");
}

TEST(ConfigValidate, RewardsMustBeAnObject) {
  TrainConfig c = parse();
  c.rewards = json::array();
  EXPECT_HAS(error_of([&] { c.validate(); }), "rewards: must be a JSON object, got []");
}

// ---------------------------------------------------------------- conversions

TEST(ConfigConvert, LossOptions) {
  // The loss section is the ops' own option structs, its names parsed when read.
  json j = minimal();
  j["loss"] = {{"loss_type", "dr_grpo"}, {"importance_sampling", "sequence"}, {"advantage_scale", "batch"},
               {"beta", 0.5}, {"epsilon_low", 0.1}, {"epsilon_high", 0.3}, {"log_ratio_clamp", 7},
               {"kl_clamp", 3}, {"advantage_eps", 1e-3}};
  grpo::LossConfig l = TrainConfig::from_json(j).loss;
  grpo::GrpoLossOptions o = l.policy;
  EXPECT_EQ(o.loss_type, grpo::LossType::DrGRPO);
  EXPECT_EQ(o.importance_sampling, grpo::ImportanceSampling::Sequence);
  EXPECT_EQ(o.max_completion_length, 0);  // the trainer's to set: sampling.max_new_tokens
  EXPECT_EQ(o.beta, 0.5);
  EXPECT_EQ(o.epsilon_low, 0.1);
  EXPECT_EQ(o.epsilon_high, 0.3);
  EXPECT_EQ(o.log_ratio_clamp, 7.0);
  EXPECT_EQ(o.kl_clamp, 3.0);
  EXPECT_FALSE(o.delta.has_value());
  EXPECT_EQ(o.normalizer, 0.0);  // the trainer's to set
  j["loss"]["delta"] = 2.5;
  o = TrainConfig::from_json(j).loss.policy;
  ASSERT_TRUE(o.delta.has_value());
  EXPECT_EQ(*o.delta, 2.5);
  const grpo::GroupAdvantageOptions a = l.advantages;
  EXPECT_EQ(a.scale, grpo::AdvantageScale::Batch);
  EXPECT_EQ(a.eps, 1e-3);
  // The config starts from the DAPO recipe; the op's own defaults are GRPO's.
  EXPECT_EQ(grpo::LossConfig{}.policy.loss_type, grpo::LossType::DAPO);
  EXPECT_EQ(grpo::LossConfig{}.policy.epsilon_high, 0.28);
  EXPECT_EQ(grpo::GrpoLossOptions{}.loss_type, grpo::LossType::GRPO);
  EXPECT_EQ(grpo::GrpoLossOptions{}.epsilon_high, 0.2);
  EXPECT_HAS(from_json_error(json{{"loss", {{"loss_type", "ppo"}}}}),
             "loss.loss_type: must be one of grpo, bnpo, dr_grpo, dapo, got \"ppo\"");
}

TEST(ConfigConvert, Generation) {
  grpo::SamplingConfig s;
  s.max_new_tokens = 17;
  s.temperature = 0.6;
  s.top_k = 4;
  s.top_p = 0.8;
  s.min_p = 0.1;
  const grpo::GenerationConfig g = s.to_generation();
  EXPECT_EQ(g.max_new_tokens, 17);
  EXPECT_EQ(g.temperature, 0.6);
  EXPECT_EQ(g.top_k, 4);
  EXPECT_EQ(g.top_p, 0.8);
  EXPECT_EQ(g.min_p, 0.1);
  EXPECT_NO_THROW(g.validate());
}

TEST(ConfigConvert, SftDefaultOptimizer) {
  const grpo::OptimizerConfig o = grpo::SftConfig::default_optimizer();
  EXPECT_EQ(o.lr, 1e-3);
  EXPECT_EQ(o.warmup_steps, 10);
  EXPECT_EQ(o.schedule, "cosine");
  EXPECT_EQ(o.min_lr_ratio, 0.1);
  EXPECT_EQ(o.weight_decay, 0.0);
  EXPECT_EQ(o.max_grad_norm, 1.0);
  EXPECT_EQ(grpo::SftConfig{}.optimizer.lr, 1e-3);
}

// ---------------------------------------------------------------- lr_at

TEST(ConfigLr, WarmupThenCosineToTheFloor) {
  grpo::OptimizerConfig o;
  o.lr = 1.0;
  o.warmup_steps = 4;
  o.min_lr_ratio = 0.1;
  o.schedule = "cosine";
  const int64_t total = 14;  // 10 updates after warmup
  EXPECT_DOUBLE_EQ(o.lr_at(0, total), 0.25);
  EXPECT_DOUBLE_EQ(o.lr_at(1, total), 0.5);
  EXPECT_DOUBLE_EQ(o.lr_at(3, total), 1.0);
  EXPECT_DOUBLE_EQ(o.lr_at(4, total), 1.0);                                          // p = 0
  EXPECT_DOUBLE_EQ(o.lr_at(9, total), 0.55);                                         // p = 0.5
  EXPECT_DOUBLE_EQ(o.lr_at(6, total), 0.1 + 0.9 * 0.5 * (1 + std::cos(std::acos(-1.0) * 0.2)));  // p = 0.2
  EXPECT_DOUBLE_EQ(o.lr_at(14, total), 0.1);                                         // p = 1
  EXPECT_DOUBLE_EQ(o.lr_at(100, total), 0.1);                                        // clamped
}

TEST(ConfigLr, LinearAndConstant) {
  grpo::OptimizerConfig o;
  o.lr = 2.0;
  o.schedule = "linear";
  o.min_lr_ratio = 0.0;
  EXPECT_DOUBLE_EQ(o.lr_at(0, 8), 2.0);
  EXPECT_DOUBLE_EQ(o.lr_at(2, 8), 1.5);
  EXPECT_DOUBLE_EQ(o.lr_at(4, 8), 1.0);
  EXPECT_DOUBLE_EQ(o.lr_at(8, 8), 0.0);
  o.min_lr_ratio = 0.5;
  EXPECT_DOUBLE_EQ(o.lr_at(4, 8), 1.5);
  o.schedule = "constant";
  o.warmup_steps = 2;
  EXPECT_DOUBLE_EQ(o.lr_at(0, 8), 1.0);
  EXPECT_DOUBLE_EQ(o.lr_at(2, 8), 2.0);
  EXPECT_DOUBLE_EQ(o.lr_at(7, 8), 2.0);
  o.schedule = "step";
  EXPECT_HAS(error_of([&] { o.lr_at(3, 8); }), "schedule");
}

TEST(ConfigLr, TotalWithinWarmup) {
  grpo::OptimizerConfig o;
  o.lr = 1.0;
  o.warmup_steps = 10;
  o.min_lr_ratio = 0.0;
  // Warmup is linear even when it outlasts the run; after it the span is at least 1.
  EXPECT_DOUBLE_EQ(o.lr_at(4, 5), 0.5);
  EXPECT_DOUBLE_EQ(o.lr_at(10, 5), 1.0);
  EXPECT_DOUBLE_EQ(o.lr_at(11, 5), 0.0);
}

// ---------------------------------------------------------------- overrides

TEST(ConfigOverride, ValuesParseAsJsonElseAsStrings) {
  json j = json::object();
  grpo::apply_override(j, "loss.beta=0.5");
  grpo::apply_override(j, "grpo.steps=7");
  grpo::apply_override(j, "data.shuffle=false");
  grpo::apply_override(j, "loss.delta=null");
  grpo::apply_override(j, "list=[1,2]");
  grpo::apply_override(j, "rewards={\"accuracy\": {\"weight\": 1}}");
  grpo::apply_override(j, "output_dir=runs/x");
  grpo::apply_override(j, "data.eval=\"7\"");
  grpo::apply_override(j, "data.template=a=b");
  grpo::apply_override(j, "data.train=");
  EXPECT_EQ(j["loss"]["beta"], 0.5);
  EXPECT_TRUE(j["grpo"]["steps"].is_number_integer());
  EXPECT_EQ(j["grpo"]["steps"], 7);
  EXPECT_EQ(j["data"]["shuffle"], false);
  EXPECT_TRUE(j["loss"]["delta"].is_null());
  EXPECT_EQ(j["list"], json::array({1, 2}));
  EXPECT_EQ(j["rewards"]["accuracy"]["weight"], 1);
  EXPECT_EQ(j["output_dir"], "runs/x");
  EXPECT_EQ(j["data"]["eval"], "7");  // a JSON string, quotes and all
  EXPECT_EQ(j["data"]["template"], "a=b");  // split at the first '='
  EXPECT_EQ(j["data"]["train"], "");
}

TEST(ConfigOverride, CreatesMissingSectionsAndKeepsTheRest) {
  json j = {{"loss", {{"beta", 0.1}, {"kl_clamp", 4}}}};
  grpo::apply_override(j, "loss.beta=0.2");
  grpo::apply_override(j, "model.config.hidden_size=64");
  EXPECT_EQ(j["loss"]["beta"], 0.2);
  EXPECT_EQ(j["loss"]["kl_clamp"], 4);
  EXPECT_EQ(j["model"]["config"]["hidden_size"], 64);
  json empty;  // null becomes an object
  grpo::apply_override(empty, "a.b=1");
  EXPECT_EQ(empty, json({{"a", {{"b", 1}}}}));
}

TEST(ConfigOverride, ASectionThatIsNotAnObject) {
  json j = {{"loss", 3}};
  const std::string m = error_of([&] { grpo::apply_override(j, "loss.beta.x=1"); });
  EXPECT_HAS(m, "override \"loss.beta.x=1\"");
  EXPECT_HAS(m, "loss is not a section, it holds 3");
  EXPECT_EQ(j, json({{"loss", 3}}));
}

TEST(ConfigOverride, MalformedOverridesAreQuoted) {
  for (const std::string bad : {"novalue", "=3", "a..b=1", ".a=1", "a.=1", ""}) {
    SCOPED_TRACE(bad);
    json j = json::object();
    EXPECT_HAS(error_of([&] { grpo::apply_override(j, bad); }), "override \"" + bad + "\"");
    EXPECT_EQ(j, json::object());
  }
}

// Found by fuzz/fuzz_config: nlohmann's out_of_range escaped as no grpo::Error.
TEST(ConfigOverride, ANumberBeyondDoubleIsAnError) {
  for (const std::string bad : {"grpo.group_size=4e2485958", "loss.beta=-1e400"}) {
    SCOPED_TRACE(bad);
    json j = json::object();
    const std::string m = error_of([&] { grpo::apply_override(j, bad); });
    EXPECT_HAS(m, "override \"" + bad + "\"");
    EXPECT_HAS(m, "is a number beyond the range of a double");
    EXPECT_EQ(j, json::object());
  }
}

// ---------------------------------------------------------------- load_config

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("grpo_config_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  fs::path dir_;
};

TEST_F(ConfigFile, LoadsAndAppliesOverridesInOrder) {
  const std::string path = write("run.json", R"({
  "seed": 3,
  "tokenizer": {"characters": "0123456789"},
  "loss": {"beta": 0.1},
  "grpo": {"prompts_per_step": 2, "group_size": 4}
})");
  TrainConfig c = grpo::load_config(path);
  EXPECT_EQ(c.seed, 3u);
  EXPECT_EQ(c.loss.policy.beta, 0.1);
  EXPECT_EQ(c.grpo.group_size, 4);
  c = grpo::load_config(path, {"loss.beta=0.2", "loss.beta=0.3", "grpo.mini_batches=8", "output_dir=runs/o"});
  EXPECT_EQ(c.loss.policy.beta, 0.3);
  EXPECT_EQ(c.grpo.mini_batches, 8);
  EXPECT_EQ(c.output_dir, "runs/o");
}

TEST_F(ConfigFile, SyntaxErrorNamesLineAndColumn) {
  const std::string path = write("bad.json", "{\n  \"seed\": 3,\n  \"loss\": {\"beta\": }\n}\n");
  const std::string m = error_of([&] { grpo::load_config(path); });
  EXPECT_HAS(m, path + ": line 3, column 20: invalid JSON");
  EXPECT_EQ(m.find("[json.exception"), std::string::npos) << m;
  const std::string trailing = write("trailing.json", "{\"seed\": 1,\n}");
  EXPECT_HAS(error_of([&] { grpo::load_config(trailing); }), "line 2, column 1");
  const std::string empty = write("empty.json", "");
  EXPECT_HAS(error_of([&] { grpo::load_config(empty); }), empty + ": line 1, column 1: invalid JSON");
}

TEST_F(ConfigFile, MissingFileAndDirectory) {
  const std::string missing = (dir_ / "nope.json").string();
  EXPECT_HAS(error_of([&] { grpo::load_config(missing); }), missing + ": no such file");
  EXPECT_HAS(error_of([&] { grpo::load_config(dir_.string()); }), dir_.string() + ": is a directory");
}

TEST_F(ConfigFile, ErrorsNameTheFile) {
  const std::string path = write("run.json", R"({"tokenizer": {"characters": "ab"}, "loss": {"beta": 0.1}})");
  EXPECT_HAS(error_of([&] { grpo::load_config(path, {"loss.beta=-1"}); }),
             path + ": loss.beta: must be >= 0, got -1");
  EXPECT_HAS(error_of([&] { grpo::load_config(path, {"loss.betta=1"}); }), path + ": loss.betta: unknown key");
  const std::string m = error_of([&] { grpo::load_config(path, {"loss.beta=0", "loss.beta.x=1"}); });
  EXPECT_HAS(m, path + ": override \"loss.beta.x=1\"");
  EXPECT_HAS(error_of([&] { grpo::load_config(path, {"novalue"}); }), path + ": override \"novalue\"");
  const std::string not_object = write("list.json", "[1, 2]");
  EXPECT_HAS(error_of([&] { grpo::load_config(not_object); }), not_object + ": ");
}

}  // namespace
