// GRPOTrainer: collect (sample, score, advantages, optional dynamic-sampling
// refill, old and reference log-probs), then μ passes of mini-batch updates
// with gradient accumulation over micro-batches. Every random choice derives
// from (config.seed, step), so a resumed run repeats a straight one exactly;
// a group's sampling seed derives from its place in the step, so K
// data-parallel ranks sample what one process would.
// Shapes: P prompts, G group size, N = P·G rows, Lp prompt and T completion positions.
#include "grpo/train/grpo_trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>
#include <string>

#include "grpo/error.h"
#include "grpo/files.h"
#include "grpo/log.h"
#include "grpo/stop.h"
#include "grpo/io/pretrained.h"
#include "grpo/io/weights.h"
#include "grpo/ops/group_advantages.h"
#include "grpo/ops/grpo_loss.h"
#include "grpo/rollout/reference.h"
#include "grpo/rollout/sampler.h"
#include "grpo/train/checkpoint.h"
#include "grpo/train/factory.h"
#include "grpo/train/metrics.h"
#include "random.h"
#include "train/optimizer.h"

namespace grpo {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The columns of a (n, L) mask that hold any token, as (first, count): for
// left-padded prompts from the first used column, for completions up to the last.
std::pair<int64_t, int64_t> used_columns(const torch::Tensor& mask, bool leading) {
  const torch::Tensor used = mask.ne(0).any(0).nonzero();  // (k, 1)
  const int64_t L = mask.size(1);
  if (used.numel() == 0) return leading ? std::make_pair(L - 1, int64_t{1}) : std::make_pair(int64_t{0}, int64_t{1});
  const int64_t first = used[0][0].item<int64_t>(), last = used[-1][0].item<int64_t>();
  return leading ? std::make_pair(first, L - first) : std::make_pair(int64_t{0}, last + 1);
}

// A micro-batch of rows with its padding columns trimmed: what token_logprobs needs.
struct Rows {
  torch::Tensor index;  // (n) rows of the full batch
  torch::Tensor prompt_ids, prompt_mask;          // (n, Lp')
  torch::Tensor completion_ids, completion_mask;  // (n, T'), the first T' completion columns
  int64_t t_len = 0;                              // T'
};

Rows take_rows(const RolloutBatch& b, const torch::Tensor& index) {
  Rows r;
  r.index = index;
  const torch::Tensor pm = b.prompt_mask.index_select(0, index), cm = b.completion_mask.index_select(0, index);
  const auto [p0, pl] = used_columns(pm, /*leading=*/true);
  r.t_len = used_columns(cm, /*leading=*/false).second;
  r.prompt_ids = b.prompt_ids.index_select(0, index).narrow(1, p0, pl);
  r.prompt_mask = pm.narrow(1, p0, pl);
  r.completion_ids = b.completion_ids.index_select(0, index).narrow(1, 0, r.t_len);
  r.completion_mask = cm.narrow(1, 0, r.t_len);
  return r;
}

// (n, T') values back into (n, T) with zeros after T'.
torch::Tensor widen(const torch::Tensor& x, int64_t T) {
  if (x.size(1) == T) return x;
  return torch::constant_pad_nd(x, {0, T - x.size(1)}, 0);
}

// The loss options of one optimizer update made of the rows of `mask` (n, T),
// however many micro-batches it is computed in: the normalizer spans the whole
// update, so the micro-batches' gradients add up to exactly the update's.
// NB: the op's BNPO divides each call by that call's own tokens, so K
// micro-batches would add up K token means; over the whole update BNPO is the
// update's token mean, which is the op's DAPO (the same row weights) with the
// update's token count as its normalizer.
// Data parallel: `mask` is this rank's rows of the update, and the normalizer
// is of every rank's rows: loss_normalizer's count (sequences for GRPO and
// Dr. GRPO, tokens for DAPO, at least 1) taken over the sum of the ranks' counts.
GrpoLossOptions update_loss_options(GrpoLossOptions o, const torch::Tensor& mask, Distributed& dist) {
  if (o.loss_type == LossType::BNPO) o.loss_type = LossType::DAPO;
  if (!dist.active()) {
    o.normalizer = loss_normalizer(o.loss_type, mask);
    return o;
  }
  const bool tokens = o.loss_type == LossType::DAPO;
  const double count = tokens ? mask.sum().item<double>() : static_cast<double>(mask.size(0));
  const double total = dist.all_reduce_sum(count, "the loss normalizer");
  o.normalizer = tokens ? std::max(1.0, total) : total;
  return o;
}

// Right-pads (or left-pads) a (n, L) tensor to L_to columns with `value`.
torch::Tensor pad_to(const torch::Tensor& x, int64_t L_to, int64_t value, bool left) {
  const int64_t extra = L_to - x.size(1);
  if (extra == 0) return x;
  return torch::constant_pad_nd(x, left ? std::vector<int64_t>{extra, 0} : std::vector<int64_t>{0, extra}, value);
}

// The importance weights (n, T) of a micro-batch's tokens for `mode`
// (GrpoConfig::importance_correction, not "none"): w = π_old / π_sampler per
// token, or per sequence (the product over the row's tokens), clamped to
// [lo, hi] ("*_truncate") or set to 0 outside it ("*_mask"); 0 off the mask.
torch::Tensor importance_weights(const torch::Tensor& old_logp, const torch::Tensor& sampler_logp,
                                 const torch::Tensor& mask, const std::string& mode, double lo, double hi) {
  const torch::Tensor m = mask.to(torch::kFloat32);
  const torch::Tensor diff = (old_logp.to(torch::kFloat32) - sampler_logp.to(torch::kFloat32)) * m;
  const bool sequence = mode.rfind("sequence", 0) == 0;
  torch::Tensor w = (sequence ? diff.sum(1, /*keepdim=*/true) : diff).exp();
  w = mode.find("truncate") != std::string::npos ? w.clamp(lo, hi) : w.masked_fill((w < lo).logical_or(w > hi), 0.0);
  return w.expand_as(m) * m;
}

// Sum, count and extremes of values gathered a micro-batch at a time.
struct Summary {
  double sum = 0, count = 0;
  double min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity();
  void add(const torch::Tensor& values) {
    if (values.numel() == 0) return;
    // NB: one read from the device for the three.
    const torch::Tensor v = values.detach().to(torch::kDouble);
    const torch::Tensor s = torch::stack({v.sum(), v.min(), v.max()}).cpu();
    const auto a = s.accessor<double, 1>();
    sum += a[0];
    count += static_cast<double>(values.numel());
    min = std::min(min, a[1]);
    max = std::max(max, a[2]);
  }
};

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

}  // namespace

