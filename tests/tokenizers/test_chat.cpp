// ChatTemplate: the exact strings of the built-ins and of custom templates, brace
// escapes, the generation prompt, and the errors; plus a ChatML prompt through the
// Qwen2-style fixture, whose control tokens must come out as single ids.
#include <grpo/tokenizers/chat.h>
#include <grpo/tokenizers/hf_tokenizer.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "test_util.h"

namespace {

using grpo::ChatMessage;
using grpo::ChatTemplate;

const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."}, {"user", "2+2?"}, {"assistant", "4"}, {"user", "And 3+3?"}};

TEST(ChatTemplate, ChatML) {
  const ChatTemplate t = ChatTemplate::chatml();
  EXPECT_EQ(t.name(), "chatml");
  EXPECT_EQ(t.apply(kConversation),
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n4<|im_end|>\n"
            "<|im_start|>user\nAnd 3+3?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(t.apply({{"user", "hi"}}, /*add_generation_prompt=*/false), "<|im_start|>user\nhi<|im_end|>\n");
}

TEST(ChatTemplate, Llama3) {
  const ChatTemplate t = ChatTemplate::llama3();
  EXPECT_EQ(t.apply({{"system", "Be brief."}, {"user", "2+2?"}}),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // No <|begin_of_text|>: BOS comes from the tokenizer.
  EXPECT_EQ(t.apply({{"user", "hi"}}, false), "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>");
}

TEST(ChatTemplate, Llama2) {
  const ChatTemplate t = ChatTemplate::llama2();
  EXPECT_EQ(t.apply(kConversation), "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n2+2? [/INST] 4 [INST] And 3+3? [/INST]");
  EXPECT_EQ(t.apply({{"user", "hi"}}), "[INST] hi [/INST]");
  EXPECT_EQ(t.apply({{"user", "hi"}}, false), "[INST] hi [/INST]");  // no generation prompt either way
  EXPECT_HAS(error_of([&] {
               t.apply({{"user", "a"}, {"system", "b"}});
             }),
             "message 1: a system message must come first");
  EXPECT_HAS(error_of([&] { t.apply({{"system", "b"}}); }), "needs a user message");
  EXPECT_HAS(error_of([&] { t.apply({{"tool", "x"}}); }), "role \"tool\"");
}

TEST(ChatTemplate, CustomTemplate) {
  const ChatTemplate t = ChatTemplate::from_string("{role}: {content}\n", "assistant:", "### Chat\n");
  EXPECT_EQ(t.name(), "custom");
  EXPECT_EQ(t.apply({{"user", "hi"}, {"assistant", "hello"}}), "### Chat\nuser: hi\nassistant: hello\nassistant:");
  EXPECT_EQ(t.apply({{"user", "hi"}}, false), "### Chat\nuser: hi\n");
  // {{ and }} are literal braces; the content itself is never parsed.
  const ChatTemplate braces = ChatTemplate::from_string("{{{role}}} {content} }}{{");
  EXPECT_EQ(braces.apply({{"user", "{x}"}}, false), "{user} {x} }{");
  // The prefix and generation prompt are literal text.
  EXPECT_EQ(ChatTemplate::from_string("{content}", "{{gen}}", "{pre}").apply({{"u", "c"}}), "{pre}c{{gen}}");
}

TEST(ChatTemplate, ByName) {
  EXPECT_EQ(ChatTemplate::by_name("chatml").apply({{"user", "x"}}), ChatTemplate::chatml().apply({{"user", "x"}}));
  EXPECT_EQ(ChatTemplate::by_name("llama3").name(), "llama3");
  EXPECT_EQ(ChatTemplate::by_name("llama2").apply({{"user", "x"}}), "[INST] x [/INST]");
  EXPECT_EQ(ChatTemplate::by_name("<{role}>{content}").apply({{"user", "x"}}), "<user>x");
  EXPECT_HAS(error_of([] { ChatTemplate::by_name("chatlm"); }), "neither a built-in name");
}

TEST(ChatTemplate, Errors) {
  EXPECT_HAS(error_of([] { ChatTemplate::from_string("{role}: {text}"); }), "unknown placeholder {text}");
  EXPECT_HAS(error_of([] { ChatTemplate::from_string("{role}: {content"); }), "unterminated '{' at position 8");
  EXPECT_HAS(error_of([] { ChatTemplate::from_string("{content} }"); }), "unmatched '}' at position 10");
  EXPECT_HAS(error_of([] { ChatTemplate::from_string("{role} only"); }), "no {content} placeholder");
  EXPECT_HAS(error_of([] { ChatTemplate::from_string("{{content}}"); }), "no {content} placeholder");
  const ChatTemplate t = ChatTemplate::chatml();
  EXPECT_HAS(error_of([&] { t.apply({}); }), "no messages");
  EXPECT_HAS(error_of([&] { t.apply({{"user", "a"}, {"", "b"}}); }), "message 1 has an empty role");
}

TEST(ChatTemplate, ControlTokensEncodeWhole) {
  const auto tok = grpo::HFTokenizer::load_dir(std::string(GRPO_TEST_DATA_DIR) + "/tokenizers/qwen2_tiny");
  const std::string prompt = ChatTemplate::chatml().apply({{"user", "hi"}});
  const std::vector<int64_t> ids = tok.encode(prompt);
  const int64_t start = *tok.token_to_id("<|im_start|>"), end = *tok.token_to_id("<|im_end|>");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), start), 2);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), end), 1);
  EXPECT_EQ(ids.front(), start);
  EXPECT_EQ(tok.decode(ids), prompt);
}

}  // namespace
