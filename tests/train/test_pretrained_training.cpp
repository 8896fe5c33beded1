// GRPO on a real Hugging Face folder, as a new user would run it: the pretrained
// stories260K and its SentencePiece tokenizer go in through model.init_from,
// a few steps train it, and a folder in transformers' layout (weights, config,
// tokenizer, generation config) comes out and loads back. Also: stop tokens,
// chat-formatted prompts, and the export's errors.
#include <grpo/config/config.h>
#include <grpo/data/prompt_dataset.h>
#include <grpo/error.h>
#include <grpo/io/pretrained.h>
#include <grpo/io/safetensors.h>
#include <grpo/io/weights.h>
#include <grpo/tokenizers/hf_tokenizer.h>
#include <grpo/tokenizers/sentencepiece.h>
#include <grpo/train/checkpoint.h>
#include <grpo/train/factory.h>
#include <grpo/train/grpo_trainer.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"
#include "tiny_models.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kStories = std::string(GRPO_TEST_DATA_DIR) + "/models/stories260K";

json read_json(const fs::path& path) {
  std::ifstream f(path);
  return json::parse(f);
}

// Two steps of GRPO on stories260K from its Hugging Face folder, writing into
// `dir`: two story openings, the "mentions a dog" reward, β = 0.1.
grpo::TrainConfig stories_run(const TempDir& dir) {
  const fs::path data = dir.path / "train.jsonl";
  std::ofstream(data) << R"({"prompt": "Once upon a time, there was a little dog."})" << "\n"
                      << R"({"prompt": "Tom had a big red ball."})" << "\n";
  grpo::TrainConfig c;
  c.output_dir = (dir.path / "run").string();
  c.model.init_from = kStories;
  c.data.train = data.string();
  c.sampling.max_new_tokens = 12;
  c.rewards = json::parse(R"({"rewards": [{"name": "regex", "pattern": "\\bdog\\b"}]})");
  c.loss.policy.beta = 0.1;
  c.grpo.steps = 2;
  c.grpo.group_size = 4;
  c.checkpoint.resume = false;
  c.logging.console = false;
  return c;
}

}  // namespace

TEST(PretrainedTraining, HuggingFaceFolderInTrainedFolderOut) {
  TempDir dir("hf_train");
  grpo::TrainConfig c = stories_run(dir);
  c.threads = 1;
  c.sampling.stop_tokens = {"<s>"};
  c.optimizer.lr = 1e-3;
  c.optimizer.warmup_steps = 0;
  c.grpo.prompts_per_step = 2;
  c.checkpoint.save_pretrained = "bfloat16";
  c.validate();

  auto trainer = grpo::GRPOTrainer::from_config(c);
  EXPECT_NE(dynamic_cast<const grpo::SentencePieceTokenizer*>(trainer->tokenizer().get()), nullptr);
  const json report = trainer->train();
  const fs::path final_dir = dir.path / "run" / "final";
  EXPECT_EQ(report.at("pretrained_dir"), final_dir.string());
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json",
                           "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(final_dir / file)) << file;
  }
  const json config = read_json(final_dir / "config.json");
  EXPECT_EQ(config.at("architectures"), json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(config.at("torch_dtype"), "bfloat16");
  const json generation = read_json(final_dir / "generation_config.json");
  EXPECT_EQ(generation.at("bos_token_id"), 1);
  EXPECT_EQ(generation.at("eos_token_id"), 2);

  // The saved weights are the trained policy's, in bfloat16, and differ from the pretrained ones.
  const auto original = grpo::load_pretrained(kStories);
  const auto trained = grpo::load_pretrained(final_dir.string());
  const grpo::SafetensorsFile st((final_dir / "model.safetensors").string());
  EXPECT_EQ(st.tensor("model.norm.weight").scalar_type(), torch::kBFloat16);
  const torch::Tensor policy_w =
      trainer->policy().model().module().named_parameters()["model.layers.0.self_attn.q_proj.weight"].detach();
  const torch::Tensor saved_w = trained->named_parameters()["model.layers.0.self_attn.q_proj.weight"];
  EXPECT_TRUE(torch::equal(saved_w, policy_w.to(torch::kBFloat16).to(torch::kFloat32)));
  EXPECT_FALSE(torch::equal(saved_w, original->named_parameters()["model.layers.0.self_attn.q_proj.weight"]
                                          .to(torch::kBFloat16)
                                          .to(torch::kFloat32)));
  // And the tokenizer comes back as it went in.
  EXPECT_EQ(grpo::load_tokenizer(final_dir.string())->encode("Once upon a time"),
            (std::vector<int64_t>{403, 407, 261, 378}));
  // A checkpoint of ours holds the tokenizer too, so eval or a resume finds it.
  const auto latest = grpo::latest_checkpoint(c.output_dir);
  ASSERT_TRUE(latest.has_value());
  EXPECT_TRUE(fs::exists(fs::path(*latest) / "tokenizer.model"));
}