// ---------------------------------------------------------------- the trainer

struct GRPOTrainer::Batch {
  RolloutBatch rollout;      // N rows (this rank's share); ids and masks on the model's device
  std::vector<int64_t> global_rows;  // (N) each row's row in the step's whole batch of P·G
  torch::Tensor rewards;     // (N) float32, CPU
  torch::Tensor advantages;  // (N) float32, on the model's device
  torch::Tensor groups;      // (N) int64, each row's prompt (rollout.group_index), on the model's device
  torch::Tensor old_logp;    // (N, T) float32, undefined when the policy cannot move before it is used
  torch::Tensor ref_logp;    // (N, T) float32, undefined when β = 0
  // |old_logp - the sampler's logprobs| over the kept tokens, when old_logp was recomputed.
  Summary logp_gap;
};

struct GRPOTrainer::Sampled {
  // One round of sampling: P groups, this rank's share of them sampled and
  // scored here, and what every rank needs of all P (all on the CPU).
  struct Round {
    int64_t first_group = 0;            // this rank's groups: [first_group, first_group + rollout.num_prompts)
    RolloutBatch rollout;               // this rank's groups only (empty when it has none)
    torch::Tensor table;                // (P·G, 3 + R) float64, every rank's rows: total reward,
                                        // completion length, truncated, then each reward function's score
    torch::Tensor rewards, advantages;  // (P·G) float32, all P groups
  };
  std::vector<Round> rounds;
  std::vector<std::pair<size_t, int64_t>> kept;  // (round, group) of the P groups the step trains on
  int64_t zero_std_groups = 0;                   // groups whose rewards were all equal
  double generate_seconds = 0, reward_seconds = 0;
};

GRPOTrainer::GRPOTrainer(TrainConfig config, std::shared_ptr<CausalLM> model,
                         std::shared_ptr<const Tokenizer> tokenizer, RewardSet rewards, PromptDataset train,
                         std::optional<PromptDataset> eval, std::shared_ptr<Distributed> dist)
    : config_(std::move(config)),
      dist_(dist ? std::move(dist) : std::make_shared<Distributed>()),
      tokenizer_(std::move(tokenizer)),
      rewards_(std::move(rewards)),
      train_(std::move(train)),
      eval_(std::move(eval)) {
  config_.validate();
  if (!model) throw Error("GRPOTrainer: the model is null");
  if (!tokenizer_) throw Error("GRPOTrainer: the tokenizer is null");
  if (rewards_.size() == 0) throw Error("GRPOTrainer: rewards: the run has no reward functions");
  check_accuracy_reward(config_.eval.accuracy_reward, rewards_);
  if (config_.grpo.prompts_per_step > train_.size()) {
    throw Error("grpo.prompts_per_step: must be <= the " + std::to_string(train_.size()) +
                " training prompts, got " + std::to_string(config_.grpo.prompts_per_step));
  }
  if (config_.grpo.prompts_per_step < dist_->world_size()) {
    throw Error("grpo.prompts_per_step: must be >= the " + std::to_string(dist_->world_size()) +
                " processes of the job (each samples whole groups), got " +
                std::to_string(config_.grpo.prompts_per_step));
  }
  apply_threads(config_.threads);
  apply_allow_tf32(config_.model.allow_tf32);
  if (config_.model.batch_invariant) model->set_batch_invariant(true);
  policy_ = std::make_unique<Policy>(std::move(model));
  optimizer_ = std::make_unique<MasterAdamW>(policy_->model(), config_.optimizer, dist_.get());
  // NB: every rank starts from rank 0's weights (whatever seeded or loaded them), so the reference is rank 0's too.
  optimizer_->broadcast_state();
  // NB: a copy of the policy as it computes (bfloat16 in mixed precision), not of its float32 masters.
  if (config_.loss.policy.beta > 0) reference_ = std::make_unique<ReferenceModel>(*policy_);

  GroupSamplerConfig sc;
  sc.group_size = config_.grpo.group_size;
  sc.generation = config_.sampling.to_generation();
  sc.generation.eos_ids = stop_ids(config_.sampling, *tokenizer_);
  sc.mask_truncated_completions = config_.sampling.mask_truncated_completions;
  sampler_ = std::make_unique<GroupSampler>(*policy_, tokenizer_, sc);
  // NB: every prompt is measured now: one drawn later would stop the run, and every resume, at the same step.
  check_prompt_lengths(train_, config_.data.train.empty() ? "the training prompts" : config_.data.train,
                       config_.sampling.max_new_tokens, "sampling.max_new_tokens");
  if (eval_) {
    const int64_t T = config_.eval.max_new_tokens > 0 ? config_.eval.max_new_tokens : config_.sampling.max_new_tokens;
    check_prompt_lengths(*eval_, config_.data.eval.empty() ? "the eval prompts" : config_.data.eval, T,
                         config_.eval.max_new_tokens > 0 ? "eval.max_new_tokens" : "sampling.max_new_tokens");
  }
}

void GRPOTrainer::check_prompt_lengths(const PromptDataset& data, const std::string& source, int64_t new_tokens,
                                       const std::string& new_tokens_key) const {
  const int64_t positions = policy_->model().max_positions(), room = positions - new_tokens;
  int64_t over = 0, longest = 0;
  std::string first;
  for (int64_t i = 0; i < data.size(); ++i) {
    const int64_t n = static_cast<int64_t>(tokenizer_->encode_prompt(data.get(i).prompt).size());
    longest = std::max(longest, n);
    if (n > room && over++ == 0) first = data.where(i) + " has " + std::to_string(n) + " tokens";
  }
  if (over == 0) return;
  throw Error(source + ": " + std::to_string(over) + " of " + std::to_string(data.size()) +
              " prompts are too long for the model's " + std::to_string(positions) + " positions with " +
              new_tokens_key + " " + std::to_string(new_tokens) + " (at most " + std::to_string(std::max<int64_t>(room, 0)) +
              " prompt tokens; the longest has " + std::to_string(longest) + "); the first: " + first);
}

GRPOTrainer::~GRPOTrainer() = default;

CausalLM& GRPOTrainer::master_model() { return optimizer_->master(); }

