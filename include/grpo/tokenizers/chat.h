// Chat templates: a conversation (role + content messages) as the single prompt string a
// chat model was trained on. Built-ins spell ChatML (Qwen2), Llama 3 and Llama 2;
// from_string takes a per-message template with {role} and {content} placeholders.
#pragma once

#include <string>
#include <vector>

namespace grpo {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", ...: must not be empty
  std::string content;  // the text, inserted as it is
};

// The control tokens a template writes as text (<|im_start|>, <|eot_id|>) are a Hugging
// Face tokenizer's added tokens, which encode() matches whole. No template writes BOS:
// Tokenizer::encode_prompt puts bos_id() first. These are fixed formats, not Jinja: the
// chat_template of a tokenizer_config.json is not read.
class ChatTemplate {
 public:
  // Per message "<|im_start|>{role}\n{content}<|im_end|>\n"; generation prompt
  // "<|im_start|>assistant\n". Qwen2 and other ChatML models.
  static ChatTemplate chatml();
  // Per message "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>";
  // generation prompt "<|start_header_id|>assistant<|end_header_id|>\n\n".
  static ChatTemplate llama3();
  // Llama 2 chat, simplified: "[INST] {user} [/INST] {assistant} [INST] {user} [/INST]",
  // a leading system message inside the first [INST] as "<<SYS>>\n{system}\n<</SYS>>\n\n".
  // Meta's format also closes each exchange with </s><s>; those are control tokens, not
  // text, so they are left out. Roles must be system (first only), user or assistant, and
  // a system message needs a user message after it. The model answers right after
  // "[/INST]", so there is no generation prompt to add.
  static ChatTemplate llama2();

  // `message_template` is written once per message with {role} and {content} replaced; it
  // must contain {content}. {{ and }} stand for literal braces; any other {name}, or a
  // lone brace, is an error naming it. `prefix` (written once, first) and
  // `generation_prompt` are taken literally.
  static ChatTemplate from_string(const std::string& message_template, const std::string& generation_prompt = "",
                                  const std::string& prefix = "");
  // "chatml", "llama3" or "llama2"; anything else is a message template for from_string
  // (so it must contain {content}).
  static ChatTemplate by_name(const std::string& name_or_template);

  // The conversation as one string, ending with the generation prompt when asked (and
  // the template has one). An empty list, or a message with an empty role, is an error.
  std::string apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;

  // "chatml", "llama3", "llama2" or "custom".
  const std::string& name() const { return name_; }

 private:
  struct Part {
    enum class Kind { kText, kRole, kContent } kind;
    std::string text;  // kText only
  };
  ChatTemplate() = default;
  static std::vector<Part> parse(const std::string& message_template);

  std::string name_;
  std::string prefix_;
  std::vector<Part> message_;
  std::string generation_prompt_;
  bool llama2_ = false;  // the role-dependent Llama 2 layout instead of message_
};

}  // namespace grpo
