// RejectionSampler: a JsonlReader over the prompts, a batch of them at a time
// through GroupSampler (each prompt sampled from a seed of its index in the
// dataset, so batching and resuming change nothing), RewardSet over the
// batch, the acceptance rules per completion, and appends to the output files
// followed by an atomic progress.json recording their sizes: a resumed run cuts
// the files back to those sizes, skips the prompts done and goes on.
#include "grpo/train/rejection_sampling.h"

#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "grpo/data/jsonl.h"
#include "grpo/data/prompt_dataset.h"
#include "grpo/error.h"
#include "grpo/files.h"
#include "grpo/log.h"
#include "grpo/stop.h"
#include "grpo/rollout/sampler.h"
#include "grpo/train/checkpoint.h"
#include "grpo/train/factory.h"
#include "random.h"

namespace grpo {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kRejectionSeed = 4000;  // derive_seed purpose of the per-prompt sampling seeds

// The counters summary.json reports, kept in progress.json between batches.
struct Counts {
  int64_t prompts = 0, samples = 0, accepted = 0, written = 0, prompts_with_accepted = 0, prompts_correct = 0,
          correct_samples = 0;
  double seconds = 0;

  nlohmann::json to_json() const {
    return {{"prompts", prompts},
            {"samples", samples},
            {"accepted", accepted},
            {"written", written},
            {"prompts_with_accepted", prompts_with_accepted},
            {"prompts_correct", prompts_correct},
            {"correct_samples", correct_samples},
            {"seconds", seconds}};
  }
  static Counts from_json(const nlohmann::json& j) {
    Counts c;
    c.prompts = j.at("prompts").get<int64_t>();
    c.samples = j.at("samples").get<int64_t>();
    c.accepted = j.at("accepted").get<int64_t>();
    c.written = j.at("written").get<int64_t>();
    c.prompts_with_accepted = j.at("prompts_with_accepted").get<int64_t>();
    c.prompts_correct = j.at("prompts_correct").get<int64_t>();
    c.correct_samples = j.at("correct_samples").get<int64_t>();
    c.seconds = j.at("seconds").get<double>();
    return c;
  }
};

int64_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

// Appends `text` to `path` and flushes; grpo::Error naming the path on failure.
void append(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << text;
  out.flush();
  if (!out) throw Error(path + ": cannot append (disk full or not writable?)");
}

}  // namespace

RejectionSampler::RejectionSampler(TrainConfig config, std::shared_ptr<CausalLM> model,
                                   std::shared_ptr<const Tokenizer> tokenizer, RewardSet rewards,
                                   nlohmann::json source)
    : config_(std::move(config)),
      model_(std::move(model)),
      tokenizer_(std::move(tokenizer)),
      rewards_(std::move(rewards)),
      source_(std::move(source)) {
  config_.validate();
  if (!model_) throw Error("rejection sampling: the model is null");
  if (!tokenizer_) throw Error("rejection sampling: the tokenizer is null");
  if (config_.rejection.prompts.empty() && config_.data.train.empty()) {
    throw Error("rejection.prompts: no prompts to sample (rejection.prompts and data.train are both empty)");
  }
  const std::vector<std::string> names = rewards_.names();
  for (const auto& kv : config_.rejection.min_rewards.items()) {
    if (std::find(names.begin(), names.end(), kv.key()) == names.end()) {
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
      throw Error("rejection.min_rewards." + kv.key() + ": no reward of that name (the run's rewards: " +
                  (list.empty() ? "none" : list) + ")");
    }
  }
}

std::unique_ptr<RejectionSampler> RejectionSampler::from_config(const TrainConfig& config,
                                                                const std::string& checkpoint) {
  config.validate();
  ModelConfig m = config.model;
  if (!checkpoint.empty()) m.init_from = checkpoint;
  if (m.init_from.empty()) throw Error("no model to sample from: give a checkpoint or model.init_from");
  apply_threads(config.threads);
  apply_allow_tf32(m.allow_tf32);
  std::shared_ptr<const Tokenizer> tokenizer = make_tokenizer(config.tokenizer, m.init_from);
  auto model = make_model(m, *tokenizer, config.seed);
  nlohmann::json source = {{"checkpoint", m.init_from}, {"step", nullptr}};
  if (fs::exists(fs::path(m.init_from) / "trainer_state.json")) {
    source["step"] = read_trainer_state(m.init_from).value("step", nlohmann::json());
  }
  return std::make_unique<RejectionSampler>(config, std::move(model), std::move(tokenizer),
                                            RewardSet::from_json(config.rewards), std::move(source));
}

std::string RejectionSampler::output_dir() const {
  return config_.rejection.output.empty() ? (fs::path(config_.output_dir) / "rejection").string()
                                          : config_.rejection.output;
}

std::string RejectionSampler::accepted_path() const { return (fs::path(output_dir()) / "accepted.jsonl").string(); }

