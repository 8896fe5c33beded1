// The `grpo` command line: train, sft, eval, sample, export and config.
//   grpo train  --config FILE [--set key.path=value ...]
//   grpo sft    --config FILE [--set ...]
//   grpo distill --config FILE [--set ...]       a student from distill.teacher on the sft pairs
//   grpo pipeline --config FILE [--set ...]      the stages of a pipeline file (grpo/train/pipeline.h)
//   grpo eval   --config FILE [--checkpoint DIR] [--limit N] [--set ...]
//   grpo sample --config FILE [--checkpoint DIR] --prompt TEXT [-n N] [--temperature T] [--set ...]
//   grpo sample --config FILE [--checkpoint DIR] --dataset FILE [-n K] [--out DIR] [--set ...]
//                                                 rejection sampling over a dataset (rejection section)
//   grpo export --checkpoint DIR --out DIR [--dtype bfloat16]   a Hugging Face folder of a model
//   grpo export --format gguf [--dtype f32|f16|bf16|q8_0] --out FILE.gguf DIR   one GGUF file (llama.cpp, Ollama)
//   grpo config [--config FILE] [--set ...]      prints the resolved config, every default filled in
// Exit status: 0 on success, 1 on a run-time error (bad config, data,
// checkpoint), 2 on a usage error (from CLI11), 128 + N when signal N (SIGINT,
// SIGTERM, SIGHUP) stopped a run after its step and checkpoint: 130, 143, 129.
#include <grpo/config/config.h>
#include <grpo/error.h>
#include <grpo/files.h>
#include <grpo/io/gguf.h>
#include <grpo/io/pretrained.h>
#include <grpo/io/weights.h>
#include <grpo/log.h>
#include <grpo/rewards/reward.h>
#include <grpo/rollout/sampler.h>
#include <grpo/stop.h>
#include <grpo/train/checkpoint.h>
#include <grpo/train/distiller.h>
#include <grpo/train/factory.h>
#include <grpo/train/grpo_trainer.h>
#include <grpo/train/pipeline.h>
#include <grpo/train/rejection_sampling.h>
#include <grpo/train/sft_trainer.h>

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>

namespace {

struct Common {
  std::string config;
  std::vector<std::string> overrides;
};

void add_common(CLI::App* cmd, Common& c) {
  cmd->add_option("-c,--config", c.config, "the run's JSON config file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-s,--set", c.overrides, "override a config value, key.path=value (repeatable)");
}

// Validators of numeric options: the whole text must be the number. CLI11
// puts the option's name before the message, which says what was expected and
// what came: "--temperature: must be a finite number >= 0, got nan".
// Where std::from_chars starts reading `text`: past a leading '+', which it does not take.
const char* number_start(const std::string& text) {
  return text.data() + (text.size() > 1 && text[0] == '+' && text[1] != '-' ? 1 : 0);
}

CLI::Validator whole_number(int64_t lo, int64_t hi) {
  const bool bounded = hi < std::numeric_limits<int64_t>::max();
  const std::string rule = bounded ? "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi)
                                   : "must be a whole number >= " + std::to_string(lo);
  return CLI::Validator(
      [lo, hi, rule](std::string& text) -> std::string {
        int64_t n = 0;
        const char* first = number_start(text);
        const auto [end, ec] = std::from_chars(first, text.data() + text.size(), n);
        if (ec == std::errc() && end == text.data() + text.size() && n >= lo && n <= hi) return "";
        return rule + ", got " + text;
      },
      bounded ? "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]" : "INT >= " + std::to_string(lo));
}

CLI::Validator finite_non_negative() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double x = 0;
        const char* first = number_start(text);
        const auto [end, ec] = std::from_chars(first, text.data() + text.size(), x);
        if (ec == std::errc() && end == text.data() + text.size() && std::isfinite(x) && x >= 0) return "";
        return "must be a finite number >= 0, got " + text;
      },
      "FLOAT >= 0");
}

grpo::TrainConfig load(const Common& c) {
  grpo::TrainConfig config = grpo::load_config(c.config, c.overrides);
  grpo::log::set_level(config.logging.level);
  return config;
}

