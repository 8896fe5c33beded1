// Encoding untrusted text with real tokenizers: the input is the text. GPT-2's
// byte-level BPE (no normalizer) must give back exactly any valid UTF-8 text;
// Qwen2's (NFC) and Llama 3's encode and decode it, and everything refuses
// invalid UTF-8 with grpo::Error.
#include "fuzz_util.h"
#include "grpo/tokenizers/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::shared_ptr<grpo::Tokenizer>> tokenizers = {
      grpo::load_tokenizer(GRPO_FUZZ_FIXTURES "/tokenizers/gpt2_tiny"),
      grpo::load_tokenizer(GRPO_FUZZ_FIXTURES "/tokenizers/qwen2_tiny"),
      grpo::load_tokenizer(GRPO_FUZZ_FIXTURES "/tokenizers/llama3_tiny"),
      grpo::load_tokenizer(GRPO_FUZZ_FIXTURES "/models/stories260K")};
  const std::string text(reinterpret_cast<const char*>(data), size);
  const bool valid = grpo::utf8_problem(text).empty();
  for (size_t k = 0; k < tokenizers.size(); ++k) {
    GRPO_FUZZ_EXPECT_ERRORS({
      const std::vector<int64_t> ids = tokenizers[k]->encode(text);
      if (!valid) grpo::fuzz::finding("tokenizer " + std::to_string(k) + " encoded invalid UTF-8");
      const std::string back = tokenizers[k]->decode(ids);
      if (k == 0 && back != text) grpo::fuzz::finding("GPT-2 byte-level BPE: decode(encode(text)) != text");
    })
  }
  return 0;
}
