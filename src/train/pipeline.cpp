// Pipeline: each stage's config resolved from the base, its own keys and the
// outputs of the stages before it; then the stage's trainer (or the rejection
// sampler), a greedy held-out evaluation of the model it wrote, and stage.json,
// written last, which marks the stage finished.
#include "grpo/train/pipeline.h"

#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <map>

#include "grpo/config/config.h"
#include "grpo/error.h"
#include "grpo/files.h"
#include "grpo/log.h"
#include "grpo/stop.h"
#include "grpo/train/checkpoint.h"
#include "grpo/train/distiller.h"
#include "grpo/train/evaluate.h"
#include "grpo/train/factory.h"
#include "grpo/train/grpo_trainer.h"
#include "grpo/train/metrics.h"
#include "grpo/train/rejection_sampling.h"
#include "grpo/train/sft_trainer.h"

namespace grpo {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::vector<std::string> kStageTypes = {"sft", "grpo", "rejection_sample", "distill"};

bool valid_name(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// The folder holding the model a stage writes; "" for rejection sampling.
std::string model_output(const std::string& type, const TrainConfig& c) {
  if (type == "sft") return (fs::path(c.output_dir) / "sft").string();
  if (type == "distill") return (fs::path(c.output_dir) / "distill").string();
  if (type == "grpo") return checkpoint_dir(c.output_dir, c.grpo.steps);
  return "";
}

std::string accepted_output(const TrainConfig& c) {
  const fs::path dir = c.rejection.output.empty() ? fs::path(c.output_dir) / "rejection" : fs::path(c.rejection.output);
  return (dir / "accepted.jsonl").string();
}

// Replaces every string "@<name>" in `j` by outputs[name].
void resolve_references(json& j, const std::map<std::string, std::string>& outputs, const std::string& where) {
  if (j.is_object() || j.is_array()) {
    for (auto& v : j) resolve_references(v, outputs, where);
  } else if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (s.size() > 1 && s[0] == '@') {
      const auto it = outputs.find(s.substr(1));
      if (it == outputs.end()) throw Error(where + ": \"" + s + "\" names no earlier stage");
      j = it->second;
    }
  }
}

bool unset(const json& c, const std::string& section, const std::string& key) {
  const auto s = c.find(section);
  if (s == c.end() || !s->is_object()) return true;
  const auto k = s->find(key);
  return k == s->end() || (k->is_string() && k->get_ref<const std::string&>().empty());
}

}  // namespace

Pipeline Pipeline::from_json(const json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": a pipeline is a JSON object");
  for (const auto& kv : j.items()) {
    if (kv.key() != "output_dir" && kv.key() != "base" && kv.key() != "stages") {
      throw Error(where + ": unknown key \"" + kv.key() + "\" (known: output_dir, base, stages)");
    }
  }
  Pipeline p;
  p.where_ = where;
  p.output_dir_ = j.value("output_dir", std::string("runs/pipeline"));
  p.base_ = j.value("base", json::object());
  if (!p.base_.is_object()) throw Error(where + ": base: must be an object of TrainConfig keys");
  if (!j.contains("stages") || !j["stages"].is_array() || j["stages"].empty()) {
    throw Error(where + ": stages: a non-empty list of {\"name\", \"type\", \"config\"} is required");
  }
  for (size_t i = 0; i < j["stages"].size(); ++i) {
    const json& s = j["stages"][i];
    const std::string at = where + ": stages[" + std::to_string(i) + "]";
    if (!s.is_object()) throw Error(at + ": must be an object");
    for (const auto& kv : s.items()) {
      if (kv.key() != "name" && kv.key() != "type" && kv.key() != "config") {
        throw Error(at + ": unknown key \"" + kv.key() + "\" (known: name, type, config)");
      }
    }
    PipelineStage stage;
    if (!s.contains("type") || !s["type"].is_string() ||
        std::find(kStageTypes.begin(), kStageTypes.end(), s["type"].get<std::string>()) == kStageTypes.end()) {
      throw Error(at + ".type: must be one of sft, grpo, rejection_sample, distill, got " +
                  (s.contains("type") ? s["type"].dump() : std::string("nothing")));
    }
    stage.type = s["type"].get<std::string>();
    stage.name = s.value("name", stage.type);
    if (!valid_name(stage.name)) {
      throw Error(at + ".name: \"" + stage.name + "\" must be letters, digits, '_', '-' or '.' (it names a folder)");
    }
    for (const PipelineStage& earlier : p.stages_) {
      if (earlier.name == stage.name) throw Error(at + ".name: \"" + stage.name + "\" is used twice");
    }
    stage.config = s.value("config", json::object());
    if (!stage.config.is_object()) throw Error(at + ".config: must be an object of TrainConfig keys");
    p.stages_.push_back(std::move(stage));
  }
  // Every stage's config resolves and is valid before anything runs.
  for (size_t i = 0; i < p.stages_.size(); ++i) {
    try {
      TrainConfig::from_json(p.resolve(i + 1).at(i)).validate();
    } catch (const Error& e) {
      throw Error(where + ": stage \"" + p.stages_[i].name + "\": " + e.what());
    }
  }
  return p;
}

