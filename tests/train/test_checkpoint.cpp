// Checkpoints: a failed write leaves the previous checkpoint intact and no
// temporary folder, keep_last prunes, incomplete folders are never the latest,
// resuming refuses another dtype or tokenizer and removes what killed writes
// left, and the generator state round-trips through trainer_state.json.
#include <grpo/error.h>
#include <grpo/files.h>
#include <grpo/stop.h>
#include <grpo/train/checkpoint.h>
#include <grpo/train/grpo_trainer.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <csignal>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "train/tiny_run.h"

namespace fs = std::filesystem;
using namespace grpo_test;

TEST(Trainer, FailedCheckpointWriteKeepsThePreviousOne) {
  TempDir dir("failed_write");
  auto trainer = tiny_trainer(tiny_config(dir.path.string()));
  trainer->step();
  const std::string first = trainer->save_checkpoint();
  trainer->step();
  // NB: a file-size limit makes the next write fail halfway, as a full disk would.
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  rlimit small = old;
  small.rlim_cur = 4096;
  setrlimit(RLIMIT_FSIZE, &small);
  const std::string message = error_of([&] { trainer->save_checkpoint(); });
  setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_NE(message.find("checkpoint-2/"), std::string::npos) << message;
  EXPECT_EQ(message.find(".tmp"), std::string::npos) << message;  // the folder asked for, not the temporary one
  ASSERT_EQ(grpo::latest_checkpoint(dir.path.string()), first);
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
  // The surviving checkpoint still loads and resumes at step 1.
  auto again = tiny_trainer(tiny_config(dir.path.string()));
  again->load_checkpoint(first);
  EXPECT_EQ(again->global_step(), 1);
}

// keep_last prunes old checkpoints; a folder left half-written (no trainer
// state) or with another name is never taken for the latest one.
TEST(Trainer, CheckpointsArePrunedAndIncompleteOnesIgnored) {
  TempDir dir("prune");
  grpo::TrainConfig c = tiny_config(dir.path.string());
  c.grpo.steps = 4;
  c.checkpoint.save_every = 1;
  c.checkpoint.keep_last = 2;
  tiny_trainer(c)->train();
  const std::vector<std::string> kept = grpo::list_checkpoints(dir.path.string());
  EXPECT_EQ(kept, (std::vector<std::string>{grpo::checkpoint_dir(dir.path.string(), 3),
                                            grpo::checkpoint_dir(dir.path.string(), 4)}));
  fs::create_directories(dir / "checkpoint-9");  // as a crash mid-write would leave it, were it not for the rename
  fs::copy_file(dir / "checkpoint-4/model.pt", dir / "checkpoint-9/model.pt");
  fs::create_directories(dir / "checkpoint-x");
  EXPECT_EQ(grpo::latest_checkpoint(dir.path.string()), grpo::checkpoint_dir(dir.path.string(), 4));
}

