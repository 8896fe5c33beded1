// SFTTrainer and Distiller: batches of prompt → completion pairs, left-padded
// prompts and right-padded completions (EOS appended), cut into micro-batches
// whose losses are each divided by the whole batch's completion-token count,
// so their gradients add up to exactly the batch's. SFT's loss is the mean
// negative log-likelihood per completion token; a Distiller's is
// distill_loss's α·τ²·KD + (1 − α)·CE per token. Data parallel: each rank
// takes its share of every batch, and the token count and the gradients are
// summed over the ranks, so the update is the whole batch's.
#include "grpo/train/sft_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "grpo/error.h"
#include "grpo/log.h"
#include "grpo/stop.h"
#include "grpo/ops/distill_loss.h"
#include "grpo/train/checkpoint.h"
#include "grpo/train/distiller.h"
#include "grpo/train/factory.h"
#include "grpo/train/metrics.h"
#include "random.h"
#include "train/optimizer.h"

namespace grpo {

namespace fs = std::filesystem;

namespace {

// Purposes of derive_seed in this stage.
constexpr uint64_t kOnPolicyDraw = 3000, kOnPolicySampling = 3001;

// Each value summed over the ranks, in one collective.
std::vector<double> sum_over_ranks(Distributed& dist, const std::vector<double>& values, const std::string& what) {
  const torch::Tensor sums = dist.all_reduce_sum(torch::tensor(values, torch::kFloat64), what).contiguous();
  return std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + sums.numel());
}

struct PaddedPairs {
  torch::Tensor prompt_ids, prompt_mask, completion_ids, completion_mask;
};

}  // namespace

SFTTrainer::SFTTrainer(TrainConfig config, std::shared_ptr<CausalLM> model, std::shared_ptr<const Tokenizer> tokenizer,
                       PromptDataset pairs, std::shared_ptr<Distributed> dist)
    : SFTTrainer(std::move(config), std::move(model), nullptr, std::move(tokenizer), std::move(pairs),
                 std::move(dist), "sft") {}

SFTTrainer::SFTTrainer(TrainConfig config, std::shared_ptr<CausalLM> model, std::shared_ptr<CausalLM> teacher,
                       std::shared_ptr<const Tokenizer> tokenizer, PromptDataset pairs,
                       std::shared_ptr<Distributed> dist, std::string stage)
    : config_(std::move(config)),
      stage_(std::move(stage)),
      dist_(dist ? std::move(dist) : std::make_shared<Distributed>()),
      tokenizer_(std::move(tokenizer)),
      teacher_(std::move(teacher)),
      pairs_(std::move(pairs)) {
  config_.validate();
  if (!model) throw Error(stage_ + ": the model is null");
  if (!tokenizer_) throw Error(stage_ + ": the tokenizer is null");
  if (config_.sft.batch_size > pairs_.size()) {
    throw Error("sft.batch_size: must be <= the " + std::to_string(pairs_.size()) + " training pairs, got " +
                std::to_string(config_.sft.batch_size));
  }
  for (int64_t i = 0; i < pairs_.size(); ++i) {
    const nlohmann::json& r = pairs_.record(i);
    auto it = r.find(config_.sft.completion_key);
    if (it == r.end() || !it->is_string()) {
      throw Error("sft.train: record " + std::to_string(i) + " has no string field \"" + config_.sft.completion_key +
                  "\"");
    }
  }
  if (config_.sft.batch_size < dist_->world_size()) {
    throw Error("sft.batch_size: must be >= the " + std::to_string(dist_->world_size()) + " processes of the job, got " +
                std::to_string(config_.sft.batch_size));
  }
  if (!config_.sft.eval.empty()) {
    PromptDatasetOptions opt = sft_dataset_options(config_.sft, config_.data, config_.seed);
    opt.shuffle = false;
    eval_pairs_ = PromptDataset::from_jsonl(config_.sft.eval, opt);
    for (int64_t i = 0; i < eval_pairs_->size(); ++i) {
      auto it = eval_pairs_->record(i).find(config_.sft.completion_key);
      if (it == eval_pairs_->record(i).end() || !it->is_string()) {
        throw Error("sft.eval: record " + std::to_string(i) + " has no string field \"" +
                    config_.sft.completion_key + "\"");
      }
    }
  }
  apply_threads(config_.threads);
  apply_allow_tf32(config_.model.allow_tf32);
  policy_ = std::make_unique<Policy>(std::move(model));
  optimizer_ = std::make_unique<MasterAdamW>(policy_->model(), config_.sft.optimizer, dist_.get());
  optimizer_->broadcast_state();
  if (teacher_) {
    teacher_->module().eval();
    for (torch::Tensor& p : teacher_->module().parameters()) p.requires_grad_(false);
  }
}

