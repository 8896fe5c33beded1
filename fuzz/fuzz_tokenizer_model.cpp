// tokenizer.model: the input is a SentencePiece model file. A model that loads
// encodes and decodes a few texts and decodes its first ids.
#include "fuzz_util.h"
#include "grpo/tokenizers/sentencepiece.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  GRPO_FUZZ_EXPECT_ERRORS({
    const grpo::SentencePieceTokenizer tokenizer = grpo::SentencePieceTokenizer::from_serialized(
        std::string(reinterpret_cast<const char*>(data), size), "tokenizer.model");
    for (const char* text : {"Once upon a time", "1+1=2 \xc3\xa9\xe4\xb8\xad", "  \n", ""}) {
      GRPO_FUZZ_EXPECT_ERRORS({ (void)tokenizer.decode(tokenizer.encode(text)); })
    }
    std::vector<int64_t> ids;
    for (int64_t id = 0; id < std::min<int64_t>(tokenizer.vocab_size(), 512); ++id) {
      (void)tokenizer.id_to_token(id);
      ids.push_back(id);
    }
    (void)tokenizer.decode(ids);
    (void)tokenizer.decode(ids, /*skip_special=*/true);
  })
  return 0;
}
