// PromptDataset: JSONL reading with file:line errors, the {field} template, and
// the per-epoch order (a Fisher-Yates shuffle of our own, so the order is the
// same with every standard library).
#include "grpo/data/prompt_dataset.h"

#include <optional>
#include <utility>

#include "grpo/data/jsonl.h"
#include "grpo/error.h"
#include "grpo/files.h"
#include "random.h"
#include "text/brace_template.h"

namespace grpo {

namespace {

}  // namespace

PromptDataset::PromptDataset(std::vector<nlohmann::json> records, std::vector<int64_t> lines, std::string path,
                             PromptDatasetOptions options)
    : records_(std::move(records)), lines_(std::move(lines)), path_(std::move(path)), options_(std::move(options)) {
  try {
    for (auto& piece : text::parse_brace_template(options_.template_text)) {
      pieces_.push_back({piece.is_field, std::move(piece.text)});
    }
  } catch (const Error& e) {
    throw Error("prompt template \"" + options_.template_text + "\": " + e.what());
  }
  const std::string source = path_.empty() ? "prompt dataset" : "prompt dataset " + path_;
  if (!options_.chat_template.empty()) {
    try {
      chat_ = std::make_shared<const ChatTemplate>(ChatTemplate::by_name(options_.chat_template));
    } catch (const Error& e) {
      throw Error(source + ": chat template: " + e.what());
    }
  } else if (!options_.system_prompt.empty()) {
    throw Error(source + ": a system prompt needs a chat template");
  }
  if (records_.empty()) {
    throw Error(source + ": no records");
  }
  const std::string& key = options_.prompt_key;
  for (int64_t i = 0; i < size(); ++i) {
    const nlohmann::json& r = records_[i];
    if (!r.is_object()) {
      throw Error(source + ", " + where(i) + ": expected a JSON object, got " + std::string(r.type_name()));
    }
    const auto it = r.find(key);
    if (it == r.end()) {
      throw Error(source + ", " + where(i) + ": missing the prompt key \"" + key + "\"");
    }
    if (!it->is_string()) {
      throw Error(source + ", " + where(i) + ": the prompt \"" + key + "\" must be a string, got " +
                  std::string(it->type_name()));
    }
    if (it->get_ref<const std::string&>().empty()) {
      throw Error(source + ", " + where(i) + ": the prompt \"" + key + "\" is empty");
    }
    for (const Piece& piece : pieces_) {
      if (piece.is_field && !r.contains(piece.text)) {
        throw Error(source + ", " + where(i) + ": the template's placeholder {" + piece.text +
                    "} names a missing field \"" + piece.text + "\"");
      }
    }
  }
}

PromptDataset PromptDataset::from_jsonl(const std::string& path, PromptDatasetOptions options) {
  JsonlReader reader(path, "prompt dataset");
  std::vector<nlohmann::json> records;
  std::vector<int64_t> lines;
  while (std::optional<nlohmann::json> record = reader.next()) {
    records.push_back(std::move(*record));
    lines.push_back(reader.line());
  }
  return PromptDataset(std::move(records), std::move(lines), path, std::move(options));
}

PromptDataset PromptDataset::from_lines(const std::string& path, std::vector<nlohmann::json> records,
                                        std::vector<int64_t> lines, PromptDatasetOptions options) {
  return PromptDataset(std::move(records), std::move(lines), path, std::move(options));
}

PromptDataset PromptDataset::from_records(std::vector<nlohmann::json> records, PromptDatasetOptions options) {
  return PromptDataset(std::move(records), {}, "", std::move(options));
}

std::string PromptDataset::where(int64_t i) const {
  std::string s = "record " + std::to_string(i);
  if (!lines_.empty()) {
    s = "line " + std::to_string(lines_[i]) + " (" + s + ")";
  }
  return s;
}

const nlohmann::json& PromptDataset::record(int64_t i) const {
  if (i < 0 || i >= size()) {
    throw Error("prompt dataset: record index " + std::to_string(i) + " out of range [0, " +
                std::to_string(size()) + ")");
  }
  return records_[i];
}

std::string PromptDataset::render(const nlohmann::json& record) const {
  std::string out;
  for (const Piece& piece : pieces_) {
    if (!piece.is_field) {
      out += piece.text;
      continue;
    }
    const auto it = record.is_object() ? record.find(piece.text) : record.end();
    if (!record.is_object() || it == record.end()) {
      throw Error("prompt template: placeholder {" + piece.text + "} names a missing field \"" + piece.text + "\"");
    }
    out += it->is_string() ? it->get_ref<const std::string&>() : it->dump();
  }
  if (!chat_) return out;
  std::vector<ChatMessage> messages;
  if (!options_.system_prompt.empty()) messages.push_back({"system", options_.system_prompt});
  messages.push_back({"user", std::move(out)});
  return chat_->apply(messages, /*add_generation_prompt=*/true);
}

PromptRecord PromptDataset::get(int64_t i) const {
  const nlohmann::json& r = record(i);
  return PromptRecord{render(r), r};
}

std::vector<int64_t> PromptDataset::epoch_order(int64_t epoch) const {
  if (epoch < 0) {
    throw Error("prompt dataset: epoch must be >= 0, got " + std::to_string(epoch));
  }
  if (options_.shuffle) return shuffled_indices(size(), splitmix64(options_.seed ^ splitmix64(static_cast<uint64_t>(epoch))));
  std::vector<int64_t> order(records_.size());
  for (int64_t i = 0; i < size(); ++i) order[i] = i;
  return order;
}

void PromptDataset::use_epoch(int64_t epoch) {
  if (order_epoch_ != epoch) {
    order_ = epoch_order(epoch);
    order_epoch_ = epoch;
  }
}

std::vector<PromptRecord> PromptDataset::next_batch(int64_t P) {
  if (P < 1) {
    throw Error("prompt dataset: next_batch expects P >= 1 prompts, got " + std::to_string(P));
  }
  std::vector<PromptRecord> batch;
  batch.reserve(static_cast<size_t>(P));
  for (int64_t k = 0; k < P; ++k) {
    use_epoch(state_.epoch);
    batch.push_back(get(order_[state_.position]));
    if (++state_.position == size()) {
      state_.position = 0;
      ++state_.epoch;
    }
  }
  return batch;
}

void PromptDataset::set_state(int64_t epoch, int64_t position) {
  if (epoch < 0 || position < 0 || position >= size()) {
    throw Error("prompt dataset: state expects epoch >= 0 and position in [0, " + std::to_string(size()) +
                "), got epoch " + std::to_string(epoch) + ", position " + std::to_string(position));
  }
  state_ = {epoch, position};
}

}  // namespace grpo
