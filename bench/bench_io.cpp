// Checkpoint and tokenizer speed: save_pretrained and load_pretrained of a
// Llama-shaped model of about 110M parameters (hidden 768, 12 layers, vocab
// 32000) in float32 and bfloat16, and encode throughput of the SentencePiece
// (stories260K, llama2.c) and byte-level BPE (tests/fixtures/tokenizers) tokenizers
// on about 1 MB of English text (Debian's licence texts).
//   bench_io [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <grpo/io/pretrained.h>
#include <grpo/io/weights.h>
#include <grpo/tokenizers/hf_tokenizer.h>
#include <grpo/tokenizers/sentencepiece.h>
#include <grpo/train/checkpoint.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#ifndef GRPO_SOURCE_DIR
#define GRPO_SOURCE_DIR "."
#endif

namespace {

namespace fs = std::filesystem;

std::shared_ptr<grpo::TransformerLM> model_110m() {
  static auto model = [] {
    torch::manual_seed(0);
    grpo::TransformerConfig c;
    c.vocab_size = 32000;
    c.hidden_size = 768;
    c.intermediate_size = 2048;
    c.num_layers = 12;
    c.num_heads = 12;
    c.num_kv_heads = 12;
    c.max_position_embeddings = 2048;
    c.tie_word_embeddings = false;
    return std::make_shared<grpo::TransformerLM>(c);
  }();
  return model;
}

fs::path scratch(const std::string& name) {
  return fs::temp_directory_path() / ("grpo_bench_io_" + std::to_string(::getpid()) + "_" + name);
}

double file_bytes(const fs::path& dir) {
  double n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += static_cast<double>(fs::file_size(e.path()));
  return n;
}

void BM_SavePretrained(benchmark::State& state, c10::ScalarType dtype) {
  const auto model = model_110m();
  const fs::path dir = scratch("save");
  for (auto _ : state) grpo::save_pretrained(*model, dir.string(), dtype);
  state.counters["MB"] = file_bytes(dir) / 1e6;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * file_bytes(dir)));
  fs::remove_all(dir);
}

void BM_LoadPretrained(benchmark::State& state, c10::ScalarType stored) {
  const fs::path dir = scratch("load");
  grpo::save_pretrained(*model_110m(), dir.string(), stored);
  for (auto _ : state) benchmark::DoNotOptimize(grpo::load_pretrained(dir.string()));  // into float32
  state.counters["MB"] = file_bytes(dir) / 1e6;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * file_bytes(dir)));
  fs::remove_all(dir);
}

const std::string& english() {
  static const std::string text = [] {
    std::string all;
    for (const auto& e : fs::directory_iterator("/usr/share/common-licenses")) {
      if (!e.is_regular_file()) continue;
      std::ifstream f(e.path());
      std::ostringstream s;
      s << f.rdbuf();
      all += s.str();
    }
    std::string out;
    while (!all.empty() && out.size() < (1u << 20)) out += all;
    out.resize(std::min(out.size(), size_t{1} << 20));
    // Keep whole UTF-8 characters at the cut.
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
    if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
    return out;
  }();
  return text;
}

void encode_bench(benchmark::State& state, const grpo::Tokenizer& tokenizer) {
  const std::string& text = english();
  int64_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tokenizer.encode(text);
    tokens = static_cast<int64_t>(ids.size());
    benchmark::DoNotOptimize(ids.data());
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens"] = static_cast<double>(tokens);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void BM_EncodeSentencePiece(benchmark::State& state) {
  const auto t = grpo::SentencePieceTokenizer::load(std::string(GRPO_SOURCE_DIR) +
                                                    "/tests/fixtures/models/stories260K/tokenizer.model");
  encode_bench(state, t);
}

void BM_EncodeByteLevelBPE(benchmark::State& state, const char* fixture) {
  const auto t = grpo::HFTokenizer::load_dir(std::string(GRPO_SOURCE_DIR) + "/tests/fixtures/tokenizers/" + fixture);
  encode_bench(state, t);
}

void BM_LoadStories260K(benchmark::State& state) {
  const std::string dir = std::string(GRPO_SOURCE_DIR) + "/tests/fixtures/models/stories260K";
  for (auto _ : state) {
    benchmark::DoNotOptimize(grpo::load_model(dir));
    benchmark::DoNotOptimize(grpo::load_tokenizer(dir));
  }
}

}  // namespace

BENCHMARK_CAPTURE(BM_SavePretrained, f32, torch::kFloat32)->Unit(benchmark::kMillisecond)->MinTime(2);
BENCHMARK_CAPTURE(BM_SavePretrained, bf16, torch::kBFloat16)->Unit(benchmark::kMillisecond)->MinTime(2);
BENCHMARK_CAPTURE(BM_LoadPretrained, f32, torch::kFloat32)->Unit(benchmark::kMillisecond)->MinTime(2);
BENCHMARK_CAPTURE(BM_LoadPretrained, bf16, torch::kBFloat16)->Unit(benchmark::kMillisecond)->MinTime(2);
BENCHMARK(BM_LoadStories260K)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeSentencePiece)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeByteLevelBPE, gpt2_tiny, "gpt2_tiny")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeByteLevelBPE, trained_1000_merges, "trained")->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
