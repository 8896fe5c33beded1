// A user's own reward next to the built-ins: register a factory under a name,
// name it in a JSON config with weights, and score a few completions.
#include <grpo/reward.h>

#include <iostream>
#include <memory>

int main() {
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
      {"name": "no_hedging", "weight": 0.25, "word": "maybe"}
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

  // Expected totals: 1 + 0.5, 0.5 - 0.25, 1.
  const bool ok = scores.total(0) == 1.5f && scores.total(1) == 0.25f && scores.total(2) == 1.0f;
  return ok ? 0 : 1;
}