SFTTrainer::~SFTTrainer() = default;

CausalLM& SFTTrainer::master_model() { return optimizer_->master(); }

std::unique_ptr<SFTTrainer> SFTTrainer::from_config(const TrainConfig& config) {
  config.validate();
  if (config.sft.train.empty()) throw Error("sft.train: a JSONL file of prompt/completion pairs is required");
  std::shared_ptr<Distributed> dist = Distributed::from_env(config.distributed, config.model.device);
  std::shared_ptr<const Tokenizer> tokenizer = make_tokenizer(config.tokenizer, config.model.init_from);
  ModelConfig model_config = config.model;
  model_config.device = dist->device_for(config.model.device);
  auto model = make_model(model_config, *tokenizer, config.seed);
  return std::make_unique<SFTTrainer>(
      config, std::move(model), std::move(tokenizer),
      PromptDataset::from_jsonl(config.sft.train, sft_dataset_options(config.sft, config.data, config.seed)),
      std::move(dist));
}

std::string SFTTrainer::output_checkpoint() const { return (fs::path(config_.output_dir) / stage_).string(); }

std::string SFTTrainer::checkpoints_dir() const {
  return (fs::path(config_.output_dir) / (stage_ + "_checkpoints")).string();
}

SFTTrainer::Pair SFTTrainer::encode(const PromptRecord& record) const {
  Pair p;
  p.prompt = tokenizer_->encode_prompt(record.prompt);
  p.completion = tokenizer_->encode(record.fields.at(config_.sft.completion_key).get<std::string>());
  p.completion.push_back(tokenizer_->eos_id());
  return p;
}

void SFTTrainer::sample_completions(std::vector<Pair>& pairs, int64_t first_global) {
  GenerationConfig g = config_.sampling.to_generation();
  g.eos_ids = stop_ids(config_.sampling, *tokenizer_);
  g.pad_id = tokenizer_->pad_id();
  if (config_.distill.max_new_tokens > 0) g.max_new_tokens = config_.distill.max_new_tokens;
  // NB: each prompt samples from a seed of its place in the whole batch, so K ranks sample what one process does.
  const uint64_t seed = derive_seed(config_.seed, step_, kOnPolicySampling);
  std::vector<std::vector<int64_t>> prompts;
  for (size_t i = 0; i < pairs.size(); ++i) {
    prompts.push_back(pairs[i].prompt);
    g.prompt_seeds.push_back(splitmix64(seed + static_cast<uint64_t>(first_global) + i));
  }
  const Generation out = policy_->generate(prompts, g, 1);
  const torch::Tensor ids_cpu = out.completion_ids.cpu().to(torch::kLong);
  const torch::Tensor mask_cpu = out.completion_mask.cpu().to(torch::kLong);
  const auto ids = ids_cpu.accessor<int64_t, 2>(), mask = mask_cpu.accessor<int64_t, 2>();
  for (size_t i = 0; i < pairs.size(); ++i) {
    const int64_t row = static_cast<int64_t>(i);
    pairs[i].completion.clear();
    for (int64_t t = 0; t < ids.size(1); ++t) {
      if (mask[row][t] != 0) pairs[i].completion.push_back(ids[row][t]);
    }
  }
}

