// Weights by name: a LibTorch archive that does not fit the model is one error
// listing every missing and mis-shaped tensor.
#include <grpo/error.h>
#include <grpo/io/weights.h>
#include <grpo/models/transformer.h>
#include <grpo/train/checkpoint.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "test_util.h"
#include "tiny_models.h"

using namespace grpo_test;

TEST(Trainer, LoadWeightsListsEveryMismatch) {
  TempDir dir("mismatch");
  const grpo::TransformerConfig small = tiny_transformer_config(5);
  grpo::TransformerLM a(small);
  grpo::save_weights(a, dir / "a.pt");
  grpo::TransformerConfig other = small;
  other.num_layers = 3;
  other.intermediate_size = 96;
  grpo::TransformerLM b(other);
  const std::string message = error_of([&] { grpo::load_weights(b, dir / "a.pt"); });
  EXPECT_NE(message.find("missing tensor 'model.layers.2.mlp.up_proj.weight'"), std::string::npos) << message;
  EXPECT_NE(message.find("tensor 'model.layers.0.mlp.up_proj.weight' has shape [64, 32]"), std::string::npos) << message;
  EXPECT_NE(error_of([&] { grpo::load_model(dir / "nowhere"); }).find("nowhere: no such folder"), std::string::npos);
}
