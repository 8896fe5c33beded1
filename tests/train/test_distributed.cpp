// Data parallel over c10d: torchrun's environment, and whole jobs of 2 CPU
// processes (Gloo, 127.0.0.1, a free port) of tests/train/dist_worker.cpp
// against one process on the same global batch: the same weights after one
// update for every loss type, with mini- and micro-batches, uneven shares
// and dynamic sampling; exact resume; the failures named. Every job is
// bounded in time and killed past it.
#include <gtest/gtest.h>
#include <grpo/io/weights.h>
#include <grpo/train/distributed.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "test_util.h"
#include "train/tiny_run.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- torchrun's environment

// Sets the given variables (nullptr = unset) for one scope.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::vector<std::pair<std::string, const char*>>& vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      if (value) setenv(name.c_str(), value, 1);
      else unsetenv(name.c_str());
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) setenv(name.c_str(), value->c_str(), 1);
      else unsetenv(name.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

const std::vector<std::string> kVars = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                                        "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT"};

std::vector<std::pair<std::string, const char*>> env_with(std::vector<std::pair<std::string, const char*>> set) {
  std::vector<std::pair<std::string, const char*>> all;
  for (const std::string& v : kVars) {
    const char* value = nullptr;
    for (const auto& [name, given] : set) {
      if (name == v) value = given;
    }
    all.emplace_back(v, value);
  }
  return all;
}

TEST(ProcessPlacement, WithoutTorchrunIsOneProcess) {
  ScopedEnv env(env_with({}));
  const grpo::ProcessPlacement p = grpo::ProcessPlacement::from_env();
  EXPECT_EQ(p.rank, 0);
  EXPECT_EQ(p.world_size, 1);
  const auto d = grpo::Distributed::from_env({}, "cpu");
  EXPECT_FALSE(d->active());
  EXPECT_EQ(d->backend_name(), "none");
  EXPECT_EQ(d->share(5), std::make_pair(int64_t{0}, int64_t{5}));
  EXPECT_EQ(d->device_for("cuda"), "cuda");
  // A job of one: every collective is the identity.
  std::vector<torch::Tensor> t{torch::ones({3})};
  d->all_reduce_sum(t, "x");
  d->start_all_reduce_sum(t[0], "x").wait();
  EXPECT_TRUE(torch::equal(t[0], torch::ones({3})));
  EXPECT_EQ(d->all_reduce_sum(2.5, "x"), 2.5);
}

TEST(ProcessPlacement, ReadsTorchrunsVariables) {
  ScopedEnv env(env_with({{"RANK", "3"},
                          {"WORLD_SIZE", "4"},
                          {"LOCAL_RANK", "1"},
                          {"MASTER_ADDR", "10.0.0.7"},
                          {"MASTER_PORT", "29400"},
                          {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                          {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  const grpo::ProcessPlacement p = grpo::ProcessPlacement::from_env();
  EXPECT_EQ(p.rank, 3);
  EXPECT_EQ(p.world_size, 4);
  EXPECT_EQ(p.local_rank, 1);
  EXPECT_EQ(p.master_addr, "10.0.0.7");
  EXPECT_EQ(p.master_port, 29400);
  EXPECT_TRUE(p.agent_store);
  EXPECT_EQ(p.restart_count, 2);
}

TEST(ProcessPlacement, BadVariablesAreNamed) {
  struct Case {
    std::vector<std::pair<std::string, const char*>> vars;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"RANK", "0"}}, "RANK and WORLD_SIZE must be set together"},
      {{{"WORLD_SIZE", "2"}}, "only WORLD_SIZE is set"},
      {{{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}, "RANK must be an integer in [0, 1]"},
      {{{"RANK", "x"}, {"WORLD_SIZE", "2"}}, "RANK must be an integer"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "0"}}, "WORLD_SIZE must be an integer in [1, "},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29500"}}, "MASTER_ADDR must be set"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}, "MASTER_PORT must be set"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}},
       "MASTER_PORT must be an integer in [1, 65535], got \"70000\""},
  };
  for (const Case& c : cases) {
    ScopedEnv env(env_with(c.vars));
    EXPECT_HAS(error_of([&] { grpo::ProcessPlacement::from_env(); }), c.message);
  }
}