SFTTrainer::Sums SFTTrainer::run(const std::vector<Pair>& pairs, size_t begin, size_t end, double tokens,
                                 bool on_policy, bool backward) {
  const int64_t B = static_cast<int64_t>(end - begin);
  size_t Lp = 0, T = 0;
  for (size_t i = begin; i < end; ++i) {
    Lp = std::max(Lp, pairs[i].prompt.size());
    T = std::max(T, pairs[i].completion.size());
  }
  if (static_cast<int64_t>(Lp + T) > policy_->model().max_positions()) {
    throw Error(stage_ + ": a prompt and completion of " + std::to_string(Lp + T) + " tokens exceed the model's " +
                std::to_string(policy_->model().max_positions()) + " positions");
  }
  const int64_t pad = tokenizer_->pad_id();
  PaddedPairs x;
  x.prompt_ids = torch::full({B, static_cast<int64_t>(Lp)}, pad, torch::kLong);
  x.prompt_mask = torch::zeros({B, static_cast<int64_t>(Lp)}, torch::kLong);
  x.completion_ids = torch::full({B, static_cast<int64_t>(T)}, pad, torch::kLong);
  x.completion_mask = torch::zeros({B, static_cast<int64_t>(T)}, torch::kLong);
  auto pi = x.prompt_ids.accessor<int64_t, 2>(), pm = x.prompt_mask.accessor<int64_t, 2>();
  auto ci = x.completion_ids.accessor<int64_t, 2>(), cm = x.completion_mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const Pair& p = pairs[begin + static_cast<size_t>(b)];
    const int64_t offset = static_cast<int64_t>(Lp - p.prompt.size());  // left padding
    for (size_t t = 0; t < p.prompt.size(); ++t) {
      pi[b][offset + static_cast<int64_t>(t)] = p.prompt[t];
      pm[b][offset + static_cast<int64_t>(t)] = 1;
    }
    for (size_t t = 0; t < p.completion.size(); ++t) {
      ci[b][static_cast<int64_t>(t)] = p.completion[t];
      cm[b][static_cast<int64_t>(t)] = 1;
    }
  }
  std::optional<torch::NoGradGuard> no_grad;
  if (!backward) no_grad.emplace();
  Sums s;
  torch::Tensor loss;
  if (!teacher_) {
    LogprobOptions lo;
    lo.chunk_tokens = config_.grpo.logprob_chunk_tokens;
    const torch::Tensor logp = policy_->token_logprobs(x.prompt_ids, x.prompt_mask, x.completion_ids,
                                                       x.completion_mask, lo).logprobs;
    const torch::Tensor nll = -logp.sum();
    loss = nll / tokens;
    s.nll = nll.item<double>();
  } else {
    CausalLM& student = policy_->model();
    const CompletionStates st = completion_states(student, x.prompt_ids, x.prompt_mask, x.completion_ids,
                                                  x.completion_mask);
    CompletionStates te;
    {
      torch::NoGradGuard frozen;
      te = completion_states(*teacher_, x.prompt_ids, x.prompt_mask, x.completion_ids, x.completion_mask);
    }
    DistillLossOptions o;
    o.alpha = on_policy ? 1.0 : config_.distill.alpha;
    o.temperature = config_.distill.temperature;
    o.divergence = parse_divergence(config_.distill.divergence);
    o.beta = config_.distill.beta;
    o.normalizer = tokens;
    o.chunk_tokens = config_.grpo.logprob_chunk_tokens;
    torch::Tensor teacher_weight;
    {
      torch::NoGradGuard frozen;
      teacher_weight = teacher_->output_weight();
    }
    auto [l, stats] = distill_loss(st.hidden, student.output_weight(), te.hidden, teacher_weight, st.targets, o);
    loss = l;
    const torch::Tensor st_cpu = stats.to(torch::kCPU, torch::kFloat64);
    s.kd = st_cpu[static_cast<int64_t>(DistillStat::DivergenceSum)].item<double>();
    s.nll = st_cpu[static_cast<int64_t>(DistillStat::NllSum)].item<double>();
  }
  s.loss = loss.item<double>();
  s.tokens = x.completion_mask.sum().item<double>();
  if (backward) {
    loss.backward();
    optimizer_->add_grads();
  }
  return s;
}