std::unique_ptr<GRPOTrainer> GRPOTrainer::from_config(const TrainConfig& config) {
  config.validate();
  if (config.data.train.empty()) throw Error("data.train: a training JSONL file is required");
  std::shared_ptr<Distributed> dist = Distributed::from_env(config.distributed, config.model.device);
  std::shared_ptr<const Tokenizer> tokenizer = make_tokenizer(config.tokenizer, config.model.init_from);
  ModelConfig model_config = config.model;
  model_config.device = dist->device_for(config.model.device);
  auto model = make_model(model_config, *tokenizer, config.seed);
  RewardSet rewards = RewardSet::from_json(config.rewards);
  const PromptDatasetOptions opt = dataset_options(config.data, config.seed);
  PromptDataset train = PromptDataset::from_jsonl(config.data.train, opt);
  std::optional<PromptDataset> eval;
  if (!config.data.eval.empty()) eval = PromptDataset::from_jsonl(config.data.eval, opt);
  return std::make_unique<GRPOTrainer>(config, std::move(model), std::move(tokenizer), std::move(rewards),
                                       std::move(train), std::move(eval), std::move(dist));
}

void GRPOTrainer::on_step_end(StepCallback callback) { step_callbacks_.push_back(std::move(callback)); }
void GRPOTrainer::on_evaluate(EvalCallback callback) { eval_callbacks_.push_back(std::move(callback)); }

EvalResult GRPOTrainer::evaluate() {
  if (!eval_) throw Error("GRPOTrainer::evaluate: the run has no eval set (data.eval)");
  const int64_t T = config_.eval.max_new_tokens > 0 ? config_.eval.max_new_tokens : config_.sampling.max_new_tokens;
  EvalResult r = grpo::evaluate(*policy_, *tokenizer_, *eval_, rewards_, config_.eval, T, config_.data.eval_limit,
                                config_.eval.accuracy_reward, stop_ids(config_.sampling, *tokenizer_), dist_.get());
  r.step = step_;
  evals_.push_back(r);
  for (auto& cb : eval_callbacks_) cb(r);
  return r;
}

GRPOTrainer::Batch GRPOTrainer::collect(nlohmann::json& m) {
  Sampled sampled = sample_rounds();
  rollout_metrics(sampled, m);
  Batch b = select_groups(sampled);  // NB: last use of `sampled`; it may move the rollout out
  fixed_logprobs(b, m);
  return b;
}

GRPOTrainer::Sampled GRPOTrainer::sample_rounds() {
  const int64_t P = config_.grpo.prompts_per_step, G = config_.grpo.group_size, R = rewards_.size();
  const bool dynamic = config_.grpo.dynamic_sampling;
  const int64_t rounds_max = dynamic ? config_.grpo.max_sampling_rounds : 1;
  const auto [first, end] = dist_->share(P);
  Sampled s;
  std::vector<std::pair<size_t, int64_t>> dropped;  // (round, group) of equal-reward groups
  for (int64_t round = 0; round < rounds_max && static_cast<int64_t>(s.kept.size()) < P; ++round) {
    // NB: every rank draws the same P prompts (the dataset's order is the
    // run's), samples and scores its own groups, then all learn every score.
    auto t0 = Clock::now();
    const std::vector<PromptRecord> prompts = train_.next_batch(P);
    Sampled::Round r;
    r.first_group = first;
    r.table = torch::zeros({P * G, 3 + R}, torch::kFloat64);
    const uint64_t round_seed = derive_seed(config_.seed, step_, 1000 + round);
    if (end > first) {
      std::vector<uint64_t> seeds;
      for (int64_t g = first; g < end; ++g) seeds.push_back(splitmix64(round_seed + static_cast<uint64_t>(g)));
      r.rollout = sampler_->sample({prompts.begin() + first, prompts.begin() + end}, seeds);
    }
    s.generate_seconds += seconds_since(t0);

    t0 = Clock::now();
    if (end > first) {
      const RewardScores scores = rewards_.score(r.rollout.samples());
      auto t = r.table.accessor<double, 2>();
      const auto truncated = r.rollout.truncated.accessor<bool, 1>();
      for (int64_t i = 0; i < r.rollout.size(); ++i) {
        const int64_t row = first * G + i;
        t[row][0] = scores.total(i);
        t[row][1] = static_cast<double>(r.rollout.completion_lengths[static_cast<size_t>(i)]);
        t[row][2] = truncated[i] ? 1.0 : 0.0;
        for (int64_t k = 0; k < R; ++k) t[row][3 + k] = scores.per_function(i, k);
      }
    }
    s.reward_seconds += seconds_since(t0);
    if (dist_->active()) r.table = dist_->all_reduce_sum(r.table, "the rewards of step " + std::to_string(step_ + 1));
    // NB: the same float32 rewards one process would have, so the advantages (batch std too) are the same.
    r.rewards = r.table.select(1, 0).to(torch::kFloat32);
    const GroupAdvantages adv = group_advantages(r.rewards, G, config_.loss.advantages);
    r.advantages = adv.advantages;

    const auto stds = adv.group_std.accessor<float, 1>();
    for (int64_t g = 0; g < P; ++g) {
      const bool zero_std = stds[g] == 0;
      s.zero_std_groups += zero_std;
      (dynamic && zero_std ? dropped : s.kept).emplace_back(s.rounds.size(), g);
    }
    s.rounds.push_back(std::move(r));
  }
  // NB: when rounds run out, groups of equal rewards fill the batch (A = 0, only the KL acts), so N stays P·G.
  for (size_t k = 0; static_cast<int64_t>(s.kept.size()) < P; ++k) s.kept.push_back(dropped.at(k));
  s.kept.resize(static_cast<size_t>(P));
  return s;
}