// A fresh run (resuming nothing) in the folder of an earlier, longer run:
// the earlier run's checkpoints, metrics and leftovers move to previous-<n>
// together, so keep_last prunes only the new run's and the metrics never mix.
TEST(Trainer, AFreshRunSetsAsideAnEarlierRun) {
  TempDir dir("fresh_run");
  for (int step : {27, 30}) {
    const fs::path old = dir.path / ("checkpoint-" + std::to_string(step));
    fs::create_directories(old);
    std::ofstream(old / "model.pt") << "old";
    std::ofstream(old / "trainer_state.json") << "{}";
  }
  fs::create_directories(dir / "checkpoint-33.tmp-99999");  // what a kill inside a write leaves
  std::ofstream(dir / "metrics.jsonl") << "{\"step\": 30}\n";
  std::ofstream(dir / "notes.txt") << "mine";
  grpo::TrainConfig c = tiny_config(dir.path.string());
  c.grpo.steps = 3;
  c.checkpoint.save_every = 1;
  c.checkpoint.keep_last = 2;
  c.checkpoint.resume = false;
  tiny_trainer(c)->train();
  EXPECT_EQ(grpo::list_checkpoints(dir.path.string()),
            (std::vector<std::string>{grpo::checkpoint_dir(dir.path.string(), 2), grpo::checkpoint_dir(dir.path.string(), 3)}));
  const fs::path aside = dir.path / "previous-1";
  for (const char* name : {"checkpoint-27", "checkpoint-30", "checkpoint-33.tmp-99999", "metrics.jsonl"}) {
    EXPECT_TRUE(fs::exists(aside / name)) << name;
  }
  EXPECT_EQ(grpo::read_file((aside / "metrics.jsonl").string()), "{\"step\": 30}\n");
  EXPECT_TRUE(fs::exists(dir / "notes.txt"));  // not a run's file: stays
  const std::string metrics = grpo::read_file(dir / "metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 3);
  EXPECT_EQ(metrics.find("{\"step\": 30}"), std::string::npos);
  // Resuming sets nothing aside; another fresh run goes on to previous-2.
  c.checkpoint.resume = true;
  c.grpo.steps = 4;
  tiny_trainer(c)->train();
  EXPECT_FALSE(fs::exists(dir / "previous-2"));
  EXPECT_EQ(grpo::latest_checkpoint(dir.path.string()), grpo::checkpoint_dir(dir.path.string(), 4));
  c.checkpoint.resume = false;
  tiny_trainer(c)->train();
  EXPECT_TRUE(fs::exists(dir.path / "previous-2" / "checkpoint-4"));
  EXPECT_TRUE(fs::exists(aside / "checkpoint-30"));
  // Only the names given move (an SFT stage's files); an empty folder sets nothing aside.
  TempDir sft("fresh_sft");
  fs::create_directories(sft.path / "sft_checkpoints" / "checkpoint-5");
  fs::create_directories(sft / "checkpoint-7");
  std::ofstream(sft / "sft_metrics.jsonl") << "x";
  EXPECT_EQ(grpo::set_aside_previous_run(sft.path.string(), {"sft_checkpoints", "sft_metrics.jsonl", "sft"}, false),
            sft / "previous-1");
  EXPECT_TRUE(fs::exists(sft.path / "previous-1" / "sft_checkpoints" / "checkpoint-5"));
  EXPECT_TRUE(fs::exists(sft / "checkpoint-7"));
  EXPECT_EQ(grpo::set_aside_previous_run(sft.path.string(), {"sft_checkpoints"}, false), std::nullopt);
}

// A stop request (what the first SIGINT/SIGTERM/SIGHUP becomes in the command
// line) ends the run after its step with a checkpoint, even with save_every 0;
// resuming from it ends where a straight run does, bit for bit.
TEST(Trainer, AStopRequestCheckpointsAndResumesExactly) {
  TempDir straight_dir("stop_straight"), stopped_dir("stop_stopped");
  grpo::TrainConfig c = tiny_config(straight_dir.path.string());
  c.grpo.steps = 4;
  c.checkpoint.save_every = 0;
  std::vector<double> straight, stopped;
  auto one = tiny_trainer(c);
  one->on_step_end([&](const nlohmann::json& m) { straight.push_back(m["loss"].get<double>()); });
  one->train();
  c.output_dir = stopped_dir.path.string();
  auto first = tiny_trainer(c);
  first->on_step_end([&](const nlohmann::json& m) {
    stopped.push_back(m["loss"].get<double>());
    if (m["step"].get<int64_t>() == 2) grpo::request_stop(15);
  });
  const nlohmann::json report = first->train();
  EXPECT_TRUE(grpo::stop_requested());
  EXPECT_EQ(grpo::stop_signal(), 15);
  grpo::clear_stop_request();
  EXPECT_FALSE(grpo::stop_requested());
  EXPECT_TRUE(report.value("stopped", false));
  EXPECT_EQ(report["steps"], 2) << report.dump();
  EXPECT_EQ(grpo::list_checkpoints(stopped_dir.path.string()),
            std::vector<std::string>{grpo::checkpoint_dir(stopped_dir.path.string(), 2)});
  c.checkpoint.resume = true;
  auto second = tiny_trainer(c);
  second->on_step_end([&](const nlohmann::json& m) { stopped.push_back(m["loss"].get<double>()); });
  EXPECT_FALSE(second->train().value("stopped", false));
  EXPECT_EQ(stopped, straight);
  const std::string metrics = grpo::read_file(stopped_dir / "metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 4);
}

// A newest checkpoint damaged after it was written (a truncated model.pt) is
// passed over with a warning for the previous complete one, and the run ends
// where a straight one does.
TEST(Trainer, ADamagedNewestCheckpointFallsBackToThePreviousOne) {
  TempDir straight_dir("damaged_straight"), dir("damaged");
  grpo::TrainConfig c = tiny_config(straight_dir.path.string());
  c.grpo.steps = 4;
  std::vector<double> straight, resumed;
  auto one = tiny_trainer(c);
  one->on_step_end([&](const nlohmann::json& m) { straight.push_back(m["loss"].get<double>()); });
  one->train();
  c.output_dir = dir.path.string();
  c.grpo.steps = 3;
  c.checkpoint.save_every = 1;
  tiny_trainer(c)->train();
  const fs::path newest = dir.path / "checkpoint-3" / "model.pt";
  fs::resize_file(newest, fs::file_size(newest) / 2);
  c.grpo.steps = 4;
  c.checkpoint.resume = true;
  auto again = tiny_trainer(c);
  again->on_step_end([&](const nlohmann::json& m) { resumed.push_back(m["loss"].get<double>()); });
  again->train();
  ASSERT_EQ(resumed.size(), 2u);  // steps 3 and 4, from checkpoint-2
  EXPECT_EQ(resumed[0], straight[2]);
  EXPECT_EQ(resumed[1], straight[3]);
  // With nothing to fall back to, the damage is the error.
  TempDir lone("damaged_lone");
  c.output_dir = lone.path.string();
  c.grpo.steps = 1;
  c.checkpoint.resume = false;
  tiny_trainer(c)->train();
  const fs::path only = lone.path / "checkpoint-1" / "model.pt";
  fs::resize_file(only, fs::file_size(only) / 2);
  c.checkpoint.resume = true;
  c.grpo.steps = 2;
  EXPECT_FALSE(error_of([&] { tiny_trainer(c)->train(); }).empty());
}

// A checkpoint is resumed only by a run of its kind: another model.dtype, or
// a char tokenizer of another alphabet of the same size, is refused with the
// checkpoint and both sides named, and no older checkpoint of the folder (the
// same run's) is tried instead. A checkpoint that records no tokenizer
// (written before the record was kept) still resumes, with a warning.
TEST(Trainer, ResumingWithAnotherDtypeOrTokenizerIsRefused) {
  TempDir dir("mismatch");
  grpo::TrainConfig c = tiny_config(dir.path.string());
  c.tokenizer.characters = "abc";
  c.grpo.steps = 2;
  c.checkpoint.save_every = 1;
  tiny_trainer(c)->train();
  const std::string newest = grpo::checkpoint_dir(dir.path.string(), 2);
  c.grpo.steps = 3;
  c.checkpoint.resume = true;

  grpo::TrainConfig other = c;
  other.model.dtype = "float64";
  ::testing::internal::CaptureStderr();
  std::string message = error_of([&] { tiny_trainer(other)->train(); });
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_HAS(message, newest + ": the checkpoint holds a float32 model, but this run's model.dtype is \"float64\"");
  EXPECT_HAS(message, "model.init_from " + newest);
  EXPECT_EQ(log.find("resuming from"), std::string::npos) << log;  // no fallback to checkpoint-1

  other = c;
  other.tokenizer.characters = "abd";
  const auto ours = grpo::make_tokenizer(c.tokenizer), theirs = grpo::make_tokenizer(other.tokenizer);
  ASSERT_EQ(ours->vocab_size(), theirs->vocab_size());
  message = error_of([&] { tiny_trainer(other)->train(); });
  EXPECT_HAS(message, newest + ": the checkpoint was trained with another tokenizer than this run's");
  EXPECT_HAS(message, grpo::tokenizer_identity(*ours)["vocabulary_hash"].get<std::string>());
  EXPECT_HAS(message, grpo::tokenizer_identity(*theirs)["vocabulary_hash"].get<std::string>());
  EXPECT_HAS(message, "id " + std::to_string(*ours->token_to_id("c")) + " is \"c\" there and \"d\" here");
  EXPECT_EQ(grpo::latest_checkpoint(dir.path.string()), newest);  // nothing was trained

  // The run's own kind resumes.
  EXPECT_EQ(tiny_trainer(c)->train()["steps"], 3);
  // A checkpoint of a bfloat16 run (float32 masters in model.pt) holds a bfloat16 model.
  TempDir mixed("mismatch_mixed");
  grpo::TrainConfig b = tiny_config(mixed.path.string());
  b.model.dtype = "bfloat16";
  b.grpo.steps = 1;
  tiny_trainer(b)->train();
  b.model.dtype = "float32";
  b.grpo.steps = 2;
  b.checkpoint.resume = true;
  EXPECT_HAS(error_of([&] { tiny_trainer(b)->train(); }),
             grpo::checkpoint_dir(mixed.path.string(), 1) +
                 ": the checkpoint holds a bfloat16 model, but this run's model.dtype is \"float32\"");

  // Without the record, another tokenizer is resumed with a warning.
  const std::string spec_path = grpo::checkpoint_dir(dir.path.string(), 3) + "/model.json";
  nlohmann::json spec = nlohmann::json::parse(grpo::read_file(spec_path));
  ASSERT_TRUE(spec.contains("tokenizer"));
  spec.erase("tokenizer");
  std::ofstream(spec_path) << spec.dump(2);
  other = c;
  other.tokenizer.characters = "abd";
  other.grpo.steps = 4;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(tiny_trainer(other)->train()["steps"], 4);
  EXPECT_HAS(::testing::internal::GetCapturedStderr(), "records no tokenizer");
}

namespace {

// The id of a process that has ended.
pid_t ended_process() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

}  // namespace

// A run killed inside a checkpoint write leaves "checkpoint-<step>.tmp-<pid>";
// resuming removes those of processes that are gone, and leaves a live
// process's (it may be writing) and folders of other names.
TEST(Trainer, ResumingRemovesTheTemporaryFoldersOfKilledWrites) {
  TempDir dir("stale_tmp");
  grpo::TrainConfig c = tiny_config(dir.path.string());
  c.grpo.steps = 1;
  tiny_trainer(c)->train();
  const std::string dead = std::to_string(ended_process()), live = std::to_string(::getpid());
  for (const std::string& name : {"checkpoint-2.tmp-" + dead, "checkpoint-3.tmp-" + live, "final.tmp-" + dead,
                                  "notes.tmp-" + dead, std::string("checkpoint-4.tmp-x")}) {
    fs::create_directories(dir.path / name);
    std::ofstream(dir.path / name / "model.pt") << "half";
  }
  c.grpo.steps = 2;
  c.checkpoint.resume = true;
  EXPECT_EQ(tiny_trainer(c)->train()["steps"], 2);
  EXPECT_FALSE(fs::exists(dir.path / ("checkpoint-2.tmp-" + dead)));
  EXPECT_FALSE(fs::exists(dir.path / ("final.tmp-" + dead)));
  EXPECT_TRUE(fs::exists(dir.path / ("checkpoint-3.tmp-" + live)));
  EXPECT_TRUE(fs::exists(dir.path / ("notes.tmp-" + dead)));
  EXPECT_TRUE(fs::exists(dir.path / "checkpoint-4.tmp-x"));
  // The names given besides checkpoint-<step>; what was removed is returned.
  fs::create_directories(dir.path / ("sft.tmp-" + dead));
  fs::create_directories(dir.path / ("checkpoint-9.tmp-" + dead));
  EXPECT_EQ(grpo::remove_stale_checkpoint_temporaries(dir.path.string(), {"sft"}).size(), 2u);
  EXPECT_FALSE(fs::exists(dir.path / ("sft.tmp-" + dead)));
  EXPECT_TRUE(grpo::remove_stale_checkpoint_temporaries(dir.path.string(), {"sft"}).empty());
  // A file being written; a folder being pruned; a folder set aside for its
  // replacement, removed when the replacement is in place, else put back.
  std::ofstream(dir.path / ("metrics.jsonl.tmp." + dead)) << "{\"step\": 1}";
  std::ofstream(dir.path / ("notes.txt.tmp." + live)) << "busy";
  fs::create_directories(dir.path / ("checkpoint-1.pruned-" + dead));
  fs::create_directories(dir.path / ("checkpoint-2.old-" + dead));
  fs::create_directories(dir.path / ("checkpoint-7.old-" + dead));
  std::ofstream(dir.path / ("checkpoint-7.old-" + dead) / "model.pt") << "whole";
  EXPECT_EQ(grpo::remove_stale_checkpoint_temporaries(dir.path.string()).size(), 3u);
  EXPECT_FALSE(fs::exists(dir.path / ("metrics.jsonl.tmp." + dead)));
  EXPECT_TRUE(fs::exists(dir.path / ("notes.txt.tmp." + live)));
  EXPECT_FALSE(fs::exists(dir.path / ("checkpoint-1.pruned-" + dead)));
  EXPECT_FALSE(fs::exists(dir.path / ("checkpoint-2.old-" + dead)));
  EXPECT_TRUE(fs::exists(dir.path / "checkpoint-2" / "model.pt"));
  EXPECT_FALSE(fs::exists(dir.path / ("checkpoint-7.old-" + dead)));
  EXPECT_TRUE(fs::exists(dir.path / "checkpoint-7" / "model.pt"));
}

TEST(Checkpoint, PruningLeavesNoPartialCheckpoint) {
  TempDir dir("prune");
  for (int step : {2, 4, 6}) {
    fs::create_directories(dir.path / ("checkpoint-" + std::to_string(step)));
    std::ofstream(dir.path / ("checkpoint-" + std::to_string(step)) / "model.pt") << "m";
    std::ofstream(dir.path / ("checkpoint-" + std::to_string(step)) / "trainer_state.json") << "{}";
  }
  grpo::prune_checkpoints(dir.path.string(), 1);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir.path)) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"checkpoint-6"});
}

// The generator state saved in trainer_state.json: a round trip restores the
// stream exactly, and a damaged value is an error that leaves the generator alone.
TEST(Checkpoint, CpuRngStateRoundTripAndBadValues) {
  torch::manual_seed(11);
  const json saved = grpo::cpu_rng_state();
  const torch::Tensor first = torch::rand({4});
  grpo::set_cpu_rng_state(saved);
  EXPECT_TRUE(torch::equal(torch::rand({4}), first));

  grpo::set_cpu_rng_state(saved);
  EXPECT_HAS(error_of([] { grpo::set_cpu_rng_state(json(42)); }), "\"cpu_rng\" must be a hex string");
  EXPECT_HAS(error_of([] { grpo::set_cpu_rng_state(json("abc")); }), "\"cpu_rng\" must be a hex string");
  EXPECT_HAS(error_of([] { grpo::set_cpu_rng_state(json("zz")); }), "non-hex character");
  EXPECT_HAS(error_of([] { grpo::set_cpu_rng_state(json("00ff")); }), "bad \"cpu_rng\"");  // wrong length
  EXPECT_TRUE(torch::equal(torch::rand({4}), first));  // none of them touched the generator
}