// The policy and tokenizer to evaluate or sample from: a checkpoint folder, or
// what the config names; in model.dtype on model.device, as training runs it.
std::pair<std::shared_ptr<grpo::CausalLM>, std::shared_ptr<const grpo::Tokenizer>> load_policy(
    const grpo::TrainConfig& config, const std::string& checkpoint) {
  grpo::ModelConfig model = config.model;
  if (!checkpoint.empty()) model.init_from = checkpoint;
  if (model.init_from.empty()) {
    throw grpo::Error("no model to use: give --checkpoint DIR or model.init_from in the config");
  }
  grpo::apply_threads(config.threads);
  grpo::apply_allow_tf32(model.allow_tf32);
  std::shared_ptr<const grpo::Tokenizer> tokenizer = grpo::make_tokenizer(config.tokenizer, model.init_from);
  return {grpo::make_model(model, *tokenizer, config.seed), tokenizer};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grpo: train language models with GRPO (Group Relative Policy Optimization)"};
  app.require_subcommand(1);

  Common train_args, sft_args, distill_args, pipeline_args, eval_args, sample_args;
  CLI::App* train = app.add_subcommand("train", "run GRPO as the config says (resumes from output_dir)");
  add_common(train, train_args);
  CLI::App* sft = app.add_subcommand("sft", "cold-start SFT on prompt/completion pairs (sft.train)");
  CLI::App* pipeline = app.add_subcommand(
      "pipeline", "run a pipeline of stages (sft, grpo, rejection_sample, distill), each from the last's outputs");
  add_common(pipeline, pipeline_args);
  add_common(sft, sft_args);
  CLI::App* distill = app.add_subcommand(
      "distill", "distill distill.teacher into the model: alpha*KD + (1 - alpha)*CE on the sft pairs");
  add_common(distill, distill_args);

  CLI::App* eval = app.add_subcommand("eval", "greedy accuracy and rewards on the eval set (data.eval)");
  add_common(eval, eval_args);
  std::string eval_checkpoint;
  int64_t eval_limit = 0;
  eval->add_option("--checkpoint", eval_checkpoint, "a checkpoint folder (default: model.init_from)")
      ->check(CLI::ExistingDirectory);
  eval->add_option("--limit", eval_limit, "evaluate the first N records (default: data.eval_limit)")
      ->check(whole_number(0, std::numeric_limits<int64_t>::max()));

  CLI::App* sample = app.add_subcommand(
      "sample", "sample completions of one prompt (--prompt), or rejection-sample a dataset (--dataset)");
  add_common(sample, sample_args);
  std::string sample_checkpoint, prompt, sample_dataset, sample_out;
  int64_t count = 0;
  double temperature = -1;
  sample->add_option("--checkpoint", sample_checkpoint, "a checkpoint folder (default: model.init_from)")
      ->check(CLI::ExistingDirectory);
  CLI::Option* prompt_option = sample->add_option("-p,--prompt", prompt, "the prompt text (the data template is applied)");
  CLI::Option* dataset_option =
      sample->add_option("--dataset", sample_dataset, "a JSONL file of prompts: keep the completions that pass "
                                                      "rejection.min_rewards, as SFT pairs")
          ->check(CLI::ExistingFile);
  prompt_option->excludes(dataset_option);
  sample->add_option("--out", sample_out, "with --dataset: the output folder (default: rejection.output)")
      ->needs(dataset_option);
  // NB: checked before anything is allocated for them.
  sample->add_option("-n,--num", count, "completions per prompt, 1 to 4096 (default: 4, or rejection.samples_per_prompt)")
      ->check(whole_number(1, 4096));
  sample->add_option("-t,--temperature", temperature, "sampling temperature, 0 = greedy (default: sampling.temperature)")
      ->check(finite_non_negative());

  CLI::App* exporter = app.add_subcommand("export", "write a model (checkpoint or Hugging Face folder) and its "
                                                   "tokenizer as a folder transformers loads, or as one GGUF file "
                                                   "for llama.cpp and Ollama");
  std::string export_checkpoint, export_model, export_out, export_dtype, export_format = "hf", export_name,
      export_chat_template;
  exporter->add_option("model", export_model, "the checkpoint or Hugging Face folder (or give --checkpoint)")
      ->check(CLI::ExistingDirectory);
  exporter->add_option("--checkpoint", export_checkpoint, "a checkpoint folder (e.g. runs/x/checkpoint-100)")
      ->check(CLI::ExistingDirectory);
  exporter->add_option("-o,--out", export_out,
                       "the folder (hf) or file (gguf) to write; an earlier export there is replaced, "
                       "anything else only with --overwrite")
      ->required();
  exporter->add_option("-f,--format", export_format, "hf: a Hugging Face folder (default); gguf: one GGUF file")
      ->check(CLI::IsMember({"hf", "gguf"}));
  exporter->add_option("--dtype", export_dtype,
                       "hf: float32, bfloat16 or float16 (default: the model's); gguf: f32, f16, bf16 or q8_0 "
                       "(default: bf16 for a bfloat16 model, else f16)");
  bool export_overwrite = false;
  exporter->add_flag("--overwrite", export_overwrite,
                     "replace whatever is at --out (never the model being exported, nor a folder holding it)");
  exporter->add_option("--name", export_name, "gguf: general.name (default: the file's name without .gguf)");
  exporter->add_option("--chat-template", export_chat_template,
                       "gguf: a file whose Jinja text becomes tokenizer.chat_template (default: the tokenizer's own)")
      ->check(CLI::ExistingFile);

  CLI::App* show = app.add_subcommand("config", "print the resolved config (defaults, file, overrides) as JSON");
  Common show_args;
  show->add_option("-c,--config", show_args.config, "a JSON config file (default: none, only the defaults)")
      ->check(CLI::ExistingFile);
  show->add_option("-s,--set", show_args.overrides, "override a config value, key.path=value (repeatable)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // NB: CLI11 has a code of its own for each kind of mistake (105 a failed check, 109 an extra argument, ...);
    // they are all the one usage status, 2. --help prints and is 0.
    return app.exit(e) == 0 ? 0 : 2;
  }
  // NB: the first SIGINT, SIGTERM or SIGHUP lets a run finish its step and checkpoint; a second ends it at once.
  grpo::install_stop_signals();

  try {
    if (*show) {
      nlohmann::json j = grpo::TrainConfig().to_json();
      if (!show_args.config.empty()) {
        j = grpo::load_config(show_args.config, show_args.overrides).to_json();
      } else {
        for (const std::string& o : show_args.overrides) grpo::apply_override(j, o);
        j = grpo::TrainConfig::from_json(j).to_json();
      }
      std::cout << grpo::json_text(j, 2) << "\n";
    } else if (*exporter) {
      if (export_model.empty() == export_checkpoint.empty()) {
        throw grpo::Error("export: give the model folder once, as the argument or as --checkpoint");
      }
      const std::string dir = export_model.empty() ? export_checkpoint : export_model;
      grpo::check_export_target(export_out, dir, export_format, export_overwrite);
      const auto model = grpo::load_model(dir);
      std::shared_ptr<grpo::Tokenizer> tokenizer;
      if (export_format == "gguf") {
        grpo::GgufOptions options;
        if (!export_dtype.empty()) options.type = grpo::gguf_type_from_name(export_dtype, "--dtype");
        options.name = export_name;
        if (!export_chat_template.empty()) {
          options.chat_template = grpo::read_file(export_chat_template, "a Jinja chat template");
        }
        tokenizer = grpo::load_tokenizer(dir);  // NB: a GGUF file without its vocabulary does not run
        grpo::export_gguf(*model, *tokenizer, export_out, options);
        std::cout << export_out << "\n";
        return 0;
      }
      if (!export_name.empty() || !export_chat_template.empty()) {
        throw grpo::Error("export: --name and --chat-template are options of --format gguf");
      }
      try {
        tokenizer = grpo::load_tokenizer(dir);
      } catch (const grpo::Error& e) {
        grpo::log::warn(std::string("no tokenizer written: ") + e.what());
      }
      c10::optional<c10::ScalarType> dtype;
      if (!export_dtype.empty()) dtype = grpo::dtype_from_name(export_dtype, "--dtype");
      grpo::export_pretrained(*model, tokenizer.get(), export_out, dtype);
      std::cout << export_out << "\n";
    } else if (*train) {
      // NB: under torchrun every rank runs this; rank 0 alone prints the report.
      auto trainer = grpo::GRPOTrainer::from_config(load(train_args));
      const nlohmann::json report = trainer->train();
      if (trainer->distributed().is_main()) std::cout << grpo::json_text(report, 2) << "\n";
    } else if (*pipeline) {
      grpo::Pipeline p = grpo::Pipeline::from_file(pipeline_args.config, pipeline_args.overrides);
      std::cout << grpo::json_text(p.run(), 2) << "\n";
    } else if (*sft) {
      auto trainer = grpo::SFTTrainer::from_config(load(sft_args));
      const nlohmann::json result = trainer->train();
      if (trainer->distributed().is_main()) std::cout << grpo::json_text(result, 2) << "\n";
    } else if (*distill) {
      auto trainer = grpo::Distiller::from_config(load(distill_args));
      const nlohmann::json result = trainer->train();
      if (trainer->distributed().is_main()) std::cout << grpo::json_text(result, 2) << "\n";
    } else if (*eval) {
      const grpo::TrainConfig config = load(eval_args);
      if (config.data.eval.empty()) throw grpo::Error("data.eval: the config names no eval set");
      auto [model, tokenizer] = load_policy(config, eval_checkpoint);
      grpo::Policy policy(model);
      const auto data = grpo::PromptDataset::from_jsonl(config.data.eval, grpo::dataset_options(config.data, config.seed));
      const auto rewards = grpo::RewardSet::from_json(config.rewards);
      const int64_t T = config.eval.max_new_tokens > 0 ? config.eval.max_new_tokens : config.sampling.max_new_tokens;
      grpo::EvalResult r = grpo::evaluate(policy, *tokenizer, data, rewards, config.eval, T,
                                          eval_limit > 0 ? eval_limit : config.data.eval_limit,
                                          config.eval.accuracy_reward, grpo::stop_ids(config.sampling, *tokenizer));
      // The step is the checkpoint's own (0 for a model that no run has trained).
      const std::filesystem::path state = std::filesystem::path(eval_checkpoint) / "trainer_state.json";
      if (!eval_checkpoint.empty() && std::filesystem::exists(state)) {
        r.step = grpo::read_trainer_state(eval_checkpoint).value("step", int64_t{0});
      }
      std::cout << grpo::json_text(r.to_json(), 2) << "\n";
    } else if (*sample && !sample_dataset.empty()) {
      grpo::TrainConfig config = load(sample_args);
      config.rejection.prompts = sample_dataset;
      if (!sample_out.empty()) config.rejection.output = sample_out;
      if (count > 0) config.rejection.samples_per_prompt = count;
      if (temperature >= 0) config.sampling.temperature = temperature;
      const nlohmann::json summary = grpo::RejectionSampler::from_config(config, sample_checkpoint)->run();
      std::cout << grpo::json_text(summary, 2) << "\n";
    } else if (*sample) {
      if (prompt.empty()) throw grpo::Error("sample: give --prompt TEXT, or --dataset FILE to sample a whole dataset");
      const grpo::TrainConfig config = load(sample_args);
      auto [model, tokenizer] = load_policy(config, sample_checkpoint);
      grpo::Policy policy(model);
      grpo::GroupSamplerConfig sc;
      sc.group_size = count > 0 ? count : 4;
      sc.generation = config.sampling.to_generation();
      sc.generation.eos_ids = grpo::stop_ids(config.sampling, *tokenizer);
      sc.generation.seed = config.seed;
      if (temperature >= 0) sc.generation.temperature = temperature;
      grpo::GroupSampler sampler(policy, tokenizer, sc);
      grpo::PromptDatasetOptions opt = grpo::dataset_options(config.data, config.seed);
      opt.prompt_key = "prompt";
      const auto data = grpo::PromptDataset::from_records({nlohmann::json{{"prompt", prompt}}}, opt);
      const grpo::RolloutBatch batch = sampler.sample({data.get(0)});
      for (const std::string& text : batch.completion_texts) std::cout << text << "\n";
    }
  } catch (const std::exception& e) {
    // NB: under torchrun the rank is named, as torchrun's own summary does.
    const char* rank = std::getenv("WORLD_SIZE") && std::getenv("RANK") ? std::getenv("RANK") : nullptr;
    std::cerr << "grpo" << (rank ? std::string(" (rank ") + rank + ")" : std::string()) << ": " << e.what() << "\n";
    return 1;
  }
  // The conventional status of a process ended by that signal, after the checkpoint.
  if (grpo::stop_requested()) return grpo::stop_signal() > 0 ? 128 + grpo::stop_signal() : 130;
  return 0;
}