nlohmann::json SFTTrainer::step() {
  // NB: every rank draws the same batch and keeps its share.
  const std::vector<PromptRecord> drawn = pairs_.next_batch(config_.sft.batch_size);
  const auto [first, end] = dist_->share(static_cast<int64_t>(drawn.size()));
  std::vector<Pair> batch;
  for (int64_t i = first; i < end; ++i) batch.push_back(encode(drawn[static_cast<size_t>(i)]));
  const bool on_policy =
      teacher_ && config_.distill.on_policy > 0 &&
      unit_interval(derive_seed(config_.seed, step_, kOnPolicyDraw)) < config_.distill.on_policy;
  if (on_policy) sample_completions(batch, first);
  double local_tokens = 0;
  for (const Pair& p : batch) local_tokens += static_cast<double>(p.completion.size());
  const double tokens = dist_->all_reduce_sum(local_tokens, "the " + stage_ + " token count");
  if (!(tokens > 0)) throw Error(stage_ + ": step " + std::to_string(step_ + 1) + " has no completion tokens");

  optimizer_->zero_grad();
  const size_t micro = config_.sft.micro_batch_size > 0 ? static_cast<size_t>(config_.sft.micro_batch_size)
                                                         : batch.size();
  Sums sums;
  for (size_t begin = 0; begin < batch.size(); begin += micro) {
    const size_t stop = std::min(batch.size(), begin + micro);
    if (stop == batch.size()) optimizer_->overlap_next_backward();
    const Sums s = run(batch, begin, stop, tokens, on_policy, /*backward=*/true);
    sums.loss += s.loss;
    sums.nll += s.nll;
    sums.kd += s.kd;
  }
  const std::vector<double> global =
      sum_over_ranks(*dist_, {sums.loss, sums.nll, sums.kd}, "the " + stage_ + " loss");
  const double lr = config_.sft.optimizer.lr_at(step_, config_.sft.steps);
  if (!std::isfinite(global[0])) {
    throw Error(stage_ + ": step " + std::to_string(step_ + 1) + ": the loss is not finite; training stopped");
  }
  const double norm = optimizer_->step(lr, stage_ + ": step " + std::to_string(step_ + 1));
  ++step_;
  nlohmann::json m = {{"step", step_}, {"loss", global[0]}, {"learning_rate", lr}, {"grad_norm", norm},
                      {"tokens", tokens}};
  if (teacher_) {
    m["ce"] = global[1] / tokens;
    m["kd"] = global[2] / tokens;
    m["on_policy"] = on_policy;
  }
  return m;
}

nlohmann::json SFTTrainer::evaluate() {
  if (!eval_pairs_) throw Error("sft.eval: the config names no held-out pairs");
  int64_t n = eval_pairs_->size();
  if (config_.sft.eval_limit > 0) n = std::min(n, config_.sft.eval_limit);
  const auto [first, end] = dist_->share(n);
  std::vector<Pair> pairs;
  for (int64_t i = first; i < end; ++i) pairs.push_back(encode(eval_pairs_->get(i)));
  Sums sums;
  const size_t micro = static_cast<size_t>(config_.sft.micro_batch_size > 0 ? config_.sft.micro_batch_size
                                                                             : config_.sft.batch_size);
  for (size_t begin = 0; begin < pairs.size(); begin += micro) {
    const Sums s = run(pairs, begin, std::min(pairs.size(), begin + micro), 1.0, false, /*backward=*/false);
    sums.nll += s.nll;
    sums.kd += s.kd;
    sums.tokens += s.tokens;
  }
  const std::vector<double> g =
      sum_over_ranks(*dist_, {sums.nll, sums.kd, sums.tokens}, "the held-out loss");
  const double tokens = std::max(1.0, g[2]);
  nlohmann::json e = {{"step", step_}, {"loss", g[0] / tokens}, {"tokens", g[2]},
                      {"perplexity", std::exp(g[0] / tokens)}};
  if (teacher_) e["kd"] = g[1] / tokens;
  return e;
}

nlohmann::json SFTTrainer::trainer_state(double last_loss) const {
  return {{"step", step_},
          {"stage", stage_},
          {"final_loss", last_loss},
          {"seconds", seconds_},
          {"dataset", {{"epoch", pairs_.epoch()}, {"position", pairs_.position()}}},
          {"evals", evals_},
          {"cpu_rng", cpu_rng_state()},
          {"world_size", dist_->world_size()}};
}