Pipeline Pipeline::from_file(const std::string& path, const std::vector<std::string>& overrides) {
  json j = read_json_file(path, "a pipeline JSON file");
  for (const std::string& o : overrides) apply_override(j, o);
  return from_json(j, path);
}

json Pipeline::stage_config(size_t i) const { return resolve(i + 1).at(i); }

std::vector<json> Pipeline::resolve(size_t count) const {
  // One pass: each stage's outputs are known once its own config is.
  std::vector<json> configs;
  std::map<std::string, std::string> outputs;
  std::string latest_model, latest_accepted;
  for (size_t i = 0; i < std::min(count, stages_.size()); ++i) {
    const PipelineStage& stage = stages_[i];
    json c = base_;
    c.merge_patch(stage.config);
    c["output_dir"] = (fs::path(output_dir_) / stage.name).string();
    // NB: "@fresh" as model.init_from asks for a new model from model.config, never an earlier stage's.
    const bool fresh = c.contains("model") && c["model"].value("init_from", std::string()) == "@fresh";
    if (fresh) c["model"]["init_from"] = "";
    resolve_references(c, outputs, where_ + ": stage \"" + stage.name + "\"");
    if (!fresh && stage.type != "distill" && unset(c, "model", "init_from") && !latest_model.empty()) {
      c["model"]["init_from"] = latest_model;
    }
    if (stage.type == "distill" && unset(c, "distill", "teacher") && !latest_model.empty()) {
      c["distill"]["teacher"] = latest_model;
    }
    if ((stage.type == "sft" || stage.type == "distill") && unset(c, "sft", "train") && !latest_accepted.empty()) {
      c["sft"]["train"] = latest_accepted;
    }
    const TrainConfig resolved = TrainConfig::from_json(c);
    const std::string model = model_output(stage.type, resolved);
    if (!model.empty()) {
      outputs[stage.name] = latest_model = model;
    } else {
      outputs[stage.name] = latest_accepted = accepted_output(resolved);
    }
    configs.push_back(std::move(c));
  }
  return configs;
}

