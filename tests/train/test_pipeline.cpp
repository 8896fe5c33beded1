// Pipeline: five tiny stages (SFT, GRPO, rejection sampling, SFT on the
// accepted pairs, distillation into a fresh student) wired to each other's
// outputs, evaluated after each, not run again once finished; and the errors
// of a malformed pipeline.
#include <grpo/error.h>
#include <grpo/train/pipeline.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "test_util.h"
#include "train/tiny_run.h"

namespace fs = std::filesystem;
using namespace grpo_test;

namespace {

json tiny_pipeline(const TempDir& dir) {
  {
    std::ofstream prompts(dir.path / "prompts.jsonl"), pairs(dir.path / "pairs.jsonl");
    for (int i = 0; i < 8; ++i) {
      std::string p;
      for (int k = 0; k <= i % 3; ++k) p += (i + k) % 2 ? "a" : "b";
      prompts << json{{"prompt", p}}.dump() << "\n";
      pairs << json{{"prompt", p}, {"completion", std::string(1 + i % 3, 'a')}}.dump() << "\n";
    }
  }
  json base = tiny_config("unused").to_json();
  base["data"]["train"] = (dir.path / "prompts.jsonl").string();
  base["data"]["eval"] = (dir.path / "prompts.jsonl").string();
  base["data"]["eval_limit"] = 4;
  base["rewards"] = {{"rewards", {{{"name", "regex"}, {"pattern", "a"}}}}};
  base["eval"]["accuracy_reward"] = "regex";
  base["sft"]["batch_size"] = 2;
  base["sft"]["steps"] = 2;
  base["grpo"]["steps"] = 2;
  base["grpo"]["prompts_per_step"] = 2;
  base["grpo"]["group_size"] = 2;
  base["checkpoint"]["resume"] = true;
  return {{"output_dir", (dir.path / "run").string()},
          {"base", base},
          {"stages",
           {{{"name", "cold_start"}, {"type", "sft"}, {"config", {{"sft", {{"train", (dir.path / "pairs.jsonl").string()}}}}}},
            {{"name", "rl"}, {"type", "grpo"}},
            {{"name", "rejection"},
             {"type", "rejection_sample"},
             {"config", {{"rejection", {{"samples_per_prompt", 4}, {"limit", 6}, {"keep", "all"},
                                        {"accept_truncated", true}}}}}},
            {{"name", "sft2"}, {"type", "sft"}},
            {{"name", "student"}, {"type", "distill"}, {"config", {{"distill", {{"alpha", 0.7}}}}}}}}};
}

}  // namespace

TEST(Pipeline, RunsTheStagesOnEachOthersOutputsOnce) {
  TempDir dir("pipeline");
  const json spec = tiny_pipeline(dir);
  grpo::Pipeline p = grpo::Pipeline::from_json(spec);
  const std::string out = (dir.path / "run").string();
  // The wiring: each stage starts from the newest model, SFT reads the accepted pairs, distill's teacher is the last model.
  EXPECT_EQ(p.stage_config(0)["model"]["init_from"], "");
  EXPECT_EQ(p.stage_config(1)["model"]["init_from"], out + "/cold_start/sft");
  EXPECT_EQ(p.stage_config(2)["model"]["init_from"], out + "/rl/checkpoint-2");
  EXPECT_EQ(p.stage_config(3)["model"]["init_from"], out + "/rl/checkpoint-2");
  EXPECT_EQ(p.stage_config(3)["sft"]["train"], out + "/rejection/rejection/accepted.jsonl");
  EXPECT_EQ(p.stage_config(4)["distill"]["teacher"], out + "/sft2/sft");
  EXPECT_EQ(p.stage_config(4)["model"]["init_from"], "") << "the student is what its config says: a fresh model";
  EXPECT_EQ(p.stage_config(4)["sft"]["train"], out + "/rejection/rejection/accepted.jsonl");

  const json report = p.run();
  ASSERT_EQ(report["stages"].size(), 5u);
  for (const json& s : report["stages"]) {
    EXPECT_GE(s["seconds"].get<double>(), 0.0);
    if (s["type"] == "rejection_sample") {
      EXPECT_TRUE(s["accuracy"].is_null());
      EXPECT_EQ(s["result"]["prompts"], 6);
    } else {
      EXPECT_TRUE(s["accuracy"].is_number()) << s.dump();
      EXPECT_EQ(s["problems"], 4);
      EXPECT_TRUE(fs::exists(fs::path(s["model"].get<std::string>()) / "model.pt")) << s["model"];
    }
  }
  EXPECT_TRUE(fs::exists(dir.path / "run" / "pipeline_report.json"));
  EXPECT_TRUE(fs::exists(dir.path / "run" / "pipeline.svg"));

  // Run again: nothing is redone; with the last stage's record gone, only it runs.
  const json again = grpo::Pipeline::from_json(spec).run();
  EXPECT_EQ(again["stages"], report["stages"]);
  fs::remove(dir.path / "run" / "student" / "stage.json");
  fs::remove_all(dir.path / "run" / "student" / "distill");
  const json last = grpo::Pipeline::from_json(spec).run();
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(last["stages"][i], report["stages"][i]) << i;
  EXPECT_EQ(last["stages"][4]["name"], "student");
}

TEST(Pipeline, MalformedPipelinesNameTheirError) {
  TempDir dir("pipeline_errors");
  json spec = tiny_pipeline(dir);
  spec["stages"][1]["type"] = "ppo";
  EXPECT_HAS(error_of([&] { grpo::Pipeline::from_json(spec, "r1.json"); }),
             "r1.json: stages[1].type: must be one of sft, grpo, rejection_sample, distill, got \"ppo\"");
  spec = tiny_pipeline(dir);
  spec["stages"][1]["name"] = "cold_start";
  EXPECT_HAS(error_of([&] { grpo::Pipeline::from_json(spec); }), "stages[1].name: \"cold_start\" is used twice");
  spec = tiny_pipeline(dir);
  spec["stages"][1]["name"] = "../up";
  EXPECT_HAS(error_of([&] { grpo::Pipeline::from_json(spec); }), "stages[1].name: \"../up\" must be letters");
  spec = tiny_pipeline(dir);
  spec["stages"][4]["config"]["distill"]["teacher"] = "@later";
  EXPECT_HAS(error_of([&] { grpo::Pipeline::from_json(spec); }), "stage \"student\": \"@later\" names no earlier stage");
  spec = tiny_pipeline(dir);
  spec["stages"][1]["config"] = {{"grpo", {{"group_size", 1}}}};
  EXPECT_HAS(error_of([&] { grpo::Pipeline::from_json(spec); }), "stage \"rl\": grpo.group_size");
  spec = tiny_pipeline(dir);
  spec["stages"][3]["config"] = {{"model", {{"init_from", "@fresh"}}}};
  EXPECT_EQ(grpo::Pipeline::from_json(spec).stage_config(3)["model"]["init_from"], "") << "@fresh: a new model";
  spec = tiny_pipeline(dir);
  spec["stagez"] = json::array();
  EXPECT_HAS(error_of([&] { grpo::Pipeline::from_json(spec); }), "unknown key \"stagez\"");
}
