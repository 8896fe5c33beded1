// A user's program against the installed grpo: advantages and the loss with its
// gradient, and (given a tokenizer.model) SentencePiece through the module
// installed beside libgrpo.
#include <grpo/build_info.h>
#include <grpo/ops/group_advantages.h>
#include <grpo/ops/grpo_loss.h>
#include <grpo/tokenizers/sentencepiece.h>
#include <torch/torch.h>

#include <iostream>

int main(int argc, char** argv) {
  const auto rewards = torch::tensor({1.0f, 0.0f, 0.0f, 1.0f, 0.5f, 0.5f, 0.5f, 0.5f});
  const auto adv = grpo::group_advantages(rewards, /*group_size=*/4);
  // The second group's rewards are all equal: no signal, advantages exactly 0.
  if (adv.advantages.slice(0, 4).abs().sum().item<float>() != 0.0f) return 1;

  auto logp = torch::full({8, 5}, -1.0f, torch::requires_grad());
  const auto mask = torch::ones({8, 5});
  grpo::GrpoLossOptions options;
  options.beta = 0.0;
  const auto result = grpo::grpo_loss(logp, {}, {}, adv.advantages, mask, options);
  result.loss.backward();
  // With μ = 1 the gradient is -A_i / (N · T_i) per token.
  const float want = -adv.advantages[0].item<float>() / (8 * 5);
  if (std::abs(logp.grad()[0][0].item<float>() - want) > 1e-6f) return 2;
  if (argc > 1) {
    const auto tokenizer = grpo::SentencePieceTokenizer::load(argv[1]);
    if (tokenizer.encode("Once upon a time") != std::vector<int64_t>{403, 407, 261, 378}) return 3;
  }
  std::cout << "grpo " << grpo::version() << ": loss " << result.loss.item<float>() << ", tokens "
            << grpo::read_stats(result.stats).token_count << "\n";
  return 0;
}
