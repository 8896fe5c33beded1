// ChatTemplate: {role}/{content} message templates (read by the shared brace
// template scanner) and writing conversations through them or through the
// Llama 2 layout.
#include "grpo/tokenizers/chat.h"

#include <utility>

#include "grpo/error.h"
#include "text/brace_template.h"

namespace grpo {

namespace {

// A template shown in an error: quoted, newlines escaped, so the message stays one line.
std::string show(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

std::vector<ChatTemplate::Part> ChatTemplate::parse(const std::string& t) {
  std::vector<text::TemplatePiece> pieces;
  try {
    pieces = text::parse_brace_template(t);
  } catch (const Error& e) {
    throw Error("chat template " + show(t) + ": " + e.what());
  }
  std::vector<Part> parts;
  bool has_content = false;
  for (text::TemplatePiece& piece : pieces) {
    if (!piece.is_field) {
      parts.push_back({Part::Kind::kText, std::move(piece.text)});
    } else if (piece.text == "role") {
      parts.push_back({Part::Kind::kRole, ""});
    } else if (piece.text == "content") {
      parts.push_back({Part::Kind::kContent, ""});
      has_content = true;
    } else {
      throw Error("chat template " + show(t) + ": unknown placeholder {" + piece.text +
                  "} (known: {role}, {content}; write {{ and }} for literal braces)");
    }
  }
  if (!has_content) throw Error("chat template " + show(t) + " has no {content} placeholder");
  return parts;
}

ChatTemplate ChatTemplate::from_string(const std::string& message_template, const std::string& generation_prompt,
                                       const std::string& prefix) {
  ChatTemplate t;
  t.name_ = "custom";
  t.message_ = parse(message_template);
  t.generation_prompt_ = generation_prompt;
  t.prefix_ = prefix;
  return t;
}

ChatTemplate ChatTemplate::chatml() {
  ChatTemplate t = from_string("<|im_start|>{role}\n{content}<|im_end|>\n", "<|im_start|>assistant\n");
  t.name_ = "chatml";
  return t;
}

ChatTemplate ChatTemplate::llama3() {
  ChatTemplate t = from_string("<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>",
                               "<|start_header_id|>assistant<|end_header_id|>\n\n");
  t.name_ = "llama3";
  return t;
}

ChatTemplate ChatTemplate::llama2() {
  ChatTemplate t;
  t.name_ = "llama2";
  t.llama2_ = true;
  return t;
}

ChatTemplate ChatTemplate::by_name(const std::string& name_or_template) {
  if (name_or_template == "chatml") return chatml();
  if (name_or_template == "llama3") return llama3();
  if (name_or_template == "llama2") return llama2();
  if (name_or_template.find("{content}") == std::string::npos) {
    throw Error("chat template " + show(name_or_template) +
                " is neither a built-in name (chatml, llama3, llama2) nor a template with {content}");
  }
  return from_string(name_or_template);
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  const std::string where = "ChatTemplate(" + name_ + ")::apply: ";
  if (messages.empty()) throw Error(where + "no messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role.empty()) throw Error(where + "message " + std::to_string(i) + " has an empty role");
  }

  std::string out = prefix_;
  if (llama2_) {
    size_t i = 0;
    const std::string* system = nullptr;
    if (messages[0].role == "system") system = &messages[i++].content;
    bool first_user = true;
    for (; i < messages.size(); ++i) {
      const ChatMessage& m = messages[i];
      if (m.role == "user") {
        out += "[INST] ";
        if (first_user && system) out += "<<SYS>>\n" + *system + "\n<</SYS>>\n\n";
        out += m.content + " [/INST]";
        first_user = false;
      } else if (m.role == "assistant") {
        out += " " + m.content + " ";
      } else if (m.role == "system") {
        throw Error(where + "message " + std::to_string(i) + ": a system message must come first");
      } else {
        throw Error(where + "message " + std::to_string(i) + " has role \"" + m.role +
                    "\"; Llama 2 knows system, user and assistant");
      }
    }
    if (system && first_user) throw Error(where + "the system message needs a user message after it");
    return out;
  }

  for (const ChatMessage& m : messages) {
    for (const Part& p : message_) {
      out += p.kind == Part::Kind::kText ? p.text : p.kind == Part::Kind::kRole ? m.role : m.content;
    }
  }
  if (add_generation_prompt) out += generation_prompt_;
  return out;
}

}  // namespace grpo