GRPOTrainer::Batch GRPOTrainer::select_groups(Sampled& s) const {
  const int64_t G = config_.grpo.group_size;
  Batch b;
  if (s.rounds.size() == 1 && !config_.grpo.dynamic_sampling) {
    Sampled::Round& r = s.rounds[0];
    const int64_t rows = r.rollout.size(), first = r.first_group * G;
    b.rollout = std::move(r.rollout);
    b.rewards = r.rewards.narrow(0, first, rows);
    b.advantages = r.advantages.narrow(0, first, rows);
    for (int64_t i = 0; i < rows; ++i) b.global_rows.push_back(first + i);
  } else {
    // Concatenate this rank's kept groups in the step's order, padding prompts
    // on the left and completions on the right. Position k of the kept list is
    // rows [k·G, (k+1)·G) of the whole batch, whichever rank holds it.
    int64_t Lp = 1, T = 1;
    for (const Sampled::Round& r : s.rounds) {
      if (r.rollout.num_prompts == 0) continue;
      Lp = std::max(Lp, r.rollout.prompt_ids.size(1));
      T = std::max(T, r.rollout.completion_ids.size(1));
    }
    const int64_t pad = tokenizer_->pad_id();
    std::vector<torch::Tensor> pi, pm, ci, cm, tr, rw, ad, lp, slp;
    RolloutBatch& out = b.rollout;
    out.group_size = G;
    for (size_t k = 0; k < s.kept.size(); ++k) {
      const auto [round, g] = s.kept[k];
      const Sampled::Round& r = s.rounds[round];
      const int64_t local = g - r.first_group;
      if (local < 0 || local >= r.rollout.num_prompts) continue;  // another rank's group
      const torch::Tensor rows = torch::arange(local * G, (local + 1) * G, torch::kLong);
      const torch::Tensor global = torch::arange(g * G, (g + 1) * G, torch::kLong);
      pi.push_back(pad_to(r.rollout.prompt_ids.index_select(0, rows), Lp, pad, true));
      pm.push_back(pad_to(r.rollout.prompt_mask.index_select(0, rows), Lp, 0, true));
      ci.push_back(pad_to(r.rollout.completion_ids.index_select(0, rows), T, pad, false));
      cm.push_back(pad_to(r.rollout.completion_mask.index_select(0, rows), T, 0, false));
      lp.push_back(pad_to(r.rollout.logprobs.index_select(0, rows), T, 0, false));
      slp.push_back(pad_to(r.rollout.sampling_logprobs.index_select(0, rows), T, 0, false));
      tr.push_back(r.rollout.truncated.index_select(0, rows));
      rw.push_back(r.rewards.index_select(0, global));
      ad.push_back(r.advantages.index_select(0, global));
      out.prompts.push_back(r.rollout.prompts[static_cast<size_t>(local)]);
      for (int64_t i = local * G; i < (local + 1) * G; ++i) {
        out.completion_texts.push_back(r.rollout.completion_texts[static_cast<size_t>(i)]);
        out.completion_lengths.push_back(r.rollout.completion_lengths[static_cast<size_t>(i)]);
      }
      for (int64_t j = 0; j < G; ++j) b.global_rows.push_back(static_cast<int64_t>(k) * G + j);
    }
    out.num_prompts = static_cast<int64_t>(out.prompts.size());
    if (out.num_prompts > 0) {
      out.prompt_ids = torch::cat(pi);
      out.prompt_mask = torch::cat(pm);
      out.completion_ids = torch::cat(ci);
      out.completion_mask = torch::cat(cm);
      out.logprobs = torch::cat(lp);
      out.sampling_logprobs = torch::cat(slp);
      out.truncated = torch::cat(tr);
      b.rewards = torch::cat(rw);
      b.advantages = torch::cat(ad);
    } else {
      // NB: under dynamic sampling a rank may hold none of the kept groups; it still joins every collective.
      out.prompt_ids = torch::full({0, Lp}, pad, torch::kLong);
      out.prompt_mask = torch::zeros({0, Lp}, torch::kLong);
      out.completion_ids = torch::full({0, T}, pad, torch::kLong);
      out.completion_mask = torch::zeros({0, T}, torch::kLong);
      out.logprobs = torch::zeros({0, T}, torch::kFloat32);
      out.sampling_logprobs = torch::zeros({0, T}, torch::kFloat32);
      out.truncated = torch::zeros({0}, torch::kBool);
      b.rewards = torch::zeros({0}, torch::kFloat32);
      b.advantages = torch::zeros({0}, torch::kFloat32);
    }
    out.group_index = torch::arange(out.num_prompts, torch::kLong).repeat_interleave(G);
  }
  // NB: what the model's calls read moves to its device once; texts, rewards
  // and the row bookkeeping stay on the CPU.
  const torch::Device device = policy_->model().output_weight().device();
  RolloutBatch& r = b.rollout;
  r.prompt_ids = r.prompt_ids.to(device);
  r.prompt_mask = r.prompt_mask.to(device);
  r.completion_ids = r.completion_ids.to(device);
  r.completion_mask = r.completion_mask.to(device);
  r.logprobs = r.logprobs.to(device);
  r.sampling_logprobs = r.sampling_logprobs.to(device);
  b.advantages = b.advantages.to(device);
  b.groups = r.group_index.to(device);
  return b;
}

void GRPOTrainer::rollout_metrics(const Sampled& s, nlohmann::json& m) const {
  // NB: from every rank's rows (the rounds' tables), so every rank computes the job's metrics.
  std::vector<double> all_rewards, all_lengths;
  std::vector<std::vector<double>> per_reward(static_cast<size_t>(rewards_.size()));
  int64_t truncated = 0;
  for (const Sampled::Round& r : s.rounds) {
    const auto t = r.table.accessor<double, 2>();
    for (int64_t i = 0; i < r.table.size(0); ++i) {
      all_rewards.push_back(t[i][0]);
      all_lengths.push_back(t[i][1]);
      truncated += t[i][2] != 0;
      for (int64_t k = 0; k < rewards_.size(); ++k) per_reward[static_cast<size_t>(k)].push_back(t[i][3 + k]);
    }
  }
  // Rewards as TRL names them, over every completion sampled this step.
  auto mean_std = [](const std::vector<double>& v) {
    const double mean = mean_of(v);
    double var = 0;
    for (double x : v) var += (x - mean) * (x - mean);
    return std::make_pair(mean, v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0.0);
  };
  const auto [reward_mean, reward_std] = mean_std(all_rewards);
  m["reward"] = reward_mean;
  m["reward_std"] = reward_std;
  const std::vector<std::string> names = rewards_.names();
  for (size_t r = 0; r < names.size(); ++r) {
    const auto [mean, sd] = mean_std(per_reward[r]);
    m["rewards/" + names[r] + "/mean"] = mean;
    m["rewards/" + names[r] + "/std"] = sd;
    if (names[r] == config_.eval.accuracy_reward) m["accuracy"] = mean;
  }
  const int64_t groups_seen = static_cast<int64_t>(s.rounds.size()) * config_.grpo.prompts_per_step;
  m["frac_reward_zero_std"] = static_cast<double>(s.zero_std_groups) / static_cast<double>(groups_seen);
  m["completion_length"] = mean_of(all_lengths);
  m["completions/max_length"] = all_lengths.empty() ? 0.0 : *std::max_element(all_lengths.begin(), all_lengths.end());
  m["completions/clipped_ratio"] = static_cast<double>(truncated) / static_cast<double>(all_lengths.size());
  m["sampling_rounds"] = static_cast<int64_t>(s.rounds.size());
  m["num_tokens"] = std::accumulate(all_lengths.begin(), all_lengths.end(), 0.0);
  m["seconds/generate"] = s.generate_seconds;
  m["seconds/reward"] = s.reward_seconds;
}

