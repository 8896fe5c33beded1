// The trainer from C++, as in the README: your own model, tokenizer, rewards
// and prompts go in, GRPO runs with callbacks, and the policy comes out. Here
// the task is tiny (make the completion mostly 'a'), so it runs in seconds.
#include <grpo/models/transformer.h>
#include <grpo/tokenizers/char_tokenizer.h>
#include <grpo/train/grpo_trainer.h>

#include <iostream>

int main() {
  grpo::TrainConfig config;                 // or grpo::load_config("my.json", {"grpo.steps=20"})
  config.output_dir = "runs/trainer_api";
  config.grpo.steps = 20;
  config.grpo.prompts_per_step = 4;
  config.grpo.group_size = 8;
  config.sampling.max_new_tokens = 8;
  config.optimizer.lr = 3e-3;
  config.checkpoint.resume = false;

  auto tokenizer = std::make_shared<grpo::CharTokenizer>(grpo::CharTokenizer::from_texts({"ab="}));
  grpo::TransformerConfig arch;             // any grpo::CausalLM works: your own model too
  arch.vocab_size = tokenizer->vocab_size();
  arch.hidden_size = 32; arch.intermediate_size = 64; arch.num_layers = 1; arch.num_heads = 2;
  arch.max_position_embeddings = 32;
  auto model = std::make_shared<grpo::TransformerLM>(arch);

  grpo::RewardSet rewards;                  // or RewardSet::from_json(...) with the built-ins
  rewards.add(std::make_unique<grpo::FunctionReward>("mostly_a", [](const grpo::Sample& s) {
    return static_cast<float>(std::count(s.completion.begin(), s.completion.end(), 'a')) /
           static_cast<float>(std::max<size_t>(1, s.completion.size()));
  }));
  auto prompts = grpo::PromptDataset::from_records({{{"prompt", "a="}}, {{"prompt", "b="}},
                                                    {{"prompt", "ab="}}, {{"prompt", "ba="}}});

  grpo::GRPOTrainer trainer(config, model, tokenizer, std::move(rewards), std::move(prompts));
  std::vector<double> reward;
  trainer.on_step_end([&](const nlohmann::json& m) { reward.push_back(m["reward"].get<double>()); });
  trainer.train();                          // metrics.jsonl, plot.svg, report.json, checkpoints in output_dir

  std::cout << "mean reward: first step " << reward.front() << ", last step " << reward.back() << "\n";
  return reward.back() > reward.front() ? 0 : 1;
}