// A Qwen2 folder with a tokenizer.json (byte-level BPE, ChatML) goes in the same
// way: chat-formatted prompts, <|im_end|> as EOS, and a Qwen2 folder out.
TEST(PretrainedTraining, Qwen2FolderWithTokenizerJson) {
  TempDir dir("qwen2_train");
  const fs::path model_dir = dir.path / "qwen2";
  const std::string tokenizer_dir = std::string(GRPO_TEST_DATA_DIR) + "/tokenizers/qwen2_tiny";
  // 264 pieces + 3 added tokens; q/k/v biases as Qwen2 has.
  const grpo::TransformerConfig tc = grpo_test::tiny_transformer_config(267, /*tied=*/true, /*bias=*/true, 128);
  torch::manual_seed(0);
  grpo::save_pretrained(grpo::TransformerLM(tc), model_dir.string());
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) fs::copy_file(fs::path(tokenizer_dir) / f, model_dir / f);

  const fs::path data = dir.path / "train.jsonl";
  std::ofstream(data) << R"({"question": "What is 2+2?", "answer": "4"})" << "\n";
  grpo::TrainConfig c;
  c.output_dir = (dir.path / "run").string();
  c.threads = 1;
  c.model.init_from = model_dir.string();
  c.data.train = data.string();
  c.data.prompt_key = "question";
  c.data.template_text = "{question}";
  c.data.chat_template = "chatml";
  c.sampling.max_new_tokens = 6;
  c.rewards = json::parse(R"({"rewards": [{"name": "accuracy"}]})");
  c.grpo.steps = 1;
  c.grpo.prompts_per_step = 1;
  c.grpo.group_size = 4;
  c.checkpoint.resume = false;
  c.checkpoint.save_pretrained = "float32";
  c.logging.console = false;
  auto trainer = grpo::GRPOTrainer::from_config(c);
  const auto* hf = dynamic_cast<const grpo::HFTokenizer*>(trainer->tokenizer().get());
  ASSERT_NE(hf, nullptr);
  EXPECT_EQ(hf->id_to_token(hf->eos_id()), "<|im_end|>");
  // The ChatML control tokens are single tokens in the prompt.
  const auto ids = hf->encode_prompt("<|im_start|>user\nhi<|im_end|>\n");
  EXPECT_EQ(ids.front(), *hf->token_to_id("<|im_start|>"));
  trainer->train();
  const fs::path final_dir = dir.path / "run" / "final";
  EXPECT_EQ(read_json(final_dir / "config.json").at("model_type"), "qwen2");
  EXPECT_EQ(read_json(final_dir / "generation_config.json").at("eos_token_id"), *hf->token_to_id("<|im_end|>"));
  const auto back = grpo::load_tokenizer(final_dir.string());
  EXPECT_NE(dynamic_cast<const grpo::HFTokenizer*>(back.get()), nullptr);
  EXPECT_EQ(back->encode("What is 2+2?"), hf->encode("What is 2+2?"));
  EXPECT_TRUE(grpo::load_pretrained(final_dir.string())->config().attention_bias);
}