void SFTTrainer::save_checkpoint(const std::string& dir, double last_loss) {
  // NB: rank 0 alone writes; the others wait for it, so no rank runs ahead of a checkpoint.
  if (dist_->is_main()) {
    CheckpointContents c;
    c.model = &policy_->model();
    if (optimizer_->has_copy()) c.weights = &optimizer_->master();
    c.tokenizer = tokenizer_.get();
    c.optimizer = &optimizer_->adamw();
    c.trainer_state = trainer_state(last_loss);
    c.config = config_.to_json();
    write_checkpoint(dir, c);
  }
  dist_->barrier(stage_ + " checkpoint " + dir);
}

double SFTTrainer::load_checkpoint(const std::string& dir) {
  check_resumable(dir, policy_->model(), *tokenizer_);
  const nlohmann::json state = read_trainer_state(dir);
  try {
    if (state.value("stage", std::string()) != stage_) {
      throw Error(dir + ": a checkpoint of the \"" + state.value("stage", std::string("grpo")) +
                  "\" stage, not of \"" + stage_ + "\"");
    }
    optimizer_->load_state(dir);
    step_ = state.at("step").get<int64_t>();
    seconds_ = state.at("seconds").get<double>();
    pairs_.set_state(state.at("dataset").at("epoch").get<int64_t>(), state.at("dataset").at("position").get<int64_t>());
    evals_ = state.at("evals").get<std::vector<nlohmann::json>>();
    set_cpu_rng_state(state.at("cpu_rng"));
    return state.at("final_loss").get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(dir + "/trainer_state.json: malformed: " + e.what());
  }
}

std::optional<std::string> SFTTrainer::checkpoint_to_resume() const {
  // The newest of the checkpoints and the final folder (a finished stage).
  std::optional<std::string> best = latest_checkpoint(checkpoints_dir());
  int64_t best_step = best ? read_trainer_state(*best).at("step").get<int64_t>() : -1;
  const std::string final_dir = output_checkpoint();
  if (fs::exists(fs::path(final_dir) / "trainer_state.json") && fs::exists(fs::path(final_dir) / "optimizer.pt")) {
    const int64_t s = read_trainer_state(final_dir).value("step", int64_t{-1});
    if (s > best_step) best = final_dir;
  }
  return best;
}

nlohmann::json SFTTrainer::report(double last_loss) const {
  nlohmann::json r = {{"stage", stage_},
                      {"steps", step_},
                      {"final_loss", last_loss},
                      {"seconds", seconds_},
                      {"checkpoint", output_checkpoint()},
                      {"evaluations", evals_}};
  if (!evals_.empty()) {
    r["eval_loss_before"] = evals_.front()["loss"];
    r["eval_loss_after"] = evals_.back()["loss"];
  }
  return r;
}

nlohmann::json SFTTrainer::train() {
  // NB: the other ranks' next collective fails with this rank's message, rather than at their timeout.
  return dist_->reporting_failures([&] { return train_loop(); });
}

