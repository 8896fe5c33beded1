// The factory's parts built from a config: SFT prompts formatted as GRPO's,
// a checkpoint loaded in model.dtype, and the TF32 switch.
#include <grpo/train/checkpoint.h>
#include <grpo/train/factory.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "test_util.h"
#include "train/tiny_run.h"

using nlohmann::json;
using namespace grpo_test;

// SFT shows an instruction model its prompts as GRPO does: the data section's
// chat template and system prompt around the SFT template.
TEST(Factory, SftFormatsPromptsAsGrpoDoes) {
  grpo::TrainConfig c;
  c.data.template_text = "{prompt}";
  c.data.chat_template = "chatml";
  c.data.system_prompt = "Be brief.";
  c.sft.template_text = "{prompt}";
  const json record = {{"prompt", "What is 2+2?"}, {"completion", "4"}};
  const std::string grpo_prompt =
      grpo::PromptDataset::from_records({record}, grpo::dataset_options(c.data, 0)).get(0).prompt;
  const std::string sft_prompt =
      grpo::PromptDataset::from_records({record}, grpo::sft_dataset_options(c.sft, c.data, 0)).get(0).prompt;
  EXPECT_EQ(sft_prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(sft_prompt, grpo_prompt);

  // Without a chat template both are the plain templated text.
  c.data.chat_template = "";
  c.data.system_prompt = "";
  EXPECT_EQ(grpo::PromptDataset::from_records({record}, grpo::sft_dataset_options(c.sft, c.data, 0)).get(0).prompt,
            "What is 2+2?");
}

// A checkpoint comes back in model.dtype, whatever it was saved in: the
// command line's eval and sample load through here.
TEST(Factory, MakeModelLoadsACheckpointInModelDtype) {
  TempDir dir("factory_dtype");
  grpo::TrainConfig c = tiny_config(dir.path.string());
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  auto model = grpo::make_model(c.model, *tokenizer, c.seed);
  grpo::CheckpointContents contents;
  contents.model = model.get();
  grpo::write_checkpoint(dir / "ckpt", contents);

  grpo::ModelConfig m = c.model;
  m.init_from = dir / "ckpt";
  for (const auto& [name, dtype] : {std::pair<std::string, torch::Dtype>{"float32", torch::kFloat32},
                                    {"bfloat16", torch::kBFloat16},
                                    {"float64", torch::kFloat64}}) {
    SCOPED_TRACE(name);
    m.dtype = name;
    auto loaded = grpo::make_model(m, *tokenizer, 0);
    const auto params = loaded->module().parameters();
    const auto original = model->module().parameters();
    ASSERT_EQ(params.size(), original.size());
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_EQ(params[i].scalar_type(), dtype);
      EXPECT_TRUE(torch::equal(params[i], original[i].to(dtype))) << "parameter " << i;
    }
  }
}

// model.allow_tf32 sets LibTorch's CUDA matmul precision, and the legacy and
// new flags agree (LibTorch raises on a mix); on the CPU it changes nothing.
TEST(Factory, AllowTf32SetsTheCudaMatmulPrecision) {
  auto& context = at::globalContext();
  const auto cuda_matmul = [&] { return context.float32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL); };
  const auto cpu_matmul = context.float32Precision(at::Float32Backend::MKLDNN, at::Float32Op::MATMUL);
  grpo::apply_allow_tf32(true);
  EXPECT_EQ(cuda_matmul(), at::Float32Precision::TF32);
  EXPECT_TRUE(context.allowTF32CuBLAS());
  EXPECT_EQ(context.float32Precision(at::Float32Backend::MKLDNN, at::Float32Op::MATMUL), cpu_matmul);
  grpo::apply_allow_tf32(false);
  EXPECT_EQ(cuda_matmul(), at::Float32Precision::IEEE);
  EXPECT_FALSE(context.allowTF32CuBLAS());
  EXPECT_EQ(context.float32Precision(at::Float32Backend::MKLDNN, at::Float32Op::MATMUL), cpu_matmul);
}
