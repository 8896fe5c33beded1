// FunctionReward, the registry and RewardSet. RewardSet splits N samples into
// fixed chunks and runs (reward, chunk) tasks on a few threads; each task writes
// its own rows of its reward's column, so results do not depend on the threads.
#include "grpo/rewards/reward.h"


#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <sstream>
#include <thread>

#include "grpo/error.h"
#include "grpo/log.h"

namespace grpo {

// ---------------------------------------------------------------- FunctionReward

FunctionReward::FunctionReward(std::string name, PerSample fn)
    : name_(std::move(name)), per_sample_(std::move(fn)) {
  if (!per_sample_) throw Error("FunctionReward '" + name_ + "': the function is empty");
}

FunctionReward::FunctionReward(std::string name, Batched fn) : name_(std::move(name)), batched_(std::move(fn)) {
  if (!batched_) throw Error("FunctionReward '" + name_ + "': the function is empty");
}

std::vector<float> FunctionReward::score(const std::vector<Sample>& samples) {
  if (batched_) return batched_(samples);
  std::vector<float> out;
  out.reserve(samples.size());
  for (const Sample& s : samples) out.push_back(per_sample_(s));
  return out;
}

// ---------------------------------------------------------------- RewardRegistry

RewardRegistry& RewardRegistry::global() {
  static RewardRegistry* registry = [] {
    auto* r = new RewardRegistry();
    register_builtin_rewards(*r);
    return r;
  }();
  return *registry;
}

void RewardRegistry::register_factory(const std::string& name, RewardFactory factory) {
  if (name.empty()) throw Error("RewardRegistry: a reward name must not be empty");
  if (!factory) throw Error("RewardRegistry: the factory for '" + name + "' is empty");
  std::lock_guard<std::mutex> lock(mutex_);
  if (!factories_.emplace(name, std::move(factory)).second) {
    throw Error("RewardRegistry: a reward named '" + name + "' is already registered");
  }
}

bool RewardRegistry::contains(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return factories_.count(name) > 0;
}

std::vector<std::string> RewardRegistry::names() const {
  std::vector<std::string> out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& kv : factories_) out.push_back(kv.first);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::unique_ptr<Reward> RewardRegistry::create(const nlohmann::json& spec) const {
  if (!spec.is_object()) throw Error("RewardRegistry: a reward spec must be a JSON object, got " + spec.dump());
  auto it = spec.find("name");
  if (it == spec.end() || !it->is_string()) {
    throw Error("RewardRegistry: a reward spec needs a string \"name\", got " + spec.dump());
  }
  const std::string name = it->get<std::string>();
  RewardFactory factory;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto f = factories_.find(name);
    if (f != factories_.end()) factory = f->second;
  }
  if (!factory) {
    std::string known;
    for (const std::string& n : names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("RewardRegistry: unknown reward '" + name + "'; known rewards: " + known);
  }
  nlohmann::json options = spec;
  options.erase("name");
  options.erase("weight");
  std::unique_ptr<Reward> reward = factory(options);  // NB: called without the lock; factories may use the registry
  if (!reward) throw Error("RewardRegistry: the factory for '" + name + "' returned null");
  return reward;
}

// ---------------------------------------------------------------- RewardSet

namespace {

constexpr double kMaxTimeoutSeconds = 7 * 24 * 3600.0;  // a week: past it, say 0 (no limit)

std::string seconds_text(double s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

}  // namespace

void RewardSetConfig::validate() const {
  if (num_threads < 1) throw Error("RewardSet: num_threads must be >= 1, got " + std::to_string(num_threads));
  if (chunk_size < 1) throw Error("RewardSet: chunk_size must be >= 1, got " + std::to_string(chunk_size));
  if (on_error != "raise" && on_error != "zero") {
    throw Error("RewardSet: on_error must be \"raise\" or \"zero\", got \"" + on_error + "\"");
  }
  if (!(timeout_seconds >= 0 && timeout_seconds <= kMaxTimeoutSeconds)) {
    throw Error("RewardSet: timeout_seconds must be in [0, " + seconds_text(kMaxTimeoutSeconds) +
                "] (0 = no limit), got " + seconds_text(timeout_seconds));
  }
}

RewardSet::RewardSet(RewardSetConfig config) : config_(std::move(config)) { config_.validate(); }

RewardSet RewardSet::from_json(const nlohmann::json& config, const RewardRegistry& registry) {
  if (!config.is_object()) throw Error("RewardSet: the config must be a JSON object, got " + config.dump());
  RewardSetConfig c;
  for (const auto& kv : config.items()) {
    const std::string& key = kv.key();
    try {
      if (key == "num_threads") c.num_threads = kv.value().get<int64_t>();
      else if (key == "chunk_size") c.chunk_size = kv.value().get<int64_t>();
      else if (key == "on_error") c.on_error = kv.value().get<std::string>();
      else if (key == "timeout_seconds") c.timeout_seconds = kv.value().get<double>();
      else if (key == "rewards") continue;
      else throw Error("RewardSet: unknown config key \"" + key +
                       "\" (known: rewards, num_threads, chunk_size, on_error, timeout_seconds)");
    } catch (const nlohmann::json::exception& e) {
      throw Error("RewardSet: config key \"" + key + "\" has the wrong type: " + e.what());
    }
  }
  RewardSet set(c);
  auto rewards = config.find("rewards");
  if (rewards != config.end()) {
    if (!rewards->is_array()) throw Error("RewardSet: \"rewards\" must be an array of reward specs");
    for (const auto& spec : *rewards) set.add(spec, registry);
  }
  return set;
}

void RewardSet::add(std::unique_ptr<Reward> reward, float weight) {
  if (!reward) throw Error("RewardSet: the reward is null");
  if (!std::isfinite(weight)) {
    throw Error("RewardSet: the weight of reward '" + reward->name() + "' must be finite");
  }
  rewards_.push_back(std::move(reward));
  weights_.push_back(weight);
}

void RewardSet::add(const nlohmann::json& spec, const RewardRegistry& registry) {
  float weight = 1.0f;
  if (spec.is_object() && spec.contains("weight")) {
    if (!spec["weight"].is_number()) throw Error("RewardSet: \"weight\" must be a number, got " + spec.dump());
    weight = spec["weight"].get<float>();
  }
  add(registry.create(spec), weight);
}

std::vector<std::string> RewardSet::names() const {
  std::vector<std::string> out;
  for (const auto& r : rewards_) out.push_back(r->name());
  return out;
}

namespace {

// What went wrong for one sample of one reward; empty when nothing did.
std::string check_score(const std::vector<float>& got, size_t expected, size_t i) {
  if (got.size() != expected) {
    return "returned " + std::to_string(got.size()) + " scores for " + std::to_string(expected) + " samples";
  }
  if (!std::isfinite(got[i])) return "returned " + std::to_string(got[i]);
  return {};
}

// What one score() call gave: the scores, or why there are none.
struct CallResult {
  std::vector<float> scores;
  std::string error;        // empty when the call returned
  bool timed_out = false;   // the call is still running, abandoned
};

CallResult call_here(Reward& reward, const std::vector<Sample>& samples) {
  CallResult out;
  try {
    out.scores = reward.score(samples);
  } catch (const std::exception& e) {
    out.error = std::string("threw: ") + e.what();
  } catch (...) {
    out.error = "threw a non-standard exception";
  }
  return out;
}

// reward.score(samples) within `timeout` seconds (0 = no limit). With a limit
// the call runs on a thread of its own holding its own copies of the samples
// and their records, so a call abandoned past the limit touches nothing of the
// caller's when it goes on running (or returns, much later).
CallResult call_reward(const std::shared_ptr<Reward>& reward, const std::vector<Sample>& samples, double timeout) {
  if (timeout <= 0) return call_here(*reward, samples);
  struct Pending {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    CallResult result;
    std::vector<nlohmann::json> records;
    std::vector<Sample> samples;
  };
  auto pending = std::make_shared<Pending>();
  pending->samples = samples;
  pending->records.reserve(samples.size());  // NB: no reallocation below, so the pointers hold
  for (Sample& s : pending->samples) {
    if (s.fields == nullptr) continue;
    pending->records.push_back(*s.fields);
    s.fields = &pending->records.back();
  }
  std::thread([pending, reward] {
    CallResult r = call_here(*reward, pending->samples);
    std::lock_guard<std::mutex> lock(pending->mutex);
    pending->result = std::move(r);
    pending->done = true;
    pending->cv.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(pending->mutex);
  if (!pending->cv.wait_for(lock, std::chrono::duration<double>(timeout), [&] { return pending->done; })) {
    CallResult out;
    out.timed_out = true;
    out.error = "did not return within " + seconds_text(timeout) + " s (timeout_seconds)";
    return out;
  }
  return std::move(pending->result);
}

// Scores rows [begin, end) of one reward into col; failures go to `errors` (one
// per row); calls abandoned past the timeout are counted in `hung`.
void score_chunk(const std::shared_ptr<Reward>& reward, const std::vector<Sample>& samples, int64_t begin,
                 int64_t end, double timeout, float* col, std::vector<std::string>& errors,
                 std::atomic<int64_t>& hung) {
  const std::vector<Sample> chunk(samples.begin() + begin, samples.begin() + end);
  const CallResult whole = call_reward(reward, chunk, timeout);
  hung += whole.timed_out ? 1 : 0;
  std::string chunk_error = whole.error;
  if (chunk_error.empty() && whole.scores.size() != chunk.size()) chunk_error = check_score(whole.scores, chunk.size(), 0);
  if (chunk_error.empty()) {
    for (int64_t i = begin; i < end; ++i) {
      std::string err = check_score(whole.scores, chunk.size(), static_cast<size_t>(i - begin));
      if (err.empty()) col[i] = whole.scores[static_cast<size_t>(i - begin)];
      else errors[static_cast<size_t>(i)] = std::move(err);
    }
    return;
  }
  // The chunk failed as a whole: score its samples one by one to find the culprits.
  for (int64_t i = begin; i < end; ++i) {
    const CallResult one = call_reward(reward, {samples[static_cast<size_t>(i)]}, timeout);
    std::string err = one.error.empty() ? check_score(one.scores, 1, 0) : one.error;
    if (err.empty()) col[i] = one.scores[0];
    else errors[static_cast<size_t>(i)] = std::move(err);
    if (one.timed_out) {
      // NB: one hung sample is enough to name; the rest of the chunk is not tried,
      // so a reward that hangs on everything costs two timeouts per chunk, not one per sample.
      ++hung;
      for (int64_t k = i + 1; k < end; ++k) {
        errors[static_cast<size_t>(k)] = "not scored: the reward hung on sample " + std::to_string(i) + " of its chunk";
      }
      return;
    }
  }
  // NB: a batched reward may fail on a chunk yet succeed one sample at a time
  // (e.g. a wrong count); the chunk still counts as failed so no score depends on chunking.
  bool any = false;
  for (int64_t i = begin; i < end; ++i) any |= !errors[static_cast<size_t>(i)].empty();
  if (!any) {
    for (int64_t i = begin; i < end; ++i) {
      col[i] = 0.0f;
      errors[static_cast<size_t>(i)] = chunk_error;
    }
  }
}

}  // namespace

RewardScores RewardSet::score(const std::vector<Sample>& samples) const {
  const int64_t N = static_cast<int64_t>(samples.size());
  const int64_t R = size();
  RewardScores out;
  out.names = names();
  out.weights = Eigen::Map<const Eigen::VectorXf>(weights_.data(), R);
  out.per_function = Eigen::MatrixXf::Zero(N, R);  // column-major: each reward's column is contiguous

  const int64_t C = config_.chunk_size;
  const int64_t chunks = (N + C - 1) / C;
  const int64_t tasks = R * chunks;
  // errors[r][i]: why reward r failed on sample i, empty when it did not.
  std::vector<std::vector<std::string>> errors(static_cast<size_t>(R), std::vector<std::string>(static_cast<size_t>(N)));
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> hung{0};
  auto worker = [&] {
    for (int64_t t = next++; t < tasks; t = next++) {
      const int64_t r = t / chunks, c = t % chunks;
      const int64_t begin = c * C, end = std::min(N, begin + C);
      score_chunk(rewards_[static_cast<size_t>(r)], samples, begin, end, config_.timeout_seconds,
                  out.per_function.col(r).data(), errors[static_cast<size_t>(r)], hung);
    }
  };
  const int64_t threads = std::min<int64_t>(config_.num_threads, tasks);
  if (threads <= 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    for (int64_t k = 0; k < threads; ++k) pool.emplace_back(worker);
    for (auto& th : pool) th.join();
  }

  std::vector<char> failed(static_cast<size_t>(N), 0);
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t i = 0; i < N; ++i) {
      const std::string& err = errors[static_cast<size_t>(r)][static_cast<size_t>(i)];
      if (err.empty()) continue;
      if (config_.on_error == "raise") {
        throw Error("RewardSet: reward '" + out.names[static_cast<size_t>(r)] + "' failed on sample " +
                    std::to_string(i) + ": " + err);
      }
      if (failures_logged_ < kFailuresLogged) {
        // NB: the first few failures of a reward set are logged whole (a reward that fails on everything
        // says so at once); after them RewardScores::failed_samples counts them.
        ++failures_logged_;
        log::warn("reward '" + out.names[static_cast<size_t>(r)] + "' failed on sample " + std::to_string(i) +
                  " and scored 0 (on_error \"zero\"): " + err +
                  (failures_logged_ == kFailuresLogged ? " (further failures are counted, not logged)" : ""));
      }
      failed[static_cast<size_t>(i)] = 1;
    }
  }
  out.failed_samples = std::count(failed.begin(), failed.end(), 1);
  hung_calls_ += hung.load();
  if (hung_calls_ >= kMaxHungCalls) {
    throw Error("RewardSet: " + std::to_string(hung_calls_) + " reward calls did not return within timeout_seconds (" +
                seconds_text(config_.timeout_seconds) + " s) and are still running; not scoring further batches");
  }

  out.total = out.per_function * out.weights;
  out.mean = Eigen::VectorXf::Zero(R);
  out.std = Eigen::VectorXf::Zero(R);
  if (N > 0) {
    for (int64_t r = 0; r < R; ++r) {
      // NB: in double, so a large N does not lose the small differences.
      const auto col = out.per_function.col(r).cast<double>();
      const double mean = col.mean();
      out.mean(r) = static_cast<float>(mean);
      out.std(r) = static_cast<float>(std::sqrt((col.array() - mean).square().mean()));
    }
  }
  return out;
}

}  // namespace grpo