void GRPOTrainer::fixed_logprobs(Batch& b, nlohmann::json& m) {
  const auto t0 = Clock::now();
  const bool need_old = config_.grpo.num_iterations * config_.grpo.mini_batches > 1;
  const bool from_sampler = config_.grpo.old_logprobs == "sampler";
  // NB: the sampler's log-probs are the policy's at the weights that sampled; no forward pass needed.
  if (need_old && from_sampler) b.old_logp = b.rollout.logprobs;
  const bool recompute_old = need_old && !from_sampler;
  if ((recompute_old || reference_) && b.rollout.size() > 0) {
    torch::NoGradGuard no_grad;
    const int64_t N = b.rollout.size(), T = b.rollout.completion_ids.size(1);
    const int64_t micro =
        config_.grpo.micro_batch_size > 0 ? config_.grpo.micro_batch_size : N / config_.grpo.mini_batches;
    LogprobOptions lo;
    lo.temperature = config_.sampling.temperature;
    lo.chunk_tokens = config_.grpo.logprob_chunk_tokens;
    const auto index = torch::TensorOptions(torch::kLong).device(b.rollout.completion_ids.device());
    std::vector<torch::Tensor> olds, refs;
    for (int64_t begin = 0; begin < N; begin += micro) {
      const Rows r = take_rows(b.rollout, torch::arange(begin, std::min(N, begin + micro), index));
      // NB: the rows of one group share their prompt: it runs once (completion_states).
      lo.prompt_groups = b.groups.index_select(0, r.index);
      if (recompute_old) {
        olds.push_back(widen(policy_->token_logprobs(r.prompt_ids, r.prompt_mask, r.completion_ids,
                                                     r.completion_mask, lo).logprobs, T));
      }
      if (reference_) {
        refs.push_back(widen(reference_->token_logprobs(r.prompt_ids, r.prompt_mask, r.completion_ids,
                                                        r.completion_mask, lo), T));
      }
    }
    // NB: kept on the model's device beside the batch; update() selects each micro-batch's rows there.
    if (recompute_old) {
      b.old_logp = torch::cat(olds);
      const torch::Tensor kept = b.rollout.completion_mask.to(torch::kBool);
      b.logp_gap.add((b.old_logp - b.rollout.logprobs).abs().masked_select(kept));
    }
    if (reference_) b.ref_logp = torch::cat(refs);
  }
  m["seconds/logprobs"] = seconds_since(t0);
}