TEST(DistributedConfig, RangesAreChecked) {
  grpo::TrainConfig c = grpo_test::tiny_config("unused");
  c.distributed.backend = "mpi";
  EXPECT_HAS(error_of([&] { c.validate(); }), "distributed.backend");
  c.distributed.backend = "gloo";
  c.distributed.timeout_seconds = 0;
  EXPECT_HAS(error_of([&] { c.validate(); }), "distributed.timeout_seconds");
  c.distributed.timeout_seconds = 10;
  c.distributed.bucket_mb = -1;
  EXPECT_HAS(error_of([&] { c.validate(); }), "distributed.bucket_mb");
}

// ---------------------------------------------------------------- jobs of several processes

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return 29500;
  }
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

struct RankResult {
  int exit_code = -1;  // -1: killed past the job's time limit
  std::string err;     // stderr
};

// Starts `ranks` of a job of `world` (ranks may be fewer: a missing peer) of
// the worker with `args`, waits at most `limit_s` seconds, kills what is left.
std::vector<RankResult> run_job(int world, const std::vector<int>& ranks, const std::vector<std::string>& args,
                                const fs::path& logs, double limit_s = 120) {
  const std::string port = std::to_string(free_port());
  std::vector<pid_t> pids;
  for (int rank : ranks) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      const std::string kv = *e;
      bool ours = false;
      for (const std::string& v : kVars) ours = ours || kv.rfind(v + "=", 0) == 0;
      if (!ours) env.push_back(kv);
    }
    env.push_back("RANK=" + std::to_string(rank));
    env.push_back("LOCAL_RANK=" + std::to_string(rank));
    env.push_back("WORLD_SIZE=" + std::to_string(world));
    env.push_back("MASTER_ADDR=127.0.0.1");
    env.push_back("MASTER_PORT=" + port);
    std::vector<std::string> argv{GRPO_TEST_DIST_WORKER};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv, cenv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    for (auto& e : env) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string err = (logs / ("rank" + std::to_string(rank) + ".err")).string();
    const std::string out = (logs / ("rank" + std::to_string(rank) + ".out")).string();
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, cargv[0], &actions, nullptr, cargv.data(), cenv.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      ADD_FAILURE() << "cannot start " << cargv[0];
      pid = -1;
    }
    pids.push_back(pid);
  }
  std::vector<RankResult> results(ranks.size());
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(limit_s));
  size_t left = ranks.size();
  std::vector<bool> done(ranks.size(), false);
  while (left > 0) {
    for (size_t i = 0; i < pids.size(); ++i) {
      if (done[i] || pids[i] < 0) {
        if (!done[i]) done[i] = true, --left;
        continue;
      }
      int status = 0;
      if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
        results[i].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        done[i] = true;
        --left;
        // NB: as torchrun does, a failed rank ends the job: the others get a moment to report, then are killed.
        if (results[i].exit_code != 0) {
          deadline = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(10));
        }
      }
    }
    if (left == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (size_t i = 0; i < pids.size(); ++i) {
        if (!done[i]) {
          kill(pids[i], SIGKILL);
          waitpid(pids[i], nullptr, 0);
          results[i].exit_code = -1;
        }
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (size_t i = 0; i < ranks.size(); ++i) {
    std::ifstream in(logs / ("rank" + std::to_string(ranks[i]) + ".err"));
    std::stringstream ss;
    ss << in.rdbuf();
    results[i].err = ss.str();
  }
  return results;
}

// The tiny run in float64, one step, with what each test changes.
grpo::TrainConfig job_config(const fs::path& out) {
  grpo::TrainConfig c = grpo_test::tiny_config(out.string());
  c.model.dtype = "float64";
  c.grpo.steps = 1;
  c.grpo.prompts_per_step = 4;
  c.grpo.group_size = 4;
  c.checkpoint.resume = true;
  c.checkpoint.keep_last = 10;
  c.distributed.timeout_seconds = 60;
  return c;
}

std::string write_config(const grpo::TrainConfig& c, const fs::path& path) {
  std::ofstream(path) << c.to_json().dump(2);
  return path.string();
}

// The weights a worker saved (its master weights: float32 in mixed precision), in float64 on the CPU.
std::vector<torch::Tensor> load_params(const grpo::TrainConfig& c, const std::string& path) {
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  grpo::ModelConfig mc = c.model;
  mc.dtype = "float64";
  mc.device = "cpu";
  auto model = grpo::make_model(mc, *tokenizer, c.seed + 1);
  grpo::load_weights(model->module(), path);
  std::vector<torch::Tensor> out;
  for (const auto& p : model->module().parameters()) out.push_back(p.detach().clone());
  return out;
}

double max_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

// Runs `c` as a job of `world` processes; expects every rank to succeed and
// end with the same weights; returns rank 0's.
std::vector<torch::Tensor> train_job(const grpo::TrainConfig& c, int world, const fs::path& dir,
                                     const std::string& name, const std::vector<std::string>& flags = {}) {
  fs::create_directories(dir);
  const std::string config = write_config(c, dir / (name + ".json"));
  const std::string weights = (dir / (name + ".pt")).string();
  std::vector<int> ranks;
  for (int r = 0; r < world; ++r) ranks.push_back(r);
  std::vector<std::string> args{config, weights};
  args.insert(args.end(), flags.begin(), flags.end());
  const auto results = run_job(world, ranks, args, dir);
  for (size_t r = 0; r < results.size(); ++r) {
    EXPECT_EQ(results[r].exit_code, 0) << name << ": rank " << r << ": " << results[r].err;
  }
  const auto w0 = load_params(c, weights + ".rank0");
  for (int r = 1; r < world; ++r) {
    // NB: the ranks step identical gradients from identical weights: bit for bit the same.
    EXPECT_EQ(max_diff(w0, load_params(c, weights + ".rank" + std::to_string(r))), 0.0) << name << ": rank " << r;
  }
  return w0;
}

int64_t lines_of(const fs::path& file) {
  std::ifstream in(file);
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

// One update of 2 ranks equals one process on the same batch, for each case.
// Tolerance: the model is float64 but the log-prob op computes its logits in
// float32 (grpo/ops/token_logprobs.h), and 2 ranks batch the rows
// differently (each micro-batch trims its own padding), so the two round
// differently at float32's 1e-7. AdamW runs with a large eps and no clipping
// here, so the update is nearly proportional to the gradient: a wrong
// normalizer or an averaged gradient (a factor of 2) would move the weights
// by ~1e-4, against the 1e-8 the rounding moves them.
struct ParityCase {
  std::string name;
  std::function<void(grpo::TrainConfig&)> set;
  double weight_tol = 1e-7;  // max |w1 - w2| after the update
  double metric_tol = 1e-6;  // relative, on the step's metrics
};

void PrintTo(const ParityCase& c, std::ostream* os) { *os << c.name; }

class DataParallelParity : public ::testing::TestWithParam<ParityCase> {};

TEST_P(DataParallelParity, TwoRanksMatchOneProcess) {
  TempDir dir("dp_parity_" + GetParam().name);
  grpo::TrainConfig one = job_config(dir.path / "one");
  one.optimizer.eps = 0.1;
  one.optimizer.max_grad_norm = 0;
  GetParam().set(one);
  grpo::TrainConfig two = one;
  two.output_dir = (dir.path / "two").string();
  const auto w1 = train_job(one, 1, dir.path, "one");
  const auto w2 = train_job(two, 2, dir.path, "two");
  const auto w0 = load_params(one, [&] {
    // The weights before training, to check the update moved them.
    auto tokenizer = grpo::make_tokenizer(one.tokenizer);
    auto model = grpo::make_model(one.model, *tokenizer, one.seed);
    const std::string path = (dir.path / "init.pt").string();
    grpo::save_weights(model->module(), path);
    return path;
  }());
  EXPECT_GT(max_diff(w0, w1), 1e-6) << "the update did not move the weights";
  EXPECT_LT(max_diff(w1, w2), GetParam().weight_tol);
  // The job's metrics are the whole batch's: the same record from 1 process and from 2.
  std::ifstream m1(dir.path / "one" / "metrics.jsonl"), m2(dir.path / "two" / "metrics.jsonl");
  std::string l1, l2;
  std::getline(m1, l1);
  std::getline(m2, l2);
  const auto j1 = nlohmann::json::parse(l1), j2 = nlohmann::json::parse(l2);
  // The gradient buckets' sums start during the update's last backward (all
  // but the bucket of the first parameters, produced last).
  EXPECT_FALSE(j1.contains("distributed/overlapped_buckets"));
  if (GetParam().name == "dapo_micro") EXPECT_GT(j2.at("distributed/overlapped_buckets").get<double>(), 0.5);
  for (const char* key : {"reward", "reward_std", "loss", "kl", "grad_norm", "num_tokens", "entropy",
                          "clip_ratio/region_mean", "frac_reward_zero_std", "completion_length"}) {
    const double a = j1.at(key).get<double>(), b = j2.at(key).get<double>();
    EXPECT_NEAR(a, b, GetParam().metric_tol * std::max(1.0, std::abs(a))) << key;
  }
}

INSTANTIATE_TEST_SUITE_P(
    LossTypes, DataParallelParity,
    ::testing::Values(
        ParityCase{"grpo", [](grpo::TrainConfig& c) { c.loss.policy.loss_type = grpo::LossType::GRPO; }},
        ParityCase{"dapo_micro",
                   [](grpo::TrainConfig& c) {
                     c.loss.policy.loss_type = grpo::LossType::DAPO;
                     c.grpo.micro_batch_size = 2;
                     c.distributed.bucket_mb = 0.002;  // buckets of ~2 KB: many, more than are in flight at once
                   }},
        ParityCase{"dr_grpo_minibatches",
                   [](grpo::TrainConfig& c) {
                     c.loss.policy.loss_type = grpo::LossType::DrGRPO;
                     c.grpo.mini_batches = 2;
                     c.grpo.num_iterations = 2;
                     c.grpo.micro_batch_size = 2;
                   }},
        ParityCase{"bnpo_batch_std_uneven",
                   [](grpo::TrainConfig& c) {
                     c.loss.policy.loss_type = grpo::LossType::BNPO;
                     c.loss.advantages.scale = grpo::AdvantageScale::Batch;
                     c.grpo.prompts_per_step = 3;  // ranks hold 2 and 1 groups
                     c.grpo.micro_batch_size = 3;
                   }},
        // Mixed precision: the float32 master gradients are what the ranks sum;
        // bfloat16's forward rounds differently for differently batched rows.
        ParityCase{"bfloat16_micro",
                   [](grpo::TrainConfig& c) {
                     c.model.dtype = "bfloat16";
                     c.grpo.micro_batch_size = 2;
                   },
                   5e-5, 1e-3},  // observed: 6.7e-6 and 8e-5 (grad_norm)
        ParityCase{"dynamic_sampling",
                   [](grpo::TrainConfig& c) {
                     c.grpo.dynamic_sampling = true;
                     c.grpo.max_sampling_rounds = 3;
                     c.grpo.mini_batches = 2;
                     c.loss.policy.beta = 0;
                   }}),
    [](const ::testing::TestParamInfo<ParityCase>& i) { return i.param.name; });

TEST(DataParallel, SftTwoRanksMatchOneProcess) {
  TempDir dir("dp_sft");
  grpo::TrainConfig one = job_config(dir.path / "one");
  one.sft.steps = 2;
  one.sft.batch_size = 5;  // ranks hold 3 and 2 pairs
  one.sft.optimizer.eps = 0.1;  // as in DataParallelParity: the update nearly proportional to the gradient
  one.sft.optimizer.max_grad_norm = 0;
  grpo::TrainConfig two = one;
  two.output_dir = (dir.path / "two").string();
  const auto w1 = train_job(one, 1, dir.path, "one", {"--sft"});
  const auto w2 = train_job(two, 2, dir.path, "two", {"--sft"});
  EXPECT_LT(max_diff(w1, w2), 1e-7);
  std::ifstream m1(dir.path / "one" / "sft_metrics.jsonl"), m2(dir.path / "two" / "sft_metrics.jsonl");
  EXPECT_TRUE(fs::exists(dir.path / "two" / "sft" / "model.pt"));  // rank 0 wrote the checkpoint
  for (std::string l1, l2; std::getline(m1, l1) && std::getline(m2, l2);) {
    const auto j1 = nlohmann::json::parse(l1), j2 = nlohmann::json::parse(l2);
    for (const char* key : {"loss", "grad_norm", "tokens"}) {
      EXPECT_NEAR(j1.at(key).get<double>(), j2.at(key).get<double>(), 1e-6) << key;
    }
  }
  EXPECT_EQ(lines_of(dir.path / "two" / "sft_metrics.jsonl"), 2);
}

TEST(DataParallel, ResumeMatchesAStraightRun) {
  TempDir dir("dp_resume");
  grpo::TrainConfig c = job_config(dir.path / "straight");
  c.grpo.steps = 3;
  c.checkpoint.save_every = 1;
  const auto straight = train_job(c, 2, dir.path, "straight");

  // The folder a kill after step 2's checkpoint leaves (the kill's metrics
  // line for step 3 included), resumed by 2 processes, then by 1.
  for (int world : {2, 1}) {
    const fs::path resumed = dir.path / ("resumed" + std::to_string(world));
    fs::copy(dir.path / "straight", resumed, fs::copy_options::recursive);
    fs::remove_all(resumed / "checkpoint-3");
    grpo::TrainConfig r = c;
    r.output_dir = resumed.string();
    const auto w = train_job(r, world, dir.path, "resumed" + std::to_string(world));
    // NB: 2 processes repeat the straight run bit for bit; 1 process batches
    // the rows differently (float32 log-probs, see above).
    EXPECT_LT(max_diff(straight, w), world == 2 ? 1e-15 : 1e-7) << "resumed by " << world;
    EXPECT_EQ(lines_of(resumed / "metrics.jsonl"), 3);
    const auto state = nlohmann::json::parse(std::ifstream(resumed / "checkpoint-3" / "trainer_state.json"));
    EXPECT_EQ(state.at("world_size").get<int>(), world);
    EXPECT_EQ(state.at("ranks").size(), static_cast<size_t>(world));
  }
}

TEST(DataParallel, AFailingRankIsNamedOnEveryRank) {
  for (int failing : {1, 0}) {
    TempDir dir("dp_fail" + std::to_string(failing));
    grpo::TrainConfig c = job_config(dir.path / "run");
    c.grpo.steps = 3;
    c.distributed.timeout_seconds = 300;  // NB: the job must end long before: the failure is reported, not timed out
    const std::string config = write_config(c, dir.path / "c.json");
    // The 12th completion scored on that rank: step 2 (each rank scores 8 a step).
    const auto results = run_job(2, {0, 1}, {config, (dir.path / "w.pt").string(), "--fail-rank",
                                             std::to_string(failing), "--fail-call", "12"},
                                 dir.path, /*limit_s=*/90);
    for (int r = 0; r < 2; ++r) {
      EXPECT_EQ(results[static_cast<size_t>(r)].exit_code, 1) << "rank " << r << ": " << results[r].err;
      EXPECT_NE(results[static_cast<size_t>(r)].err.find("the reward failed on purpose"), std::string::npos)
          << "rank " << r << ": " << results[r].err;
    }
    const std::string& other = results[static_cast<size_t>(1 - failing)].err;
    EXPECT_NE(other.find("rank " + std::to_string(failing) + " failed"), std::string::npos) << other;
  }
}

TEST(DataParallel, AHungRankTimesOutTheOthers) {
  TempDir dir("dp_hang");
  grpo::TrainConfig c = job_config(dir.path / "run");
  c.grpo.steps = 3;
  // NB: long enough for both processes to start under a loaded machine (the rendezvous waits as long).
  c.distributed.timeout_seconds = 10;
  const std::string config = write_config(c, dir.path / "c.json");
  // Rank 1 sleeps in its reward; rank 0 waits in the next all-reduce until the timeout.
  const auto results = run_job(2, {0, 1}, {config, (dir.path / "w.pt").string(), "--fail-rank", "1", "--fail-call",
                                           "12", "--hang"},
                               dir.path, /*limit_s=*/90);
  EXPECT_EQ(results[0].exit_code, 1) << results[0].err;
  EXPECT_HAS(results[0].err, "distributed: rank 0 of 2: the all-reduce of the rewards");
  EXPECT_HAS(results[0].err, "no rank reported an error");
  EXPECT_HAS(results[0].err, "distributed.timeout_seconds = 10 s");
  EXPECT_EQ(results[1].exit_code, -1);  // still asleep: killed when rank 0 failed, as torchrun would
}

TEST(DataParallel, AMissingPeerTimesOutNamingTheRendezvous) {
  TempDir dir("dp_missing");
  grpo::TrainConfig c = job_config(dir.path / "run");
  c.distributed.timeout_seconds = 3;
  const std::string config = write_config(c, dir.path / "c.json");
  for (int present : {0, 1}) {
    const auto results = run_job(2, {present}, {config, (dir.path / "w.pt").string()}, dir.path, /*limit_s=*/60);
    EXPECT_EQ(results[0].exit_code, 1) << results[0].err;
    EXPECT_NE(results[0].err.find("the rendezvous at 127.0.0.1:"), std::string::npos) << results[0].err;
    EXPECT_NE(results[0].err.find("rank " + std::to_string(present) + " of 2"), std::string::npos) << results[0].err;
  }
}

TEST(DataParallel, NcclOnTheCpuIsRefusedByName) {
  TempDir dir("dp_nccl_cpu");
  grpo::TrainConfig c = job_config(dir.path / "run");
  c.distributed.backend = "nccl";
  const std::string config = write_config(c, dir.path / "c.json");
  const auto results = run_job(2, {0, 1}, {config, (dir.path / "w.pt").string()}, dir.path, /*limit_s=*/60);
  for (const RankResult& r : results) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_HAS(r.err, "distributed.backend nccl: ");  // needs cuda, or this build has none
  }
}

TEST(DataParallelCuda, TwoGpusMatchOneProcess) {
  if (!torch::cuda::is_available() || torch::cuda::device_count() < 2) GTEST_SKIP() << "needs 2 CUDA devices";
  TempDir dir("dp_cuda");
  grpo::TrainConfig one = job_config(dir.path / "one");
  one.model.device = "cuda";
  one.grpo.micro_batch_size = 2;
  grpo::TrainConfig two = one;
  two.output_dir = (dir.path / "two").string();
  const auto w1 = train_job(one, 1, dir.path, "one");
  const auto w2 = train_job(two, 2, dir.path, "two");  // NCCL, cuda:0 and cuda:1
  EXPECT_LT(max_diff(w1, w2), 1e-9);
}

}  // namespace