nlohmann::json SFTTrainer::train_loop() {
  const bool main = dist_->is_main();
  std::error_code ec;
  if (main) fs::create_directories(config_.output_dir, ec);
  if (ec) throw Error("output_dir " + config_.output_dir + ": cannot create (" + ec.message() + ")");
  double last_loss = 0;
  bool resumed = false;
  if (config_.checkpoint.resume) {
    if (main) {
      remove_stale_checkpoint_temporaries(checkpoints_dir());
      remove_stale_checkpoint_temporaries(config_.output_dir, {stage_});
    }
    // Rank 0 picks the checkpoint; every rank loads that one.
    std::optional<std::string> dir = main ? checkpoint_to_resume() : std::nullopt;
    if (dist_->active()) {
      const int64_t found = dir ? read_trainer_state(*dir).at("step").get<int64_t>() : -1;
      const int64_t s = static_cast<int64_t>(
          dist_->all_reduce_sum(main ? static_cast<double>(found) : 0.0, "the " + stage_ + " checkpoint to resume"));
      const bool is_final = dist_->all_reduce_sum(main && dir && *dir == output_checkpoint() ? 1.0 : 0.0,
                                                  "the " + stage_ + " checkpoint to resume") > 0;
      dir.reset();
      if (s >= 0) dir = is_final ? output_checkpoint() : checkpoint_dir(checkpoints_dir(), s);
      if (dir && !fs::is_directory(*dir)) {
        throw Error("checkpoint.resume: rank " + std::to_string(dist_->rank()) + " cannot see " + *dir +
                    ", which rank 0 resumes from: output_dir must be a folder every rank sees");
      }
    }
    if (dir) {
      last_loss = load_checkpoint(*dir);
      resumed = true;
      if (main) log::info(stage_ + ": resumed from " + *dir + " (step " + std::to_string(step_) + ")");
    }
  }
  const bool finished = resumed && step_ >= config_.sft.steps && fs::exists(output_checkpoint());
  if (finished) {
    if (main) log::info(stage_ + ": already finished in " + output_checkpoint());
    return report(last_loss);
  }
  if (main && !resumed) {
    // NB: a fresh run never shares its folder with an earlier one (keep_last would prune by step across both).
    const std::vector<std::string> earlier = {fs::path(checkpoints_dir()).filename().string(), stage_ + "_metrics.jsonl",
                                              stage_};
    if (auto aside = set_aside_previous_run(config_.output_dir, earlier, /*checkpoints=*/false)) {
      log::warn(stage_ + ": output_dir " + config_.output_dir + " held an earlier " + stage_ +
                " run, which this one does not resume; moved it to " + *aside);
    }
  }
  std::optional<MetricsWriter> metrics;
  if (main) {
    metrics.emplace((fs::path(config_.output_dir) / (stage_ + "_metrics.jsonl")).string(), resumed ? step_ : -1);
  }
  auto run_eval = [&] {
    evals_.push_back(evaluate());
    if (main && config_.logging.console) {
      log::info(stage_ + " eval at step " + std::to_string(step_) + ": loss " +
                log::fixed(evals_.back()["loss"].get<double>(), 4) + " per token");
    }
  };
  if (eval_pairs_ && evals_.empty()) run_eval();
  while (step_ < config_.sft.steps) {
    const auto start = std::chrono::steady_clock::now();
    const nlohmann::json m = step();
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (main) metrics->write(m);
    last_loss = m["loss"].get<double>();
    if (main && config_.logging.console && (step_ % config_.logging.log_every == 0 || step_ == config_.sft.steps)) {
      log::info(stage_ + " step " + std::to_string(step_) + "/" + std::to_string(config_.sft.steps) + " | loss " +
                log::fixed(last_loss, 4) + " | lr " + log::scientific(m["learning_rate"].get<double>(), 2));
    }
    if (eval_pairs_ && config_.sft.eval_every > 0 && step_ % config_.sft.eval_every == 0 &&
        step_ < config_.sft.steps) {
      run_eval();
    }
    const bool saved = config_.sft.save_every > 0 && step_ % config_.sft.save_every == 0 && step_ < config_.sft.steps;
    if (saved) {
      save_checkpoint(checkpoint_dir(checkpoints_dir(), step_), last_loss);
      if (main) prune_checkpoints(checkpoints_dir(), config_.checkpoint.keep_last);
    }
    // NB: every rank takes the same decision, whichever of them was signalled.
    if (step_ < config_.sft.steps && dist_->all_reduce_sum(stop_requested() ? 1.0 : 0.0, "the stop request") > 0) {
      if (!saved) {
        save_checkpoint(checkpoint_dir(checkpoints_dir(), step_), last_loss);
        if (main) prune_checkpoints(checkpoints_dir(), config_.checkpoint.keep_last);
      }
      if (main) {
        log::warn(stage_ + ": stopped at step " + std::to_string(step_) + " of " + std::to_string(config_.sft.steps) +
                  " on request; " + checkpoint_dir(checkpoints_dir(), step_) +
                  " holds it, and checkpoint.resume continues from there");
      }
      nlohmann::json r = report(last_loss);
      r["stopped"] = true;
      return r;
    }
  }
  if (eval_pairs_ && (evals_.empty() || evals_.back()["step"].get<int64_t>() != step_)) run_eval();
  // The final folder holds the whole state, so resuming a finished stage trains nothing.
  save_checkpoint(output_checkpoint(), last_loss);
  return report(last_loss);
}

