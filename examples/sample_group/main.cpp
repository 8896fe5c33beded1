// One GRPO rollout by hand, as in the README: a character tokenizer, a small
// TransformerLM policy and its frozen reference, G = 8 completions of one
// prompt, and the log-probs the loss needs.
#include <grpo/models/transformer.h>
#include <grpo/rollout/reference.h>
#include <grpo/rollout/sampler.h>
#include <grpo/tokenizers/char_tokenizer.h>
#include <torch/torch.h>

#include <iostream>

int main() {
  torch::manual_seed(0);
  const std::vector<std::string> corpus = {"0123456789+=", "<think>12+7=19</think><answer>19</answer>"};
  auto tokenizer = std::make_shared<grpo::CharTokenizer>(grpo::CharTokenizer::from_texts(corpus));
  grpo::TransformerConfig config;  // or TransformerConfig::from_json(...)
  config.vocab_size = tokenizer->vocab_size();
  config.hidden_size = 256;
  config.intermediate_size = 1024;
  config.num_layers = 4;
  config.num_heads = 8;
  config.num_kv_heads = 4;
  config.max_position_embeddings = 512;
  grpo::Policy policy(std::make_shared<grpo::TransformerLM>(config));
  grpo::ReferenceModel reference(policy);

  grpo::GroupSamplerConfig sampling;
  sampling.group_size = 8;
  sampling.generation.max_new_tokens = 64;
  grpo::GroupSampler sampler(policy, tokenizer, sampling);
  grpo::RolloutBatch batch = sampler.sample({{"12+7=", {{"answer", "19"}}}});

  auto logp = policy.token_logprobs(batch.prompt_ids, batch.prompt_mask, batch.completion_ids,
                                    batch.completion_mask).logprobs;  // (N, T), differentiable
  auto ref_logp = reference.token_logprobs(batch.prompt_ids, batch.prompt_mask, batch.completion_ids,
                                           batch.completion_mask);   // (N, T), no grad

  for (int64_t i = 0; i < batch.size(); ++i) std::cout << "completion " << i << ": " << batch.completion_texts[i] << "\n";
  // An untrained policy equals its reference: the log-probs agree.
  const double gap = (logp - ref_logp).abs().max().item<double>();
  std::cout << "max |logp - ref_logp| = " << gap << "\n";
  return batch.size() == 8 && logp.requires_grad() && gap < 1e-5 ? 0 : 1;
}
