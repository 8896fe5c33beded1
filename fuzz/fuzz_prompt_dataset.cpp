// The GRPO prompt dataset: the input is a JSONL file, read either with a
// {field} template or as chatml chats; every record that loads is rendered and
// every batch of an epoch is drawn.
#include "fuzz_util.h"
#include "grpo/data/prompt_dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = grpo::fuzz::write_file("prompts.jsonl", data, size);
  GRPO_FUZZ_EXPECT_ERRORS({
    grpo::PromptDatasetOptions options;
    if (size % 2) {
      options.chat_template = "chatml";
      options.system_prompt = "You are precise.";
    } else {
      options.template_text = "Question: {prompt}\nAnswer {{in braces}}: {answer}";
    }
    grpo::PromptDataset dataset = grpo::PromptDataset::from_jsonl(path, options);
    for (int64_t i = 0; i < dataset.size(); ++i) (void)dataset.get(i);
    const int64_t batch = dataset.size() < 3 ? dataset.size() : 3;
    for (int64_t drawn = 0; drawn < dataset.size(); drawn += batch) (void)dataset.next_batch(batch);
  })
  return 0;
}
