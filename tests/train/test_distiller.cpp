// Distiller: a tiny student learns from a wider frozen teacher on prompt →
// completion pairs. Micro-batches add up to the batch; α = 0 is SFT; the
// student's divergence from the teacher falls; on-policy updates train on the
// student's own samples; vocabularies and tokenizers that differ are refused
// by name.
#include <grpo/error.h>
#include <grpo/models/registry.h>
#include <grpo/train/checkpoint.h>
#include <grpo/train/distiller.h>
#include <grpo/train/factory.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"
#include "train/tiny_run.h"

namespace fs = std::filesystem;
using namespace grpo_test;

namespace {

std::vector<json> pairs() { return ab_pairs(); }

grpo::TrainConfig distill_config(const std::string& dir) {
  grpo::TrainConfig c = pairs_config(dir);
  c.distill.alpha = 0.6;
  c.distill.temperature = 2.0;
  return c;
}

// A wider model of the same vocabulary, drawn from its own seed.
std::shared_ptr<grpo::CausalLM> teacher_for(const grpo::TrainConfig& c, const grpo::Tokenizer& tokenizer) {
  grpo::ModelConfig m = c.model;
  m.config.hidden_size = 48;
  m.config.intermediate_size = 96;
  return grpo::make_model(m, tokenizer, 1234);
}

struct DistillRun {
  std::shared_ptr<const grpo::Tokenizer> tokenizer;
  std::unique_ptr<grpo::Distiller> distiller;
};

DistillRun make_run(const grpo::TrainConfig& c) {
  DistillRun r;
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  r.tokenizer = tokenizer;
  r.distiller = std::make_unique<grpo::Distiller>(c, grpo::make_model(c.model, *tokenizer, c.seed),
                                                  teacher_for(c, *tokenizer), tokenizer,
                                                  grpo::PromptDataset::from_records(pairs()));
  return r;
}

torch::Tensor flat(grpo::CausalLM& m) {
  std::vector<torch::Tensor> parts;
  for (const auto& p : m.module().parameters()) parts.push_back(p.detach().flatten().to(torch::kFloat64));
  return torch::cat(parts);
}

}  // namespace

TEST(Distiller, MicroBatchesGiveTheBatchUpdateExactly) {
  TempDir dir("distill_micro");
  for (const std::string divergence : {"forward_kl", "jsd"}) {
    auto run = [&](int64_t micro) {
      grpo::TrainConfig c = distill_config(dir.path.string());
      c.distill.divergence = divergence;
      c.sft.micro_batch_size = micro;
      DistillRun r = make_run(c);
      std::vector<double> losses;
      for (int i = 0; i < 3; ++i) losses.push_back(r.distiller->step()["loss"].get<double>());
      return std::make_pair(losses, flat(r.distiller->master_model()));
    };
    const auto [l6, w6] = run(0);
    for (int64_t micro : {1, 4}) {
      const auto [l, w] = run(micro);
      for (size_t i = 0; i < l.size(); ++i) EXPECT_NEAR(l[i], l6[i], 1e-10) << divergence << " micro " << micro;
      EXPECT_LT((w - w6).abs().max().item<double>(), 1e-10) << divergence << " micro " << micro;
    }
  }
}

// With α = 0 the teacher has no say: the updates are SFT's. SFT computes its
// log-probs in float32 and the distillation op a float64 model in float64;
// AdamW turns those roundings into weight differences of about 3e-5 after
// three updates at lr 1e-2, hence the tolerance (a wrong loss would be off by
// the lr itself).
TEST(Distiller, AlphaZeroIsSft) {
  TempDir dir("distill_alpha0");
  grpo::TrainConfig c = distill_config(dir.path.string());
  c.distill.alpha = 0;
  DistillRun r = make_run(c);
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  grpo::SFTTrainer sft(c, grpo::make_model(c.model, *tokenizer, c.seed), tokenizer,
                       grpo::PromptDataset::from_records(pairs()));
  for (int i = 0; i < 3; ++i) {
    const json d = r.distiller->step(), s = sft.step();
    EXPECT_NEAR(d["loss"].get<double>(), s["loss"].get<double>(), 1e-6) << "step " << i;
    EXPECT_NEAR(d["ce"].get<double>(), s["loss"].get<double>(), 1e-6) << "step " << i;
    EXPECT_GT(d["kd"].get<double>(), 0.0);
  }
  EXPECT_LT((flat(r.distiller->master_model()) - flat(sft.master_model())).abs().max().item<double>(), 3e-4);
}