// The policy on a GPU: rollouts and advantages stay on the CPU, the model's
// calls move their rows, and the log-probs match the CPU model's.
TEST(PretrainedTrainingCuda, TrainsOnTheGpuWithCpuBookkeeping) {
  if (!torch::cuda::is_available()) {
    grpo::ModelConfig m;
    m.init_from = kStories;
    m.device = "cuda";
    const auto tokenizer = grpo::load_tokenizer(kStories);
    EXPECT_HAS(error_of([&] { grpo::make_model(m, *tokenizer, 0); }), "model.device: \"cuda\" asked for, but CUDA");
    GTEST_SKIP() << "no CUDA GPU";
  }
  const auto tokenizer = grpo::load_tokenizer(kStories);
  const auto cpu_model = grpo::load_model(kStories);
  auto gpu_model = grpo::load_model(kStories);
  gpu_model->module().to(torch::kCUDA);
  const std::vector<int64_t> prompt = tokenizer->encode_prompt("Once upon a time");
  const std::vector<int64_t> completion = tokenizer->encode(", there was a little dog named Max.");
  const auto p = torch::tensor(prompt, torch::kLong).unsqueeze(0);
  const auto c = torch::tensor(completion, torch::kLong).unsqueeze(0);
  const auto pm = torch::ones_like(p), cm = torch::ones_like(c);
  const auto on_cpu = grpo::token_logprobs(*cpu_model, p, pm, c, cm, {}).logprobs;
  const auto on_gpu = grpo::token_logprobs(*gpu_model, p, pm, c, cm, {}).logprobs;
  EXPECT_TRUE(on_gpu.is_cuda());
  EXPECT_TRUE(torch::allclose(on_gpu.cpu(), on_cpu, 1e-4, 1e-4));

  TempDir dir("hf_train_cuda");
  grpo::TrainConfig cfg = stories_run(dir);
  cfg.model.device = "cuda";
  cfg.grpo.prompts_per_step = 1;
  cfg.grpo.num_iterations = 2;
  cfg.checkpoint.save_pretrained = "float32";
  const json report = grpo::GRPOTrainer::from_config(cfg)->train();
  EXPECT_EQ(report.at("steps"), 2);
  EXPECT_TRUE(fs::exists(dir.path / "run" / "final" / "model.safetensors"));
  EXPECT_EQ(grpo::load_pretrained((dir.path / "run" / "final").string())->config().vocab_size, 512);
}

TEST(PretrainedTraining, StopTokensAreResolvedOrNamed) {
  const auto tokenizer = grpo::load_tokenizer(kStories);
  grpo::SamplingConfig s;
  EXPECT_EQ(grpo::stop_ids(s, *tokenizer), (std::vector<int64_t>{2}));
  s.stop_tokens = {"<s>", "</s>"};
  EXPECT_EQ(grpo::stop_ids(s, *tokenizer), (std::vector<int64_t>{2, 1}));
  s.stop_tokens = {"<|im_end|>"};
  EXPECT_HAS(error_of([&] { grpo::stop_ids(s, *tokenizer); }),
             "sampling.stop_tokens[0]: the tokenizer has no token \"<|im_end|>\"");
}

TEST(PretrainedTraining, ChatTemplatesWrapDatasetPrompts) {
  grpo::PromptDatasetOptions opt;
  opt.template_text = "Solve: {prompt}";
  opt.chat_template = "chatml";
  opt.system_prompt = "Think step by step.";
  const auto data = grpo::PromptDataset::from_records({json{{"prompt", "1+1"}}}, opt);
  EXPECT_EQ(data.get(0).prompt,
            "<|im_start|>system\nThink step by step.<|im_end|>\n<|im_start|>user\nSolve: 1+1<|im_end|>\n"
            "<|im_start|>assistant\n");
  opt.chat_template = "{role}: {content}\n";
  opt.system_prompt = "";
  EXPECT_EQ(grpo::PromptDataset::from_records({json{{"prompt", "hi"}}}, opt).get(0).prompt, "user: Solve: hi\n");
  opt.chat_template = "{speaker}: {content}";
  EXPECT_HAS(error_of([&] { grpo::PromptDataset::from_records({json{{"prompt", "hi"}}}, opt); }),
             "chat template");
  opt.chat_template = "";
  opt.system_prompt = "Be brief.";
  EXPECT_HAS(error_of([&] { grpo::PromptDataset::from_records({json{{"prompt", "hi"}}}, opt); }),
             "a system prompt needs a chat template");
}

TEST(PretrainedTraining, AMissingModelFolderIsNamedAsSuch) {
  TempDir dir("missing_model");
  EXPECT_HAS(error_of([&] { grpo::load_model(dir / "nowhere"); }),
             "nowhere: no such folder (expected a checkpoint or a Hugging Face model folder)");
  std::ofstream(dir / "file") << "x";
  EXPECT_HAS(error_of([&] { grpo::load_model(dir / "file"); }), "file: is not a folder");
}

