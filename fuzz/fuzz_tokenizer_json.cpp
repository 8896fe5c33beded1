// tokenizer.json: the input is the file (a Hugging Face tokenizer, or the
// char tokenizer's {"type": "char"} form). A tokenizer that loads encodes and
// decodes a few texts, and spells and decodes its first ids.
#include "fuzz_util.h"
#include "grpo/tokenizers/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  grpo::fuzz::write_file("tokenizer_json/tokenizer.json", data, size);
  GRPO_FUZZ_EXPECT_ERRORS({
    const std::shared_ptr<grpo::Tokenizer> tokenizer =
        grpo::load_tokenizer((grpo::fuzz::scratch() / "tokenizer_json").string());
    for (const char* text : {"Hello, world!", "1+1=2 \xc3\xa9\xe4\xb8\xad <think>x</think>", "  \n\t", ""}) {
      GRPO_FUZZ_EXPECT_ERRORS({ (void)tokenizer->decode(tokenizer->encode(text)); })
    }
    const int64_t n = std::min<int64_t>(tokenizer->vocab_size(), 512);
    std::vector<int64_t> ids;
    for (int64_t id = 0; id < n; ++id) {
      (void)tokenizer->id_to_token(id);
      (void)tokenizer->is_special(id);
      ids.push_back(id);
    }
    (void)tokenizer->decode(ids);
    (void)tokenizer->decode(ids, /*skip_special=*/true);
  })
  return 0;
}