// μ passes over the batch, each in mini_batches optimizer updates, each
// accumulated over micro-batches with the loss normalized over the whole update.
// Data parallel: the passes and mini-batches are the whole batch's (the same
// shuffles on every rank); each rank computes the rows it holds of each
// mini-batch, under the normalizer summed over the ranks, and MasterAdamW
// sums the gradients, so the update is the one a single process makes.
void GRPOTrainer::update(Batch& b, nlohmann::json& m) {
  const GrpoConfig& g = config_.grpo;
  const int64_t N = g.prompts_per_step * g.group_size;  // the whole batch, over every rank
  const int64_t mini = N / g.mini_batches;
  const int64_t micro = g.micro_batch_size > 0 ? g.micro_batch_size : mini;
  const int64_t total_updates = config_.grpo.steps * g.num_iterations * g.mini_batches;
  GrpoLossOptions policy_loss = config_.loss.policy;
  policy_loss.max_completion_length = config_.sampling.max_new_tokens;
  LogprobOptions po;
  po.temperature = config_.sampling.temperature;
  po.chunk_tokens = g.logprob_chunk_tokens;
  std::vector<int64_t> local_row(static_cast<size_t>(N), -1);  // the whole batch's row -> this rank's, or -1
  for (size_t i = 0; i < b.global_rows.size(); ++i) local_row[static_cast<size_t>(b.global_rows[i])] = static_cast<int64_t>(i);

  // Sums over this rank's tokens, then over the ranks: tokens, kl, clip low/high/region, entropy, entropy
  // tokens, |logp - the sampler's| and its tokens, the importance weights and their count.
  enum {
    kTokens, kKl, kClipLow, kClipHigh, kClipRegion, kEntropy, kEntropyTokens,
    kDiff, kDiffTokens, kWeight, kWeightCount, kSums
  };
  std::vector<double> sums(kSums, 0.0), losses, norms, lrs;
  // This rank's |logp - the sampler's| and importance weights.
  Summary gap = b.logp_gap, weights;
  // NB: without a recomputed pass, the first update's forward is at the sampling weights: measure it there.
  const bool diff_in_update = !b.old_logp.defined() || g.old_logprobs == "sampler";
  const std::string& correction = g.importance_correction;
  const bool sequence_weights = correction.rfind("sequence", 0) == 0;
  // The batch is on the model's device (select_groups put it there).
  const torch::Device device = b.rollout.completion_mask.device();
  for (int64_t it = 0; it < g.num_iterations; ++it) {
    const std::vector<int64_t> order = shuffled_indices(N, derive_seed(config_.seed, step_, 2000 + it));
    for (int64_t u = 0; u < g.mini_batches; ++u) {
      std::vector<int64_t> mine;  // this rank's rows of the mini-batch, in its order
      for (int64_t k = u * mini; k < (u + 1) * mini; ++k) {
        const int64_t row = local_row[static_cast<size_t>(order[static_cast<size_t>(k)])];
        if (row >= 0) mine.push_back(row);
      }
      const int64_t n = static_cast<int64_t>(mine.size());
      const torch::Tensor rows = torch::tensor(mine, torch::kLong).to(device);
      const GrpoLossOptions lo = update_loss_options(policy_loss, b.rollout.completion_mask.index_select(0, rows), *dist_);
      optimizer_->zero_grad();
      double update_loss = 0;
      for (int64_t begin = 0; begin < n; begin += micro) {
        const Rows r = take_rows(b.rollout, rows.narrow(0, begin, std::min(micro, n - begin)));
        po.entropy = it == 0;
        po.prompt_groups = b.groups.index_select(0, r.index);
        const TokenLogprobs lp =
            policy_->token_logprobs(r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask, po);
        auto narrow_t = [&](const torch::Tensor& x) {
          return x.defined() ? x.index_select(0, r.index).narrow(1, 0, r.t_len) : torch::Tensor();
        };
        const torch::Tensor& mask = r.completion_mask;
        const torch::Tensor kept = mask.to(torch::kBool);
        if (diff_in_update && it == 0 && u == 0) {
          torch::NoGradGuard no_grad;
          gap.add((lp.logprobs.detach() - narrow_t(b.rollout.logprobs)).abs().masked_select(kept));
        }
        torch::Tensor advantages = b.advantages.index_select(0, r.index);  // (n), or (n, T') weighted per token
        if (correction != "none") {
          torch::NoGradGuard no_grad;
          // NB: without a recomputed pass (μ = 1, one mini-batch) this forward is the old policy.
          const torch::Tensor old = b.old_logp.defined() ? narrow_t(b.old_logp) : lp.logprobs.detach();
          const torch::Tensor w = importance_weights(old, narrow_t(b.rollout.sampling_logprobs), mask, correction,
                                                     g.importance_min, g.importance_max);
          advantages = advantages.unsqueeze(1) * w;
          if (it == 0) {
            // TRL's statistics: over the kept tokens, or one per sequence.
            weights.add(sequence_weights ? w.select(1, 0).masked_select(kept.any(1)) : w.masked_select(kept));
          }
        }
        const GrpoLossResult out =
            grpo_loss(lp.logprobs, narrow_t(b.old_logp), narrow_t(b.ref_logp), advantages, mask, lo);
        // NB: in a job of several, the update's last backward sums each gradient bucket over the ranks as it is done.
        if (begin + micro >= n) optimizer_->overlap_next_backward();
        out.loss.backward();
        optimizer_->add_grads();
        update_loss += out.loss.item<double>();
        const LossStats st = read_stats(out.stats);
        sums[kTokens] += st.token_count;
        sums[kKl] += st.kl_mean * st.token_count;
        sums[kClipLow] += st.clip_low_frac * st.token_count;
        sums[kClipHigh] += st.clip_high_frac * st.token_count;
        sums[kClipRegion] += st.clip_region_frac * st.token_count;
        if (lp.entropy.defined()) {
          sums[kEntropy] += (lp.entropy * mask).sum().item<double>();
          sums[kEntropyTokens] += st.token_count;
        }
      }
      const double lr = config_.optimizer.lr_at(updates_, total_updates);
      const double norm = optimizer_->step(lr, "GRPOTrainer: step " + std::to_string(step_ + 1));
      ++updates_;
      losses.push_back(update_loss);
      norms.push_back(norm);
      lrs.push_back(lr);
    }
  }
  sums[kDiff] = gap.sum, sums[kDiffTokens] = gap.count;
  sums[kWeight] = weights.sum, sums[kWeightCount] = weights.count;
  if (dist_->active()) {
    // NB: one all-reduce for the step's statistics: the sums, each update's loss (each rank's part of it),
    // then each rank's extremes in slots of its own, so that the sum gathers them.
    std::vector<double> packed = sums;
    packed.insert(packed.end(), losses.begin(), losses.end());
    const int64_t ranks = dist_->world_size(), extremes = static_cast<int64_t>(packed.size());
    packed.resize(packed.size() + 3 * static_cast<size_t>(ranks), 0.0);
    const size_t mine = static_cast<size_t>(extremes + 3 * dist_->rank());
    packed[mine] = gap.max, packed[mine + 1] = weights.min, packed[mine + 2] = weights.max;
    const torch::Tensor total = dist_->all_reduce_sum(torch::tensor(packed, torch::kFloat64),
                                                      "the loss statistics of step " + std::to_string(step_ + 1));
    const auto t = total.accessor<double, 1>();
    for (size_t i = 0; i < sums.size(); ++i) sums[i] = t[static_cast<int64_t>(i)];
    for (size_t i = 0; i < losses.size(); ++i) losses[i] = t[static_cast<int64_t>(sums.size() + i)];
    for (int64_t k = 0; k < ranks; ++k) {
      gap.max = std::max(gap.max, t[extremes + 3 * k]);
      weights.min = std::min(weights.min, t[extremes + 3 * k + 1]);
      weights.max = std::max(weights.max, t[extremes + 3 * k + 2]);
    }
  }
  const double denom = std::max(1.0, sums[kTokens]);
  m["loss"] = mean_of(losses);
  m["grad_norm"] = mean_of(norms);
  m["learning_rate"] = lrs.empty() ? 0.0 : lrs.back();
  m["kl"] = sums[kKl] / denom;
  m["clip_ratio/low_mean"] = sums[kClipLow] / denom;
  m["clip_ratio/high_mean"] = sums[kClipHigh] / denom;
  m["clip_ratio/region_mean"] = sums[kClipRegion] / denom;
  m["entropy"] = sums[kEntropy] / std::max(1.0, sums[kEntropyTokens]);
  // TRL's names: how far the trainer's log-probs are from those the sampler recorded (0 when exact).
  if (sums[kDiffTokens] > 0) {
    m["sampling/sampling_logp_difference/mean"] = sums[kDiff] / sums[kDiffTokens];
    m["sampling/sampling_logp_difference/max"] = gap.max;
  }
  if (sums[kWeightCount] > 0) {
    m["sampling/importance_sampling_ratio/min"] = weights.min;
    m["sampling/importance_sampling_ratio/mean"] = sums[kWeight] / sums[kWeightCount];
    m["sampling/importance_sampling_ratio/max"] = weights.max;
  }
  if (dist_->active()) m["distributed/overlapped_buckets"] = optimizer_->overlapped_fraction();
}

nlohmann::json GRPOTrainer::step() {
  if (step_ >= config_.grpo.steps) {
    throw Error("GRPOTrainer::step: the run already did its grpo.steps = " + std::to_string(config_.grpo.steps) +
                " steps");
  }
  const auto start = Clock::now();
  nlohmann::json m = {{"step", step_ + 1}};
  Batch b = collect(m);
  const auto t_train = Clock::now();
  update(b, m);
  m["seconds/train"] = seconds_since(t_train);
  ++step_;
  if (reference_ && config_.grpo.ref_sync_steps > 0 && step_ % config_.grpo.ref_sync_steps == 0) {
    reference_->sync_from(*policy_, config_.grpo.ref_sync_alpha);
  }
  const double seconds = seconds_since(start);
  seconds_ += seconds;
  m["seconds/step"] = seconds;
  m["tokens_per_second"] = m["num_tokens"].get<double>() / std::max(seconds, 1e-9);
  m["epoch"] = train_.epoch();
  history_.push_back({{"step", step_},
                      {"reward", m["reward"]},
                      {"accuracy", m.contains("accuracy") ? m["accuracy"] : nlohmann::json(nullptr)}});
  for (auto& cb : step_callbacks_) cb(m);
  return m;
}