// ---------------------------------------------------------------- Distiller

namespace {

std::shared_ptr<CausalLM> check_teacher(const std::shared_ptr<CausalLM>& student,
                                        const std::shared_ptr<CausalLM>& teacher) {
  if (!student) throw Error("distill: the student model is null");
  if (!teacher) throw Error("distill: the teacher model is null");
  if (teacher->vocab_size() != student->vocab_size()) {
    throw Error("distill.teacher: the teacher's vocabulary has " + std::to_string(teacher->vocab_size()) +
                " tokens and the student's " + std::to_string(student->vocab_size()) +
                "; distillation compares their distributions token by token, so both need the same tokenizer");
  }
  return teacher;
}

}  // namespace

Distiller::Distiller(TrainConfig config, std::shared_ptr<CausalLM> student, std::shared_ptr<CausalLM> teacher,
                     std::shared_ptr<const Tokenizer> tokenizer, PromptDataset pairs, std::shared_ptr<Distributed> dist)
    : SFTTrainer(std::move(config), student, check_teacher(student, teacher), std::move(tokenizer), std::move(pairs),
                 std::move(dist), "distill") {}

std::unique_ptr<Distiller> Distiller::from_config(const TrainConfig& config) {
  config.validate();
  if (config.sft.train.empty()) throw Error("sft.train: a JSONL file of prompt/completion pairs is required");
  if (config.distill.teacher.empty()) throw Error("distill.teacher: the teacher's folder is required");
  if (!fs::is_directory(config.distill.teacher)) {
    throw Error("distill.teacher: " + config.distill.teacher + " is not a folder");
  }
  std::shared_ptr<Distributed> dist = Distributed::from_env(config.distributed, config.model.device);
  std::shared_ptr<const Tokenizer> tokenizer = make_tokenizer(config.tokenizer, config.model.init_from);
  // NB: a teacher saved with its tokenizer must have the student's, id for id.
  std::shared_ptr<Tokenizer> teacher_tokenizer;
  try {
    teacher_tokenizer = load_tokenizer(config.distill.teacher);
  } catch (const Error&) {
  }
  if (teacher_tokenizer) {
    if (teacher_tokenizer->vocab_size() != tokenizer->vocab_size()) {
      throw Error("distill.teacher: " + config.distill.teacher + ": its tokenizer has " +
                  std::to_string(teacher_tokenizer->vocab_size()) + " tokens and the student's " +
                  std::to_string(tokenizer->vocab_size()) + "; both models need the same tokenizer");
    }
    for (int64_t id = 0; id < tokenizer->vocab_size(); ++id) {
      if (teacher_tokenizer->id_to_token(id) != tokenizer->id_to_token(id)) {
        throw Error("distill.teacher: " + config.distill.teacher + ": its tokenizer spells token " +
                    std::to_string(id) + " \"" + teacher_tokenizer->id_to_token(id) + "\" and the student's \"" +
                    tokenizer->id_to_token(id) + "\"; both models need the same tokenizer");
      }
    }
  }
  ModelConfig student_config = config.model;
  student_config.device = dist->device_for(config.model.device);
  auto student = make_model(student_config, *tokenizer, config.seed);
  ModelConfig teacher_config = student_config;
  teacher_config.init_from = config.distill.teacher;
  std::shared_ptr<CausalLM> teacher;
  try {
    teacher = make_model(teacher_config, *tokenizer, config.seed);
  } catch (const Error& e) {
    throw Error(std::string("distill.teacher: ") + e.what());
  }
  return std::make_unique<Distiller>(
      config, std::move(student), std::move(teacher), std::move(tokenizer),
      PromptDataset::from_jsonl(config.sft.train, sft_dataset_options(config.sft, config.data, config.seed)),
      std::move(dist));
}

}  // namespace grpo
