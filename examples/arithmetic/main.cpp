// The bundled demo: multi-digit addition in DeepSeek-R1's template. A small
// TransformerLM with a character tokenizer gets a short cold-start SFT whose
// solutions come in two styles, as a mixed cold-start set does: worked
// (<think> the column sums </think>) and direct (<think> the problem again
// </think>, the sum at once). Then GRPO on accuracy + format rewards, which
// must find out from the rewards alone that working it out pays. Held-out
// greedy accuracy before and after GRPO goes to <output_dir>/report.json.
//   arithmetic [--config configs/arithmetic.json] [--set key=value ...]
// With --pipeline configs/r1_arithmetic.json it writes the same problems and
// runs a whole grpo::Pipeline instead (the four R1 stages and distillation),
// printing the held-out accuracy after each stage.
//   arithmetic --pipeline configs/r1_arithmetic.json [--set key=value ...]
#include <grpo/config/config.h>
#include <grpo/log.h>
#include <grpo/files.h>
#include <grpo/train/factory.h>
#include <grpo/train/grpo_trainer.h>
#include <grpo/train/metrics.h>
#include <grpo/train/pipeline.h>
#include <grpo/train/sft_trainer.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>

#ifndef GRPO_SOURCE_DIR
#define GRPO_SOURCE_DIR "."
#endif

