// Scores JSONL cases with the built-in rewards, for the Python comparisons in
// tests/rewards/: each stdin line {"completion": ..., "answer": ..., "options":
// {...}} (options: a reward spec, "name" defaulting to "accuracy") prints one
// score per line. A bad line is reported with its number and exits 1.
#include <grpo/error.h>
#include <grpo/rewards/reward.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>

int main() {
  std::ios::sync_with_stdio(false);
  std::map<std::string, std::unique_ptr<grpo::Reward>> rewards;  // by the spec's text
  std::string line;
  for (long number = 1; std::getline(std::cin, line); ++number) {
    if (line.empty()) continue;
    try {
      const nlohmann::json c = nlohmann::json::parse(line);
      nlohmann::json spec = c.value("options", nlohmann::json::object());
      if (!spec.contains("name")) spec["name"] = "accuracy";
      auto& reward = rewards[spec.dump()];
      if (!reward) reward = grpo::RewardRegistry::global().create(spec);
      const nlohmann::json record = {{"answer", c.at("answer")}};
      const grpo::Sample sample{"", c.at("completion").get<std::string>(), 0, false, &record};
      std::cout << reward->score({sample})[0] << "\n";
    } catch (const std::exception& e) {
      std::cerr << "grpo_reward_probe: line " << number << ": " << e.what() << "\n";
      return 1;
    }
  }
  return 0;
}