TEST(PretrainedTraining, ExportErrorsAreNamed) {
  TempDir dir("hf_export");
  const auto model = grpo::load_model(kStories);
  EXPECT_HAS(error_of([&] { grpo::dtype_from_name("int8", "--dtype"); }), "--dtype: unknown dtype \"int8\"");
  // A folder where the export cannot go leaves no temporary folder behind.
  const fs::path blocker = dir.path / "file";
  std::ofstream(blocker) << "x";
  EXPECT_FALSE(error_of([&] { grpo::export_pretrained(*model, nullptr, (blocker / "out").string()); }).empty());
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  }
  // Exporting twice replaces the folder whole.
  const fs::path out = dir.path / "out";
  grpo::export_pretrained(*model, nullptr, out.string());
  grpo::export_pretrained(*model, nullptr, out.string(), torch::kBFloat16);
  EXPECT_EQ(read_json(out / "config.json").at("torch_dtype"), "bfloat16");
  EXPECT_FALSE(fs::exists(out / "tokenizer.model"));
}

// `grpo export --out` replaces only an earlier export: never the model it
// exports nor a folder holding it (even with --overwrite), and nothing else
// (a run folder, a checkpoint, a file) without --overwrite.
TEST(PretrainedTraining, ExportNeverReplacesTheSourceOrForeignFiles) {
  TempDir dir("export_target");
  const fs::path run = dir.path / "run";
  const fs::path checkpoint = run / "checkpoint-3";
  fs::create_directories(checkpoint);
  std::ofstream(checkpoint / "model.json") << "{}";
  std::ofstream(run / "metrics.jsonl") << "{}\n";
  const std::string source = checkpoint.string();
  for (bool overwrite : {false, true}) {
    EXPECT_HAS(error_of([&] { grpo::check_export_target(source, source, "hf", overwrite); }),
               "is the model being exported");
    EXPECT_HAS(error_of([&] { grpo::check_export_target(source + "/", source, "hf", overwrite); }),
               "is the model being exported");
    EXPECT_HAS(error_of([&] { grpo::check_export_target(run.string(), source, "hf", overwrite); }),
               "holds the model being exported");
    EXPECT_HAS(error_of([&] { grpo::check_export_target((run / ".." / "run").string(), source, "gguf", overwrite); }),
               "holds the model being exported");
  }
  // A sibling whose name starts the same is not a folder holding it.
  EXPECT_NO_THROW(grpo::check_export_target((run / "checkpoint").string(), source, "hf", false));
  // Existing things that are not an export.
  const fs::path other_run = dir.path / "other";
  fs::create_directories(other_run / "checkpoint-9");
  std::ofstream(other_run / "config.json") << "{}";
  EXPECT_HAS(error_of([&] { grpo::check_export_target(other_run.string(), source, "hf", false); }),
             "is not a Hugging Face model folder (it holds checkpoint-9/); give --overwrite");
  const fs::path empty = dir.path / "empty";
  fs::create_directories(empty);
  EXPECT_HAS(error_of([&] { grpo::check_export_target(empty.string(), source, "hf", false); }), "no config.json");
  const fs::path notes = dir.path / "notes.txt";
  std::ofstream(notes) << "keep me";
  EXPECT_HAS(error_of([&] { grpo::check_export_target(notes.string(), source, "hf", false); }), "is not a folder");
  EXPECT_HAS(error_of([&] { grpo::check_export_target(notes.string(), source, "gguf", false); }), "is not a GGUF file");
  EXPECT_HAS(error_of([&] { grpo::check_export_target(empty.string(), source, "gguf", false); }), "is not a file");
  // With --overwrite they may go; an earlier export and a new path always may.
  EXPECT_NO_THROW(grpo::check_export_target(other_run.string(), source, "hf", true));
  EXPECT_NO_THROW(grpo::check_export_target(notes.string(), source, "gguf", true));
  EXPECT_NO_THROW(grpo::check_export_target((dir.path / "new").string(), source, "hf", false));
  const auto model = grpo::load_model(kStories);
  const fs::path hf = dir.path / "hf";
  grpo::export_pretrained(*model, nullptr, hf.string());
  EXPECT_NO_THROW(grpo::check_export_target(hf.string(), source, "hf", false));
  const fs::path gguf = dir.path / "m.gguf";
  std::ofstream(gguf, std::ios::binary) << "GGUF\x03";
  EXPECT_NO_THROW(grpo::check_export_target(gguf.string(), source, "gguf", false));
  EXPECT_HAS(error_of([&] { grpo::check_export_target(gguf.string(), source, "onnx", false); }), "format must be");
}