json Pipeline::run() {
  std::error_code ec;
  fs::create_directories(output_dir_, ec);
  if (ec) throw Error("pipeline output_dir " + output_dir_ + ": cannot create (" + ec.message() + ")");
  const auto start = std::chrono::steady_clock::now();
  json records = json::array();
  const std::vector<json> configs = resolve(stages_.size());
  for (size_t i = 0; i < stages_.size(); ++i) {
    const PipelineStage& stage = stages_[i];
    const TrainConfig c = TrainConfig::from_json(configs[i]);
    const fs::path marker = fs::path(c.output_dir) / "stage.json";
    if (fs::exists(marker)) {
      records.push_back(read_json_file(marker.string(), "a finished stage's record"));
      log::info("pipeline: stage " + std::to_string(i + 1) + "/" + std::to_string(stages_.size()) + " \"" +
                stage.name + "\" already finished");
      continue;
    }
    log::info("pipeline: stage " + std::to_string(i + 1) + "/" + std::to_string(stages_.size()) + " \"" + stage.name +
              "\" (" + stage.type + ")");
    const auto stage_start = std::chrono::steady_clock::now();
    json result;
    if (stage.type == "sft") {
      result = SFTTrainer::from_config(c)->train();
    } else if (stage.type == "grpo") {
      result = GRPOTrainer::from_config(c)->train();
    } else if (stage.type == "rejection_sample") {
      result = RejectionSampler::from_config(c)->run();
    } else {
      result = Distiller::from_config(c)->train();
    }
    if (result.value("stopped", false)) {
      // NB: a stopped stage is not finished: no record, so the next run resumes it.
      log::warn("pipeline: stopped in stage " + std::to_string(i + 1) + "/" + std::to_string(stages_.size()) + " \"" +
                stage.name + "\"; running the pipeline again continues it");
      return {{"stages", records}, {"stopped", true}, {"stopped_in", stage.name}};
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - stage_start).count();
    const std::string model = model_output(stage.type, c);
    json record = {{"name", stage.name}, {"type", stage.type},  {"output", c.output_dir}, {"model", model},
                   {"seconds", seconds}, {"accuracy", nullptr}, {"mean_reward", nullptr}, {"problems", 0},
                   {"result", result}};
    if (!model.empty() && !c.data.eval.empty()) {
      // The held-out accuracy of the model the stage wrote, greedy, as grpo eval computes it.
      ModelConfig m = c.model;
      m.init_from = model;
      apply_threads(c.threads);
      std::shared_ptr<const Tokenizer> tokenizer = make_tokenizer(c.tokenizer, model);
      Policy policy(make_model(m, *tokenizer, c.seed));
      const PromptDataset data = PromptDataset::from_jsonl(c.data.eval, dataset_options(c.data, c.seed));
      const int64_t T = c.eval.max_new_tokens > 0 ? c.eval.max_new_tokens : c.sampling.max_new_tokens;
      const EvalResult e = evaluate(policy, *tokenizer, data, RewardSet::from_json(c.rewards), c.eval, T,
                                    c.data.eval_limit, c.eval.accuracy_reward, stop_ids(c.sampling, *tokenizer));
      record["accuracy"] = e.accuracy ? json(*e.accuracy) : json();
      record["mean_reward"] = e.mean_reward;
      record["problems"] = e.problems;
      log::info("pipeline: after \"" + stage.name + "\": held-out accuracy " +
                (e.accuracy ? log::fixed(*e.accuracy, 3) : std::string("n/a")) + " on " +
                std::to_string(e.problems) + " problems");
    }
    write_file_atomic(marker.string(), json_text(record, 2) + "\n");
    records.push_back(record);
  }
  double total = 0;
  for (const json& r : records) total += r.value("seconds", 0.0);
  const json report = {{"output_dir", output_dir_},
                       {"stages", records},
                       {"seconds", total},
                       {"seconds_this_run",
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
  write_file_atomic((fs::path(output_dir_) / "pipeline_report.json").string(), json_text(report, 2) + "\n");
  PlotSeries accuracy{"held-out accuracy (greedy) after the stage", {}, {}, "#2ca02c"};
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i]["accuracy"].is_number()) {
      accuracy.x.push_back(static_cast<double>(i + 1));
      accuracy.y.push_back(records[i]["accuracy"].get<double>());
    }
  }
  if (!accuracy.x.empty()) {
    PlotOptions po;
    po.title = "Pipeline: held-out accuracy after each stage";
    po.x_label = "stage";
    po.y_label = "accuracy";
    po.y_min = 0;
    write_svg_line_plot((fs::path(output_dir_) / "pipeline.svg").string(), {accuracy}, po);
  }
  return report;
}

}  // namespace grpo
