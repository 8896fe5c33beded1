// Chat templates and {field} templates: the input is a template, a generation
// prompt, then role/content pairs, cut at NUL bytes. A message template that
// is accepted writes every message's content; a prompt template renders a
// record with the fields it names.
#include "fuzz_util.h"
#include "grpo/data/prompt_dataset.h"
#include "grpo/tokenizers/chat.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts = grpo::fuzz::split_nul(data, size);
  std::vector<grpo::ChatMessage> messages;
  for (size_t i = 2; i + 1 < parts.size(); i += 2) messages.push_back({parts[i], parts[i + 1]});
  GRPO_FUZZ_EXPECT_ERRORS({
    const grpo::ChatTemplate chat = grpo::ChatTemplate::by_name(parts[0]);
    const std::string text = chat.apply(messages, /*add_generation_prompt=*/true);
    if (chat.name() == "custom") {
      for (const grpo::ChatMessage& m : messages) {
        if (text.find(m.content) == std::string::npos) grpo::fuzz::finding("a message's content is missing");
      }
    }
  })
  GRPO_FUZZ_EXPECT_ERRORS({
    (void)grpo::ChatTemplate::from_string(parts[0], parts.size() > 1 ? parts[1] : "", "<s>")
        .apply(messages, /*add_generation_prompt=*/false);
  })
  GRPO_FUZZ_EXPECT_ERRORS({
    grpo::PromptDatasetOptions options;
    options.template_text = parts[0];
    nlohmann::json record = {{"prompt", parts.size() > 1 ? parts[1] : "p"}, {"answer", 42}, {"list", {1, "two"}}};
    const grpo::PromptDataset dataset = grpo::PromptDataset::from_records({record}, options);
    (void)dataset.get(0);
  })
  return 0;
}