namespace {

struct Problem {
  int64_t a, b;
  std::string prompt() const { return std::to_string(a) + "+" + std::to_string(b) + "="; }
  std::string answer() const { return std::to_string(a + b); }
  // worked: each column from the right, with its carry, then the sum;
  // direct: the problem restated, then the sum.
  std::string solution(bool worked) const {
    if (!worked) return "<think>" + std::to_string(a) + "+" + std::to_string(b) + "</think><answer>" + answer() + "</answer>";
    std::string think;
    int64_t x = a, y = b, carry = 0;
    while (x > 0 || y > 0) {
      const int64_t s = x % 10 + y % 10 + carry;
      if (!think.empty()) think += ",";
      think += std::to_string(x % 10) + "+" + std::to_string(y % 10) + (carry ? "+1" : "") + "=" + std::to_string(s);
      carry = s / 10;
      x /= 10;
      y /= 10;
    }
    return "<think>" + think + "</think><answer>" + answer() + "</answer>";
  }
};

// `count` distinct problems with operands of 1..max_digits digits, none in `taken`.
std::vector<Problem> make_problems(std::mt19937_64& rng, int64_t count, int64_t max_digits, std::set<std::pair<int64_t, int64_t>>& taken) {
  std::uniform_int_distribution<int64_t> digits(1, max_digits);
  std::vector<Problem> out;
  while (static_cast<int64_t>(out.size()) < count) {
    auto draw = [&] {
      int64_t hi = 1;
      for (int64_t d = digits(rng); d > 0; --d) hi *= 10;
      return std::uniform_int_distribution<int64_t>(hi / 10 == 1 ? 0 : hi / 10, hi - 1)(rng);
    };
    const Problem p{draw(), draw()};
    if (taken.insert({p.a, p.b}).second) out.push_back(p);
  }
  return out;
}

// with_solution: each record gets a "completion", worked with probability worked_fraction.
void write_jsonl(const std::string& path, const std::vector<Problem>& problems, bool with_solution,
                 std::mt19937_64& rng, double worked_fraction = 1.0) {
  std::bernoulli_distribution worked(worked_fraction);
  std::string text;
  for (const Problem& p : problems) {
    nlohmann::json j = {{"prompt", p.prompt()}, {"answer", p.answer()}};
    if (with_solution) j["completion"] = p.solution(worked(rng));
    text += j.dump() + "\n";
  }
  grpo::write_file_atomic(path, text);
}

// The problems as data files under the pipeline's output_dir/data, its base
// pointed at them, then every stage; a table of held-out accuracy per stage.
int run_pipeline(const std::string& path, std::vector<std::string> overrides, int64_t sft_pairs,
                 int64_t train_prompts, int64_t eval_problems, int64_t max_digits, double worked_fraction) {
  namespace fs = std::filesystem;
  nlohmann::json spec = grpo::read_json_file(path, "a pipeline JSON file");
  for (const std::string& o : overrides) grpo::apply_override(spec, o);
  const fs::path data = fs::path(spec.value("output_dir", std::string("runs/pipeline"))) / "data";
  fs::create_directories(data);
  std::mt19937_64 rng(spec.value("base", nlohmann::json::object()).value("seed", uint64_t{0}));
  std::set<std::pair<int64_t, int64_t>> taken;
  const auto eval = make_problems(rng, eval_problems, max_digits, taken);
  const auto sft = make_problems(rng, sft_pairs, max_digits, taken);
  const auto train = make_problems(rng, train_prompts, max_digits, taken);
  write_jsonl((data / "eval.jsonl").string(), eval, false, rng);
  write_jsonl((data / "sft.jsonl").string(), sft, true, rng, worked_fraction);
  write_jsonl((data / "train.jsonl").string(), train, false, rng);
  overrides.insert(overrides.begin(), {"base.data.train=" + (data / "train.jsonl").string(),
                                       "base.data.eval=" + (data / "eval.jsonl").string(),
                                       "base.sft.train=" + (data / "sft.jsonl").string()});
  const nlohmann::json report = grpo::Pipeline::from_file(path, overrides).run();
  std::cout << "| stage | type | held-out accuracy | seconds |\n|---|---|---|---|\n";
  for (const nlohmann::json& s : report["stages"]) {
    std::cout << "| " << s["name"].get<std::string>() << " | " << s["type"].get<std::string>() << " | "
              << (s["accuracy"].is_number() ? std::to_string(s["accuracy"].get<double>()) : std::string("")) << " | "
              << static_cast<int64_t>(s["seconds"].get<double>()) << " |\n";
  }
  std::cout << "report: " << report["output_dir"].get<std::string>() << "/pipeline_report.json\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"GRPO demo: cold-start SFT, then GRPO, on multi-digit addition"};
  std::string config_path = std::string(GRPO_SOURCE_DIR) + "/configs/arithmetic.json", pipeline_path;
  std::vector<std::string> overrides;
  int64_t sft_pairs = 2000, train_prompts = 5000, eval_problems = 500, max_digits = 3;
  double worked_fraction = 0.5;
  app.add_option("--config", config_path, "the run's JSON config")->check(CLI::ExistingFile);
  app.add_option("--set", overrides, "override a config value: key.path=value (repeatable)");
  app.add_option("--pipeline", pipeline_path, "run this pipeline file (e.g. configs/r1_arithmetic.json) instead")
      ->check(CLI::ExistingFile);
  app.add_option("--sft-pairs", sft_pairs, "solutions for the cold-start SFT")->check(CLI::PositiveNumber);
  app.add_option("--train-prompts", train_prompts, "prompts for GRPO")->check(CLI::PositiveNumber);
  app.add_option("--eval-problems", eval_problems, "held-out problems")->check(CLI::PositiveNumber);
  app.add_option("--max-digits", max_digits, "operands have 1..max-digits digits")->check(CLI::Range(1, 9));
  app.add_option("--worked-fraction", worked_fraction, "share of worked (vs direct) SFT solutions")
      ->check(CLI::Range(0.0, 1.0));
  CLI11_PARSE(app, argc, argv);

  try {
    if (!pipeline_path.empty()) {
      return run_pipeline(pipeline_path, overrides, sft_pairs, train_prompts, eval_problems, max_digits, worked_fraction);
    }
    const auto start = std::chrono::steady_clock::now();
    grpo::TrainConfig config = grpo::load_config(config_path, overrides);
    namespace fs = std::filesystem;
    const fs::path out(config.output_dir);
    fs::create_directories(out / "data");

    // Disjoint SFT, GRPO and held-out problems from the run's seed.
    std::mt19937_64 rng(config.seed);
    std::set<std::pair<int64_t, int64_t>> taken;
    const auto eval = make_problems(rng, eval_problems, max_digits, taken);
    const auto sft = make_problems(rng, sft_pairs, max_digits, taken);
    const auto train = make_problems(rng, train_prompts, max_digits, taken);
    write_jsonl((out / "data" / "eval.jsonl").string(), eval, false, rng);
    write_jsonl((out / "data" / "sft.jsonl").string(), sft, true, rng, worked_fraction);
    write_jsonl((out / "data" / "train.jsonl").string(), train, false, rng);
    config.sft.train = (out / "data" / "sft.jsonl").string();
    config.data.train = (out / "data" / "train.jsonl").string();
    config.data.eval = (out / "data" / "eval.jsonl").string();

    grpo::log::info("cold-start SFT: " + std::to_string(config.sft.steps) + " steps on " + std::to_string(sft_pairs) +
                    " worked solutions");
    auto sft_trainer = grpo::SFTTrainer::from_config(config);
    const nlohmann::json sft_result = sft_trainer->train();
    sft_trainer.reset();

    grpo::log::info("GRPO: " + std::to_string(config.grpo.steps) + " steps of " +
                    std::to_string(config.grpo.prompts_per_step) + " prompts x " + std::to_string(config.grpo.group_size) +
                    " completions");
    config.model.init_from = sft_result["checkpoint"].get<std::string>();
    auto trainer = grpo::GRPOTrainer::from_config(config);
    nlohmann::json report = trainer->train();

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report["sft_accuracy"] = report["accuracy_before"];
    report["grpo_accuracy"] = report["accuracy_after"];
    report["seconds"] = seconds;
    report["sft"] = sft_result;
    grpo::write_file_atomic((out / "report.json").string(), report.dump(2) + "\n");

    const double before = report["sft_accuracy"].get<double>(), after = report["grpo_accuracy"].get<double>();
    std::cout << "held-out accuracy on " << report["eval_problems"] << " problems: after SFT " << before
              << ", after GRPO " << after << " (" << (after - before >= 0 ? "+" : "") << 100 * (after - before)
              << " points) in " << seconds << " s\n"
              << "report: " << (out / "report.json").string() << ", plot: " << (out / "plot.svg").string() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "arithmetic: " << e.what() << "\n";
    return 1;
  }
}