nlohmann::json GRPOTrainer::trainer_state() const {
  nlohmann::json evals = nlohmann::json::array();
  for (const EvalResult& e : evals_) evals.push_back(e.to_json());
  // NB: each rank's own state, gathered to every rank as bytes. The dataset
  // position is the same on every rank (each draws every step's prompts); it
  // is kept per rank all the same, so the file says what each rank had.
  const std::string rng = cpu_rng_state().get<std::string>();
  const int64_t K = dist_->world_size(), width = static_cast<int64_t>(rng.size()) + 2;
  torch::Tensor table = torch::zeros({K, width}, torch::kFloat64);
  {
    auto t = table.accessor<double, 2>();
    const int64_t r = dist_->rank();
    for (size_t i = 0; i < rng.size(); ++i) t[r][static_cast<int64_t>(i)] = static_cast<unsigned char>(rng[i]);
    t[r][width - 2] = static_cast<double>(train_.epoch());
    t[r][width - 1] = static_cast<double>(train_.position());
  }
  if (dist_->active()) table = dist_->all_reduce_sum(table, "the ranks' states");
  nlohmann::json ranks = nlohmann::json::array();
  const auto t = table.accessor<double, 2>();
  for (int64_t r = 0; r < K; ++r) {
    std::string hex(rng.size(), '0');
    for (size_t i = 0; i < rng.size(); ++i) hex[i] = static_cast<char>(t[r][static_cast<int64_t>(i)]);
    ranks.push_back({{"rank", r},
                     {"cpu_rng", hex},
                     {"dataset",
                      {{"epoch", static_cast<int64_t>(t[r][width - 2])}, {"position", static_cast<int64_t>(t[r][width - 1])}}}});
  }
  return {{"step", step_},
          {"updates", updates_},
          {"dataset", {{"epoch", train_.epoch()}, {"position", train_.position()}}},
          {"seconds", seconds_},
          {"history", history_},
          {"evals", evals},
          {"cpu_rng", rng},
          {"world_size", K},
          {"ranks", ranks}};
}

std::string GRPOTrainer::save_checkpoint() {
  const std::string dir = checkpoint_dir(config_.output_dir, step_);
  // NB: every rank takes part in gathering the state; rank 0 alone writes,
  // and the others wait for it, so no rank runs ahead of a checkpoint.
  nlohmann::json state = trainer_state();
  if (!dist_->is_main()) {
    dist_->barrier("checkpoint-" + std::to_string(step_));
    return dir;
  }
  std::error_code ec;
  fs::create_directories(config_.output_dir, ec);
  CheckpointContents c;
  c.model = &policy_->model();
  if (optimizer_->has_copy()) c.weights = &optimizer_->master();
  c.tokenizer = tokenizer_.get();
  c.reference = reference_ ? &reference_->model() : nullptr;
  c.optimizer = &optimizer_->adamw();
  c.trainer_state = std::move(state);
  c.config = config_.to_json();
  write_checkpoint(dir, c);
  prune_checkpoints(config_.output_dir, config_.checkpoint.keep_last);
  dist_->barrier("checkpoint-" + std::to_string(step_));
  return dir;
}

