// The GRPO ops in a plain LibTorch loop: a policy over 4-token "completions"
// from a vocabulary of V = 8, rewarded for each token equal to 3. Each step
// samples G completions per prompt, turns rewards into group-relative
// advantages and takes μ = 2 clipped-ratio updates with a KL leash to the start.
#include <grpo/ops/group_advantages.h>
#include <grpo/ops/grpo_loss.h>
#include <torch/torch.h>

#include <iostream>

int main() {
  torch::manual_seed(0);
  const int64_t P = 4, G = 8, N = P * G, T = 4, V = 8, target = 3;
  auto logits = torch::zeros({T, V}, torch::requires_grad());  // the policy: one distribution per position
  const auto ref_logits = logits.detach().clone();                // the frozen reference
  torch::optim::Adam optimizer({logits}, torch::optim::AdamOptions(0.1));
  // (N, T) log-probs of `tokens` under per-position logits (T, V).
  auto token_logprobs = [&](const torch::Tensor& l, const torch::Tensor& tokens) {
    return torch::log_softmax(l, -1).expand({N, T, V}).gather(2, tokens.unsqueeze(-1)).squeeze(-1);
  };

  grpo::GrpoLossOptions options;
  options.beta = 0.01;
  for (int step = 0; step < 30; ++step) {
    const auto tokens = torch::multinomial(torch::softmax(logits.detach(), -1), N, true).t();  // (N, T)
    const auto rewards = (tokens == target).to(torch::kFloat).mean(1);                         // (N)
    const auto adv = grpo::group_advantages(rewards, G).advantages;                            // (N)
    const auto old_logp = token_logprobs(logits.detach(), tokens);
    const auto ref_logp = token_logprobs(ref_logits, tokens);
    const auto mask = torch::ones({N, T});
    for (int mu = 0; mu < 2; ++mu) {
      const auto result = grpo::grpo_loss(token_logprobs(logits, tokens), old_logp, ref_logp, adv, mask, options);
      optimizer.zero_grad();
      result.loss.backward();
      optimizer.step();
      if (mu == 1 && step % 5 == 0) {  // the second update, where ρ ≠ 1 and clipping can act
        const auto s = grpo::read_stats(result.stats);
        std::cout << "step " << step << "  reward " << rewards.mean().item<float>() << "  kl " << s.kl_mean
                  << "  clipped " << s.clip_region_frac << "\n";
      }
    }
  }
  const double p_target = torch::softmax(logits.detach(), -1).select(1, target).mean().item<double>();
  std::cout << "probability of the rewarded token after training: " << p_target << "\n";
  return p_target > 0.5 ? 0 : 1;
}