// Pure KD (α = 1) on held-out pairs: the student's divergence from the
// teacher falls well below where it started, for each divergence.
TEST(Distiller, TheStudentApproachesTheTeacher) {
  TempDir dir("distill_learns");
  for (const std::string divergence : {"forward_kl", "reverse_kl", "jsd"}) {
    grpo::TrainConfig c = distill_config(dir.path.string());
    c.distill.alpha = 1.0;
    c.distill.temperature = 1.0;
    c.distill.divergence = divergence;
    c.sft.steps = 60;
    c.sft.optimizer.lr = 3e-3;
    {
      std::ofstream out(dir.path / "eval.jsonl");
      for (const json& p : pairs()) out << p.dump() << "\n";
    }
    c.sft.eval = (dir.path / "eval.jsonl").string();
    c.output_dir = (dir.path / divergence).string();
    DistillRun r = make_run(c);
    const json report = r.distiller->train();
    const double before = report["evaluations"].front()["kd"].get<double>();
    const double after = report["evaluations"].back()["kd"].get<double>();
    EXPECT_LT(after, 0.3 * before) << divergence << ": " << report.dump();
    EXPECT_EQ(report["stage"], "distill");
    EXPECT_TRUE(fs::exists(fs::path(c.output_dir) / "distill" / "model.pt"));
    EXPECT_TRUE(fs::exists(fs::path(c.output_dir) / "distill_metrics.jsonl"));
  }
}

// On-policy updates train on the student's own samples of the prompts, with
// the KD term only; the same seed samples the same completions.
TEST(Distiller, OnPolicyUpdatesUseTheStudentsSamples) {
  TempDir dir("distill_on_policy");
  grpo::TrainConfig c = distill_config(dir.path.string());
  c.distill.on_policy = 1.0;
  c.distill.max_new_tokens = 5;
  c.distill.temperature = 1.0;
  DistillRun a = make_run(c), b = make_run(c);
  for (int i = 0; i < 2; ++i) {
    const json m = a.distiller->step();
    EXPECT_TRUE(m["on_policy"].get<bool>());
    EXPECT_NEAR(m["loss"].get<double>(), m["kd"].get<double>(), 1e-9) << "α = 1 on the student's samples";
    EXPECT_LE(m["tokens"].get<double>(), 6.0 * 5) << "at most max_new_tokens per completion";
    EXPECT_EQ(b.distiller->step()["loss"], m["loss"]);
  }
  c.distill.on_policy = 0.5;
  DistillRun half = make_run(c);
  int on = 0;
  for (int i = 0; i < 8; ++i) on += half.distiller->step()["on_policy"].get<bool>() ? 1 : 0;
  EXPECT_GT(on, 0);
  EXPECT_LT(on, 8);
}

TEST(Distiller, DifferentVocabulariesAreRefusedByName) {
  TempDir dir("distill_vocab");
  grpo::TrainConfig c = distill_config(dir.path.string());
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  grpo::ModelConfig m = c.model;
  m.config.vocab_size = tokenizer->vocab_size() + 3;
  // NB: built directly, not through make_model, which would view it at the tokenizer's size.
  auto wide = grpo::ModelRegistry::global().create("transformer", m.config.to_json(), true, "teacher");
  wide->module().to(torch::kFloat64);
  const std::string message = error_of([&] {
    grpo::Distiller(c, grpo::make_model(c.model, *tokenizer, c.seed), wide, tokenizer,
                    grpo::PromptDataset::from_records(pairs()));
  });
  EXPECT_HAS(message, "distill.teacher: the teacher's vocabulary has " + std::to_string(tokenizer->vocab_size() + 3) +
                          " tokens and the student's " + std::to_string(tokenizer->vocab_size()));
}

// From a config: the teacher's folder with its own tokenizer; one spelled
// differently is refused, naming the token.
TEST(Distiller, FromConfigChecksTheTeachersTokenizer) {
  TempDir dir("distill_config");
  grpo::TrainConfig c = distill_config(dir.path.string());
  {
    std::ofstream out(dir.path / "train.jsonl");
    for (const json& p : pairs()) out << p.dump() << "\n";
  }
  c.sft.train = (dir.path / "train.jsonl").string();
  c.sft.steps = 2;
  auto write_teacher = [&](const std::string& characters, const std::string& name) {
    grpo::TokenizerConfig tc;
    tc.characters = characters;
    auto tokenizer = grpo::make_tokenizer(tc);
    auto teacher = teacher_for(c, *tokenizer);
    grpo::CheckpointContents contents;
    contents.model = teacher.get();
    contents.tokenizer = tokenizer.get();
    const std::string path = (dir.path / name).string();
    grpo::write_checkpoint(path, contents);
    return path;
  };
  c.distill.teacher = write_teacher("ab=", "teacher");
  const json report = grpo::Distiller::from_config(c)->train();
  EXPECT_EQ(report["steps"], 2);

  c.distill.teacher = write_teacher("ac=", "other_teacher");
  EXPECT_HAS(error_of([&] { grpo::Distiller::from_config(c); }), "its tokenizer spells token");
  c.distill.teacher = (dir.path / "missing").string();
  EXPECT_HAS(error_of([&] { grpo::Distiller::from_config(c); }), "distill.teacher: " + c.distill.teacher +
                                                                     " is not a folder");
  c.distill.teacher = "";
  EXPECT_HAS(error_of([&] { grpo::Distiller::from_config(c); }), "distill.teacher: the teacher's folder is required");
}
