// The SFT dataset: the input is a JSONL file of prompt/completion records, read
// as an SFT stage reads it (a template, the llama3 chat) and tokenized with a
// byte-level BPE tokenizer, the prompt as a prompt and the completion after it.
#include "fuzz_util.h"
#include "grpo/data/prompt_dataset.h"
#include "grpo/tokenizers/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::shared_ptr<grpo::Tokenizer> tokenizer =
      grpo::load_tokenizer(GRPO_FUZZ_FIXTURES "/tokenizers/qwen2_tiny");
  const std::string path = grpo::fuzz::write_file("sft.jsonl", data, size);
  GRPO_FUZZ_EXPECT_ERRORS({
    grpo::PromptDatasetOptions options;
    options.prompt_key = "prompt";
    options.template_text = "{prompt}";
    options.chat_template = "llama3";
    options.shuffle = false;
    grpo::PromptDataset dataset = grpo::PromptDataset::from_jsonl(path, options);
    for (int64_t i = 0; i < dataset.size(); ++i) {
      const grpo::PromptRecord record = dataset.get(i);
      auto it = record.fields.find("completion");
      if (it == record.fields.end() || !it->is_string()) continue;  // the trainer names such a record
      std::vector<int64_t> ids = tokenizer->encode_prompt(record.prompt);
      const std::vector<int64_t> completion = tokenizer->encode(it->get<std::string>());
      ids.insert(ids.end(), completion.begin(), completion.end());
      (void)tokenizer->decode(ids);
    }
  })
  return 0;
}
