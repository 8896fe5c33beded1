// Rewards: functions from (prompt, completion, dataset record) to a float, a
// registry that builds them from JSON specs, and RewardSet, which runs several
// on a thread pool and weighs them. Shapes: N samples, R rewards.
#pragma once

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace grpo {

// One completion to score. `fields` points at its prompt's dataset record (e.g.
// {"answer": "42"}) and must outlive the score call; null when there is none.
struct Sample {
  std::string prompt;
  std::string completion;
  int64_t completion_tokens = 0;         // kept tokens, EOS included
  bool truncated = false;                // no EOS within max_new_tokens
  const nlohmann::json* fields = nullptr;
};

// A reward returns one finite float per sample. RewardSet calls score() from
// several threads at once on disjoint chunks of a batch, so it must be
// thread-safe (the built-ins are stateless).
class Reward {
 public:
  virtual ~Reward() = default;
  virtual std::string name() const = 0;
  virtual std::vector<float> score(const std::vector<Sample>& samples) = 0;  // (samples.size())
};

// A reward from a lambda: per sample, or batched (one float per sample).
class FunctionReward : public Reward {
 public:
  using PerSample = std::function<float(const Sample&)>;
  using Batched = std::function<std::vector<float>(const std::vector<Sample>&)>;

  FunctionReward(std::string name, PerSample fn);
  FunctionReward(std::string name, Batched fn);

  std::string name() const override { return name_; }
  std::vector<float> score(const std::vector<Sample>& samples) override;

 private:
  std::string name_;
  PerSample per_sample_;
  Batched batched_;
};

// Builds a reward from its options (the spec less "name" and "weight").
using RewardFactory = std::function<std::unique_ptr<Reward>(const nlohmann::json& options)>;

// Names → factories. Thread-safe. global() holds the built-ins, each 1/0 unless said:
//   accuracy       the completion's answer against the record's, compared as values:
//                  integers and fractions exactly; decimals, \pi and roots within
//                  the tolerance; \frac, \sqrt, powers, ±, intervals, tuples, sets
//                  (any order), matrices, units, %, $, degrees, "x = 5" (its right
//                  side); variables at three fixed points. The answer: the line after
//                  the completion's last answer_after marker (its first number if the
//                  line is no answer); without a marker, <answer>…</answer> (its
//                  \boxed{} if any), else the last \boxed{…}, else the last number in
//                  the text ("1,234" is 1234, "3,4" two numbers, "5-10" a range).
//                  What does not parse compares as a string, per match.
//                  tolerance = 1e-6 (|a − b| <= tolerance · max(|a|, |b|), or 1e-12),
//                  match = "normalized" (no spaces, \left/\right, \text wrappers; lowercase)
//                  | "exact" (trim), answer_field = "answer" (a missing field is an error
//                  naming the sample), answer_after = "" (e.g. "####": the record's
//                  answer is the text after its last marker, which must be there).
//   format         <think>…</think><answer>…</answer>. mode = "strict" (the whole
//                  completion, whitespace allowed around) | "lenient" (in order, anywhere).
//   length         scale · (target − tokens) / target. target (required), scale = 1.
//   soft_overlong  DAPO: 0 up to max_length − buffer tokens, linear to −1 at max_length,
//                  −1 past it. max_length, buffer (both required).
//   regex          PCRE2 pattern found in the completion. pattern (required),
//                  case_insensitive = false, utf = false (bytes; true: UTF-8, invalid
//                  sequences never match), match_limit = 1e6 (at most 1e8), depth_limit =
//                  1e4 (at most 1e6), heap_limit_kib = 2e4 (at most 4 GiB), on_limit =
//                  "no_match" | "raise". An empty pattern is refused.
//   language       DeepSeek-R1's language consistency: the share in [0, 1] of the
//                  region's letters that are in the target script(s). Letters are code
//                  points of a script; digits, punctuation, symbols, tags (<think>), LaTeX
//                  command names and invalid UTF-8 bytes are not counted. script
//                  (required): a name or a list of them: latin, greek, cyrillic, armenian,
//                  hebrew, arabic, devanagari, bengali, gurmukhi, gujarati, oriya, tamil,
//                  telugu, kannada, malayalam, sinhala, thai, lao, tibetan, myanmar,
//                  georgian, hangul, ethiopic, khmer, hiragana, katakana, han; kana
//                  (hiragana, katakana), cjk (han, kana, hangul). region = "think" (up to
//                  the first </think>, from the <think> before it or the start; with no
//                  </think>, after <think> to the end; with neither, all) | "completion",
//                  skip_math = true ($…$, $$…$$, \(…\), \[…\] not counted), min_share =
//                  null (set: 1 when the share is >= min_share, else 0), empty = 0 (the
//                  score of a region without letters).
// Unknown option keys are an error naming the key.
class RewardRegistry {
 public:
  RewardRegistry() = default;               // empty
  static RewardRegistry& global();          // the built-ins, plus what users register

  // Raises grpo::Error when the name is empty, taken, or the factory is null.
  void register_factory(const std::string& name, RewardFactory factory);
  bool contains(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted

  // spec: {"name": "accuracy", "weight": 1.0, ...options}. Raises grpo::Error for
  // a spec that is not an object, an unknown name (listing the known ones), or
  // options the factory rejects (built-ins name any unknown key).
  std::unique_ptr<Reward> create(const nlohmann::json& spec) const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, RewardFactory> factories_;
};

// Registers the built-in rewards into `registry` (global() already has them).
void register_builtin_rewards(RewardRegistry& registry);

struct RewardScores {
  Eigen::MatrixXf per_function;     // (N, R) each reward's score, 0 where it failed in "zero" mode
  Eigen::VectorXf total;            // (N) per_function · weights
  std::vector<std::string> names;   // (R)
  Eigen::VectorXf weights;          // (R)
  Eigen::VectorXf mean;             // (R) each column's mean over the N samples
  Eigen::VectorXf std;              // (R) each column's population standard deviation
  int64_t failed_samples = 0;       // samples with at least one failed reward ("zero" mode)
};

struct RewardSetConfig {
  int64_t num_threads = 1;          // worker threads; results do not depend on it
  int64_t chunk_size = 32;          // samples per score() call; fixed, so results do not depend on threads
  std::string on_error = "raise";   // "raise": a failure is a grpo::Error; "zero": score 0 and count it
  // The longest one score() call of a reward may take, in seconds; 0 = no limit.
  // A call past it fails: its chunk is then scored one sample at a time (each
  // with the same limit) until the sample that hangs is found and named.
  // The hung call is left running on a thread of its own, with its own copy of
  // the samples; after kMaxHungCalls of them the set refuses to go on, even
  // with on_error "zero".
  double timeout_seconds = 300.0;

  void validate() const;            // raises grpo::Error naming the bad field
};

// Several weighted rewards. A failure is a reward that throws, returns the wrong
// count, or a NaN/Inf; the error names the reward and the sample index.
class RewardSet {
 public:
  explicit RewardSet(RewardSetConfig config = {});
  // config: {"rewards": [spec, ...], "num_threads": 4, "chunk_size": 32, "on_error": "zero",
  // "timeout_seconds": 300};
  // specs are built with `registry`. Raises grpo::Error naming any unknown key.
  static RewardSet from_json(const nlohmann::json& config,
                             const RewardRegistry& registry = RewardRegistry::global());

  void add(std::unique_ptr<Reward> reward, float weight = 1.0f);
  // Builds the reward from a spec with the registry; "weight" defaults to 1.
  void add(const nlohmann::json& spec, const RewardRegistry& registry = RewardRegistry::global());

  int64_t size() const { return static_cast<int64_t>(rewards_.size()); }  // R
  std::vector<std::string> names() const;
  const RewardSetConfig& config() const { return config_; }

  // With on_error "zero" a failed reward scores 0 and the set's first
  // failures are logged (reward, sample, error), the rest counted.
  RewardScores score(const std::vector<Sample>& samples) const;

 private:
  static constexpr int64_t kFailuresLogged = 10;  // on_error "zero": failures logged as warnings, then only counted
 public:
  static constexpr int64_t kMaxHungCalls = 8;     // reward calls past the timeout that a set tolerates

 private:

  RewardSetConfig config_;
  std::vector<std::shared_ptr<Reward>> rewards_;
  std::vector<float> weights_;
  mutable int64_t failures_logged_ = 0;
  mutable int64_t hung_calls_ = 0;                // calls abandoned past the timeout, still running
};

}  // namespace grpo