nlohmann::json RejectionSampler::run() {
  const RejectionConfig& rc = config_.rejection;
  const fs::path out(output_dir());
  const std::string accepted_file = accepted_path(), prompts_file = (out / "prompts.jsonl").string();
  const std::string progress_file = (out / "progress.json").string(), summary_file = (out / "summary.json").string();
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw Error(out.string() + ": cannot create (" + ec.message() + ")");

  // Resume: a finished folder is returned as is; a started one is cut back to its last finished batch.
  Counts counts;
  if (config_.checkpoint.resume && fs::exists(summary_file)) {
    nlohmann::json summary = read_json_file(summary_file, "a rejection sampling summary");
    if (summary.value("complete", false)) {
      log::info("rejection sampling: already finished in " + out.string());
      return summary;
    }
  }
  if (config_.checkpoint.resume && fs::exists(progress_file)) {
    const nlohmann::json progress = read_json_file(progress_file, "rejection sampling progress");
    try {
      counts = Counts::from_json(progress.at("counts"));
      const int64_t a = progress.at("accepted_bytes").get<int64_t>(), p = progress.at("prompts_bytes").get<int64_t>();
      if (file_size_or_zero(accepted_file) < a || file_size_or_zero(prompts_file) < p) {
        throw Error(out.string() + ": accepted.jsonl or prompts.jsonl is shorter than progress.json records; "
                    "the folder was changed by hand: remove it to start again");
      }
      fs::resize_file(accepted_file, static_cast<uintmax_t>(a));
      fs::resize_file(prompts_file, static_cast<uintmax_t>(p));
    } catch (const nlohmann::json::exception& e) {
      throw Error(progress_file + ": malformed: " + e.what());
    }
    log::info("rejection sampling: resumed after " + std::to_string(counts.prompts) + " prompts");
  } else {
    write_file_atomic(accepted_file, "");
    write_file_atomic(prompts_file, "");
    fs::remove(summary_file, ec);
  }

  const std::string prompts_path = rc.prompts.empty() ? config_.data.train : rc.prompts;
  JsonlReader reader(prompts_path, "rejection.prompts");
  for (int64_t skipped = 0; skipped < counts.prompts; ++skipped) {
    if (!reader.next()) throw Error(prompts_path + ": has fewer prompts than " + progress_file + " records as done");
  }
  PromptDatasetOptions options = dataset_options(config_.data, config_.seed);
  options.shuffle = false;

  Policy policy(model_);
  GroupSamplerConfig sc;
  sc.group_size = rc.samples_per_prompt;
  sc.generation = config_.sampling.to_generation();
  sc.generation.eos_ids = stop_ids(config_.sampling, *tokenizer_);
  sc.generation.seed = config_.seed;
  GroupSampler sampler(policy, tokenizer_, sc);
  const std::vector<std::string> names = rewards_.names();
  const auto column = [&](const std::string& name) -> int64_t {
    const auto it = std::find(names.begin(), names.end(), name);
    return it == names.end() ? -1 : static_cast<int64_t>(it - names.begin());
  };
  const int64_t accuracy_column = config_.eval.accuracy_reward.empty() ? -1 : column(config_.eval.accuracy_reward);
  std::vector<std::pair<int64_t, double>> minimums;
  for (const auto& kv : rc.min_rewards.items()) minimums.emplace_back(column(kv.key()), kv.value().get<double>());
  const uint64_t base_seed = derive_seed(config_.seed, 0, kRejectionSeed);
  const std::string completion_key = config_.sft.completion_key;

  while (rc.limit == 0 || counts.prompts < rc.limit) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<nlohmann::json> records;
    std::vector<int64_t> lines;
    while (static_cast<int64_t>(records.size()) < rc.prompts_per_batch &&
           (rc.limit == 0 || counts.prompts + static_cast<int64_t>(records.size()) < rc.limit)) {
      std::optional<nlohmann::json> r = reader.next();
      if (!r) break;
      records.push_back(std::move(*r));
      lines.push_back(reader.line());
    }
    if (records.empty()) break;
    const PromptDataset batch_prompts = PromptDataset::from_lines(prompts_path, records, lines, options);
    std::vector<PromptRecord> prompts;
    std::vector<uint64_t> seeds;
    for (int64_t i = 0; i < batch_prompts.size(); ++i) {
      prompts.push_back(batch_prompts.get(i));
      seeds.push_back(splitmix64(base_seed + static_cast<uint64_t>(counts.prompts + i)));
    }
    const RolloutBatch batch = sampler.sample(prompts, seeds);
    const RewardScores scores = rewards_.score(batch.samples());
    const torch::Tensor truncated = batch.truncated.cpu();
    const int64_t K = rc.samples_per_prompt;

    std::string accepted_text, prompts_text;
    for (int64_t p = 0; p < batch.num_prompts; ++p) {
      std::vector<int64_t> accepted;  // rows
      std::set<std::string> seen;
      int64_t correct = 0, passed = 0;
      for (int64_t g = 0; g < K; ++g) {
        const int64_t row = p * K + g;
        if (accuracy_column >= 0 && scores.per_function(row, accuracy_column) >= 1.0f) ++correct;
        bool ok = rc.accept_truncated || !truncated[row].item<bool>();
        ok = ok && (rc.max_tokens == 0 || batch.completion_lengths[static_cast<size_t>(row)] <= rc.max_tokens);
        for (const auto& [c, minimum] : minimums) ok = ok && scores.per_function(row, c) >= minimum;
        if (!ok) continue;
        ++passed;
        if (rc.dedupe && !seen.insert(batch.completion_texts[static_cast<size_t>(row)]).second) continue;
        accepted.push_back(row);
      }
      if (rc.keep == "best" && accepted.size() > 1) {
        // NB: the highest total, then the fewest tokens, then the first sampled.
        const int64_t best = *std::min_element(accepted.begin(), accepted.end(), [&](int64_t a, int64_t b) {
          if (scores.total(a) != scores.total(b)) return scores.total(a) > scores.total(b);
          if (batch.completion_lengths[static_cast<size_t>(a)] != batch.completion_lengths[static_cast<size_t>(b)]) {
            return batch.completion_lengths[static_cast<size_t>(a)] < batch.completion_lengths[static_cast<size_t>(b)];
          }
          return a < b;
        });
        accepted = {best};
      }
      for (int64_t row : accepted) {
        nlohmann::json pair = batch.prompts[static_cast<size_t>(p)].fields;
        pair[completion_key] = batch.completion_texts[static_cast<size_t>(row)];
        nlohmann::json per_reward = nlohmann::json::object();
        for (size_t c = 0; c < names.size(); ++c) per_reward[names[c]] = scores.per_function(row, static_cast<int64_t>(c));
        pair["rewards"] = per_reward;
        pair["reward"] = scores.total(row);
        pair["source"] = source_;
        accepted_text += json_text(pair) + "\n";
      }
      const int64_t index = counts.prompts + p;
      prompts_text += nlohmann::json{{"index", index},
                                     {"line", lines[static_cast<size_t>(p)]},
                                     {"sampled", K},
                                     {"accepted", passed},
                                     {"acceptance_rate", static_cast<double>(passed) / static_cast<double>(K)},
                                     {"written", accepted.size()},
                                     {"correct", accuracy_column >= 0 ? nlohmann::json(correct) : nlohmann::json()}}
                          .dump() +
                      "\n";
      counts.samples += K;
      counts.accepted += passed;
      counts.written += static_cast<int64_t>(accepted.size());
      counts.prompts_with_accepted += accepted.empty() ? 0 : 1;
      counts.prompts_correct += correct > 0 ? 1 : 0;
      counts.correct_samples += correct;
    }
    counts.prompts += batch.num_prompts;
    counts.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    append(accepted_file, accepted_text);
    append(prompts_file, prompts_text);
    write_file_atomic(progress_file, nlohmann::json{{"accepted_bytes", file_size_or_zero(accepted_file)},
                                                    {"prompts_bytes", file_size_or_zero(prompts_file)},
                                                    {"counts", counts.to_json()}}
                                         .dump(2) +
                                         "\n");
    if (config_.logging.console) {
      log::info("rejection sampling: " + std::to_string(counts.prompts) + " prompts, " +
                std::to_string(counts.written) + " pairs written, acceptance " +
                log::fixed(counts.samples ? static_cast<double>(counts.accepted) / counts.samples : 0.0, 3));
    }
    if (stop_requested()) {
      // NB: every batch so far is on disk with its progress record, so the next run continues after it.
      log::warn("rejection sampling: stopped on request after " + std::to_string(counts.prompts) +
                " prompts; running it again continues from there");
      nlohmann::json stopped = counts.to_json();
      stopped["stopped"] = true;
      stopped["complete"] = false;
      stopped["accepted_file"] = accepted_file;
      return stopped;
    }
  }

  nlohmann::json summary = counts.to_json();
  const double prompts = std::max<int64_t>(1, counts.prompts), samples = std::max<int64_t>(1, counts.samples);
  summary["k"] = rc.samples_per_prompt;
  summary["acceptance_rate"] = counts.accepted / samples;
  summary["prompt_acceptance_rate"] = counts.prompts_with_accepted / prompts;
  summary["pass_at_k"] = accuracy_column >= 0 ? nlohmann::json(counts.prompts_correct / prompts) : nlohmann::json();
  summary["mean_accuracy"] = accuracy_column >= 0 ? nlohmann::json(counts.correct_samples / samples) : nlohmann::json();
  summary["source"] = source_;
  summary["accepted_file"] = accepted_file;
  summary["complete"] = true;
  write_file_atomic(summary_file, json_text(summary, 2) + "\n");
  return summary;
}

}  // namespace grpo