void GRPOTrainer::load_checkpoint(const std::string& dir) {
  check_resumable(dir, policy_->model(), *tokenizer_);
  const nlohmann::json state = read_trainer_state(dir);
  try {
    optimizer_->load_state(dir);
    if (reference_) {
      const fs::path ref = fs::path(dir) / "reference.pt";
      if (!fs::exists(ref)) throw Error(ref.string() + ": missing; the run has β > 0 and needs the reference weights");
      load_weights(reference_->model().module(), ref.string());
    }
    step_ = state.at("step").get<int64_t>();
    updates_ = state.at("updates").get<int64_t>();
    train_.set_state(state.at("dataset").at("epoch").get<int64_t>(), state.at("dataset").at("position").get<int64_t>());
    seconds_ = state.at("seconds").get<double>();
    history_ = state.at("history").get<std::vector<nlohmann::json>>();
    evals_.clear();
    for (const auto& e : state.at("evals")) evals_.push_back(EvalResult::from_json(e));
    // NB: a checkpoint of another world size resumes too: every group's
    // sampling seed depends on its place in the step, not on the ranks, so
    // only LibTorch's CPU generator (unused by the step) comes from rank 0.
    const int64_t saved_world = state.value("world_size", int64_t{1});
    if (saved_world == dist_->world_size() && state.contains("ranks")) {
      set_cpu_rng_state(state.at("ranks").at(static_cast<size_t>(dist_->rank())).at("cpu_rng"));
    } else {
      set_cpu_rng_state(state.at("cpu_rng"));
      if (saved_world != dist_->world_size() && dist_->is_main()) {
        log::warn(dir + ": written by a job of " + std::to_string(saved_world) + " processes, resumed by " +
                  std::to_string(dist_->world_size()) + "; the steps continue as they would have");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(dir + "/trainer_state.json: malformed: " + e.what());
  }
}

nlohmann::json GRPOTrainer::report() const {
  nlohmann::json evals = nlohmann::json::array();
  for (const EvalResult& e : evals_) evals.push_back(e.to_json());
  nlohmann::json r = {{"steps", step_},
                      {"seconds", seconds_},
                      {"eval_problems", evals_.empty() ? 0 : evals_.front().problems},
                      {"evaluations", evals}};
  if (!evals_.empty()) {
    r["before"] = evals_.front().to_json();
    r["after"] = evals_.back().to_json();
    r["accuracy_before"] = r["before"]["accuracy"];
    r["accuracy_after"] = r["after"]["accuracy"];
  }
  if (!config_.checkpoint.save_pretrained.empty()) r["pretrained_dir"] = (fs::path(config_.output_dir) / "final").string();
  return r;
}

void GRPOTrainer::write_outputs() const {
  const fs::path out(config_.output_dir);
  write_file_atomic((out / "report.json").string(), json_text(report(), 2) + "\n");
  PlotSeries reward{"reward (training batch)", {}, {}, "#1f77b4"};
  PlotSeries accuracy{"accuracy (training batch)", {}, {}, "#ff7f0e"};
  PlotSeries held_out{"accuracy (held out, greedy)", {}, {}, "#2ca02c"};
  for (const nlohmann::json& h : history_) {
    reward.x.push_back(h["step"].get<double>());
    reward.y.push_back(h["reward"].get<double>());
    if (!h["accuracy"].is_null()) {
      accuracy.x.push_back(h["step"].get<double>());
      accuracy.y.push_back(h["accuracy"].get<double>());
    }
  }
  for (const EvalResult& e : evals_) {
    if (!e.accuracy) continue;
    held_out.x.push_back(static_cast<double>(e.step));
    held_out.y.push_back(*e.accuracy);
  }
  std::vector<PlotSeries> series{reward};
  if (!accuracy.x.empty()) series.push_back(accuracy);
  if (!held_out.x.empty()) series.push_back(held_out);
  PlotOptions po;
  po.title = "GRPO: reward and accuracy per step";
  po.x_label = "step";
  po.y_label = "mean";
  write_svg_line_plot((out / "plot.svg").string(), series, po);
}

nlohmann::json GRPOTrainer::train() {
  // NB: the other ranks' next collective fails with this rank's message, rather than at their timeout.
  return dist_->reporting_failures([&] { return train_loop(); });
}

nlohmann::json GRPOTrainer::train_loop() {
  const bool main = dist_->is_main();
  std::error_code ec;
  if (main) {
    fs::create_directories(config_.output_dir, ec);
    if (ec) throw Error("output_dir " + config_.output_dir + ": cannot create (" + ec.message() + ")");
  }
  bool resumed = false;
  if (config_.checkpoint.resume) {
    if (main) remove_stale_checkpoint_temporaries(config_.output_dir, {"final"});
    // Rank 0 picks the checkpoint; every rank loads that one.
    std::optional<std::string> latest = main ? latest_checkpoint(config_.output_dir) : std::nullopt;
    if (dist_->active()) {
      const int64_t found = latest ? std::stoll(fs::path(*latest).filename().string().substr(11)) : -1;
      const int64_t step = static_cast<int64_t>(dist_->all_reduce_sum(main ? static_cast<double>(found) : 0.0,
                                                                      "the checkpoint to resume from"));
      latest.reset();
      if (step >= 0) latest = checkpoint_dir(config_.output_dir, step);
      if (latest && !fs::is_directory(*latest)) {
        throw Error("checkpoint.resume: rank " + std::to_string(dist_->rank()) + " cannot see " + *latest +
                    ", which rank 0 resumes from: output_dir must be a folder every rank sees");
      }
    }
    if (latest) {
      // NB: one process falls back past a damaged newest checkpoint (truncated by a full disk, say) to
      // the previous complete one; a job of several needs every rank on the one rank 0 picked.
      const std::vector<std::string> candidates =
          dist_->active() ? std::vector<std::string>{*latest} : list_checkpoints(config_.output_dir);
      for (size_t k = candidates.size(); k-- > 0;) {
        try {
          load_checkpoint(candidates[k]);
          latest = candidates[k];
          break;
        } catch (const CheckpointMismatch&) {
          throw;  // the older checkpoints are the same run's
        } catch (const std::exception& e) {
          if (k == 0) throw;
          log::warn(candidates[k] + " cannot be resumed from (" + e.what() + "); resuming from " + candidates[k - 1]);
        }
      }
      resumed = true;
      if (main) log::info("resumed from " + *latest + " (step " + std::to_string(step_) + ")");
    }
  }
  if (main && !resumed) {
    // NB: a fresh run never shares its folder with an earlier one (keep_last would prune by step across both).
    if (auto aside = set_aside_previous_run(config_.output_dir, {"metrics.jsonl", "report.json", "plot.svg", "final"},
                                            /*checkpoints=*/true)) {
      log::warn("output_dir " + config_.output_dir + " held an earlier run, which this one does not resume; moved it to " +
                *aside);
    }
  }
  std::optional<MetricsWriter> metrics;
  if (main) metrics.emplace((fs::path(config_.output_dir) / "metrics.jsonl").string(), resumed ? step_ : -1);
  auto log_eval = [&](const EvalResult& e) {
    if (!main) return;
    log::info("eval at step " + std::to_string(e.step) + ": " + std::to_string(e.problems) + " problems, accuracy " +
              (e.accuracy ? log::fixed(*e.accuracy, 3) : std::string("n/a")) + ", mean reward " +
              log::fixed(e.mean_reward, 3));
  };
  if (main && dist_->active()) {
    log::info("data parallel: " + std::to_string(dist_->world_size()) + " processes over " + dist_->backend_name() +
              ", " + std::to_string(config_.grpo.prompts_per_step) + " groups a step split over them");
  }
  if (eval_ && evals_.empty()) log_eval(evaluate());

  int64_t saved_at = resumed ? step_ : -1;
  while (step_ < config_.grpo.steps) {
    const nlohmann::json m = step();
    if (main) metrics->write(m);
    if (main && config_.logging.console && (step_ % config_.logging.log_every == 0 || step_ == config_.grpo.steps)) {
      ProgressInfo p;
      p.step = step_;
      p.total_steps = config_.grpo.steps;
      p.reward = m["reward"].get<double>();
      if (m.contains("accuracy")) p.accuracy = m["accuracy"].get<double>();
      p.kl = m["kl"].get<double>();
      p.tokens_per_second = m["tokens_per_second"].get<double>();
      p.elapsed_seconds = seconds_;  // NB: training time across resumes, so the ETA holds after one
      log::info(progress_line(p));
    }
    if (eval_ && config_.eval.every > 0 && step_ % config_.eval.every == 0 && step_ < config_.grpo.steps) {
      log_eval(evaluate());
    }
    if (config_.checkpoint.save_every > 0 && step_ % config_.checkpoint.save_every == 0) {
      save_checkpoint();
      saved_at = step_;
      if (main) write_outputs();
    }
    // NB: every rank takes the same decision, whichever of them was signalled.
    if (step_ < config_.grpo.steps && dist_->all_reduce_sum(stop_requested() ? 1.0 : 0.0, "the stop request") > 0) {
      if (saved_at != step_) save_checkpoint();
      if (main) {
        write_outputs();
        log::warn("stopped at step " + std::to_string(step_) + " of " + std::to_string(config_.grpo.steps) +
                  " on request; " + checkpoint_dir(config_.output_dir, step_) +
                  " holds it, and checkpoint.resume continues from there");
      }
      dist_->barrier("the stop");
      nlohmann::json r = report();
      r["stopped"] = true;
      return r;
    }
  }
  if (eval_ && (evals_.empty() || evals_.back().step != step_)) log_eval(evaluate());
  if (saved_at != step_) save_checkpoint();
  if (main && !config_.checkpoint.save_pretrained.empty()) {
    const std::string dir = (std::filesystem::path(config_.output_dir) / "final").string();
    export_pretrained(optimizer_->master(), tokenizer_.get(), dir,
                      dtype_from_name(config_.checkpoint.save_pretrained, "checkpoint.save_pretrained"));
    log::info("wrote the policy as a Hugging Face folder: " + dir);
  }
  if (main) write_outputs();
  dist_->barrier("the end of training");
  return report();
}

}  // namespace grpo
