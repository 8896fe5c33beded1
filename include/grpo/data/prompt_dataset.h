// PromptDataset: prompts for GRPO from a JSONL file (one object per line with a
// prompt and any other fields), rendered through a template, served in batches
// of P in a seeded shuffled order that changes each epoch and can be resumed.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "grpo/tokenizers/chat.h"

namespace grpo {

// One prompt and the fields of its dataset record (e.g. "answer"), which rewards read.
struct PromptRecord {
  std::string prompt;
  nlohmann::json fields = nlohmann::json::object();
};

struct PromptDatasetOptions {
  std::string prompt_key = "prompt";        // the field holding each record's prompt, a non-empty string
  std::string template_text = "{prompt}";   // the prompt given out: {field} = the record's field, {{ and }} = braces
  bool shuffle = true;                      // false = file order every epoch
  uint64_t seed = 0;                        // with the epoch number, picks each epoch's order
  // Instruction models: the templated prompt becomes the user message of a chat
  // (ChatTemplate::by_name: "chatml", "llama3", "llama2" or a {role}/{content}
  // template; "" = plain text), after a system message when system_prompt is
  // not empty, followed by the assistant's generation prompt.
  std::string chat_template;
  std::string system_prompt;
};

// Where next_batch continues: the epoch and the index within that epoch's order.
struct PromptDatasetState {
  int64_t epoch = 0;
  int64_t position = 0;  // in [0, size())
};

class PromptDataset {
 public:
  // Reads a JSONL file: blank lines are skipped, a UTF-8 BOM and CRLF line ends
  // are accepted. Raises grpo::Error naming the path, and for a bad record its
  // 1-based line, when the file cannot be read, a line is not a JSON object, the
  // prompt is missing, not a string or empty, a template field is missing, or
  // there are no records.
  static PromptDataset from_jsonl(const std::string& path, PromptDatasetOptions options = {});
  // Records read from `path` (by a JsonlReader, a part of a file at a time),
  // with their 1-based lines, which errors name.
  static PromptDataset from_lines(const std::string& path, std::vector<nlohmann::json> records,
                                  std::vector<int64_t> lines, PromptDatasetOptions options = {});
  // The same checks on records held in memory; errors name the record index.
  static PromptDataset from_records(std::vector<nlohmann::json> records, PromptDatasetOptions options = {});

  int64_t size() const { return static_cast<int64_t>(records_.size()); }
  // Record i in file order; raises grpo::Error when i is out of range.
  const nlohmann::json& record(int64_t i) const;
  // Record i as a prompt: the template rendered with its fields, and the whole record.
  PromptRecord get(int64_t i) const;
  // Where record i is, for messages: "line L (record i)" for a file, "record i" otherwise.
  std::string where(int64_t i) const;
  // Renders the template with `record`'s fields (strings raw, anything else as
  // its JSON text); raises grpo::Error naming a missing field.
  std::string render(const nlohmann::json& record) const;

  // The next P records of the current epoch's order; a batch that reaches the
  // end of an epoch goes on into the next one. Raises grpo::Error when P < 1.
  std::vector<PromptRecord> next_batch(int64_t P);
  // The order of epoch `epoch` (a permutation of 0..size()-1), the same for the
  // same seed and epoch.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  int64_t epoch() const { return state_.epoch; }
  int64_t position() const { return state_.position; }
  PromptDatasetState state() const { return state_; }
  // Continue from a saved state; raises grpo::Error when epoch < 0 or position
  // is outside [0, size()).
  void set_state(int64_t epoch, int64_t position);
  void set_state(const PromptDatasetState& state) { set_state(state.epoch, state.position); }

  const PromptDatasetOptions& options() const { return options_; }

 private:
  // A piece of the parsed template: literal text, or a field name to fill in.
  struct Piece {
    bool is_field;
    std::string text;
  };

  PromptDataset(std::vector<nlohmann::json> records, std::vector<int64_t> lines, std::string path,
                PromptDatasetOptions options);
  void use_epoch(int64_t epoch);

  std::shared_ptr<const ChatTemplate> chat_;  // null = plain prompts
  std::vector<nlohmann::json> records_;
  std::vector<int64_t> lines_;  // 1-based line of each record in path_; empty for from_records
  std::string path_;
  PromptDatasetOptions options_;
  std::vector<Piece> pieces_;
  PromptDatasetState state_;
  int64_t order_epoch_ = -1;    // the epoch whose order order_ holds
  std::vector<int64_t> order_;
};

}  // namespace grpo
