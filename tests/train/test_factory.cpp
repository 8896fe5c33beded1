// The factory's parts built from a config: SFT prompts formatted as GRPO's.
#include <grpo/train/factory.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using nlohmann::json;

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
