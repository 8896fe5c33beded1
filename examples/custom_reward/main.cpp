// A user's own rewards next to the built-ins, one as a lambda and one as a
// class: register each under a name, name them in a JSON config with weights,
// and score a few completions.
#include <grpo/rewards/reward.h>

#include <iostream>
#include <memory>

// "short_thinking": 1 when the <think> block has at most `max_chars` characters, else 0.
class ShortThinking : public grpo::Reward {
 public:
  explicit ShortThinking(size_t max_chars) : max_chars_(max_chars) {}
  std::string name() const override { return "short_thinking"; }
  std::vector<float> score(const std::vector<grpo::Sample>& samples) override {
    std::vector<float> out;
    for (const grpo::Sample& s : samples) {
      const size_t open = s.completion.find("<think>"), close = s.completion.find("</think>");
      const bool ok = open != std::string::npos && close != std::string::npos && close > open &&
                      close - open - 7 <= max_chars_;
      out.push_back(ok ? 1.0f : 0.0f);
    }
    return out;
  }

 private:
  size_t max_chars_;
};

int main() {
  grpo::RewardRegistry::global().register_factory("short_thinking", [](const nlohmann::json& options) {
    return std::make_unique<ShortThinking>(options.value("max_chars", size_t{10}));
  });

  // "no_hedging": -1 when the completion says "maybe", else 0; option "word".
  grpo::RewardRegistry::global().register_factory("no_hedging", [](const nlohmann::json& options) {
    const std::string word = options.value("word", std::string("maybe"));
    return std::make_unique<grpo::FunctionReward>("no_hedging", [word](const grpo::Sample& s) {
      return s.completion.find(word) == std::string::npos ? 0.0f : -1.0f;
    });
  });

  const auto config = nlohmann::json::parse(R"({
    "num_threads": 2, "on_error": "raise",
    "rewards": [
      {"name": "accuracy", "weight": 1.0},
      {"name": "format", "weight": 0.5, "mode": "strict"},
      {"name": "no_hedging", "weight": 0.25, "word": "maybe"},
      {"name": "short_thinking", "weight": 0.125, "max_chars": 8}
    ]})");
  const grpo::RewardSet rewards = grpo::RewardSet::from_json(config);

  const nlohmann::json record = {{"answer", "19"}};
  const std::vector<grpo::Sample> samples = {
      {"12+7=", "<think>12+7=19</think><answer>19</answer>", 12, false, &record},
      {"12+7=", "<think>maybe 18</think><answer>18</answer>", 12, false, &record},
      {"12+7=", "it is 19", 3, false, &record},
  };
  const grpo::RewardScores scores = rewards.score(samples);
  for (size_t r = 0; r < scores.names.size(); ++r) std::cout << scores.names[r] << "\t";
  std::cout << "total\n" << scores.per_function << "\n" << scores.total.transpose() << "\n";

  // Expected totals: 1 + 0.5 + 0.125 (7 thinking characters), 0.5 - 0.25 (8 characters, "maybe") + 0.125, 1.
  const bool ok = scores.total(0) == 1.625f && scores.total(1) == 0.375f && scores.total(2) == 1.0f;
  return ok ? 0 : 1;
}
