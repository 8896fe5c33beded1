// Checkpoints: a failed write leaves the previous checkpoint intact and no
// temporary folder, keep_last prunes, incomplete folders are never the latest,
// and the generator state round-trips through trainer_state.json.
#include <grpo/error.h>
#include <grpo/train/checkpoint.h>
#include <grpo/train/grpo_trainer.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <csignal>
#include <filesystem>
#include <sys/resource.h>

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
  EXPECT_NE(message.find("checkpoint-2"), std::string::npos) << message;
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
