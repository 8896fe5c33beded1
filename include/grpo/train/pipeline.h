// A multi-stage run (grpo pipeline -c r1.json): the DeepSeek-R1 recipe as a
// list of stages run in order, each a whole TrainConfig in its own folder,
// each starting from what the stages before it wrote. JSON:
//   {"output_dir": "runs/r1",
//    "base": {TrainConfig keys every stage shares},
//    "stages": [{"name": "cold_start", "type": "sft", "config": {keys merged over base}},
//               {"name": "reasoning_rl", "type": "grpo", "config": {...}},
//               {"name": "rejection", "type": "rejection_sample", "config": {...}},
//               {"name": "sft_on_accepted", "type": "sft"}, ...]}
// A stage's config is base with its "config" merged over it (JSON merge
// patch), output_dir set to output_dir/<name>. What a stage reads, unless its
// config says otherwise:
//   model.init_from   the newest model an earlier stage wrote (sft: <dir>/sft,
//                     grpo: its last checkpoint, distill: <dir>/distill); a
//                     distill stage's student is only what its config says
//   distill.teacher   the newest model an earlier stage wrote
//   sft.train         the accepted pairs of the newest rejection_sample stage
// and any string "@<stage name>" in a config names that stage's output: its
// model folder, or a rejection_sample stage's accepted.jsonl; model.init_from
// "@fresh" is a new model from model.config.
// A finished stage (its folder's stage.json) is not run again; a stage that
// was stopped resumes from its own checkpoints. After each stage its model is
// evaluated greedily on data.eval (held-out accuracy by eval.accuracy_reward);
// output_dir/pipeline_report.json holds every stage's results and time, and
// output_dir/pipeline.svg plots the accuracy after each stage.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace grpo {

struct PipelineStage {
  std::string name;     // folder name: letters, digits, '_', '-' and '.'
  std::string type;     // "sft" | "grpo" | "rejection_sample" | "distill"
  nlohmann::json config = nlohmann::json::object();  // merged over the base
};

class Pipeline {
 public:
  // Raises grpo::Error naming the key (and `where`, e.g. the file) for an
  // unknown key or type, a duplicate or malformed name, a stage config that
  // is not a valid TrainConfig, or an "@name" that is not an earlier stage.
  static Pipeline from_json(const nlohmann::json& j, const std::string& where = "pipeline");
  // A JSON file, with "key.path=value" overrides applied to it first.
  static Pipeline from_file(const std::string& path, const std::vector<std::string>& overrides = {});

  // Runs the stages not yet finished and returns the report (also written as
  // output_dir/pipeline_report.json): {"output_dir", "stages": [{"name",
  // "type", "output", "model", "seconds", "accuracy", "mean_reward",
  // "problems", "result"}], "seconds"}.
  nlohmann::json run();

  const std::vector<PipelineStage>& stages() const { return stages_; }
  const std::string& output_dir() const { return output_dir_; }
  // Stage i's resolved config (base, its own keys, the wiring above) as JSON.
  nlohmann::json stage_config(size_t i) const;

 private:
  // The resolved configs of the first `count` stages.
  std::vector<nlohmann::json> resolve(size_t count) const;

  std::string where_;
  std::string output_dir_;
  nlohmann::json base_;
  std::vector<PipelineStage> stages_;
};

}  // namespace grpo
