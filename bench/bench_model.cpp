// The built-in TransformerLM at two Llama shapes (about 10M and 100M
// parameters), float32 and bfloat16: prefill (a left-padded batch of prompts,
// the last position's logits only), cached decoding, and one training
// forward + backward over whole sequences. Counters: tokens per second and
// the process's peak resident memory (run one benchmark per process, as
// bench/model.sh does, for a peak that is that benchmark's own); on a GPU
// (GRPO_BENCH_DEVICE=cuda) also the peak of LibTorch's CUDA allocator.
// Shapes: B rows, Lp prompt positions, T new tokens.
#include <benchmark/benchmark.h>
#include <grpo/models/transformer.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#if __has_include(<c10/cuda/CUDACachingAllocator.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define GRPO_BENCH_CUDA_STATS 1
#endif

namespace {

torch::Device device() {
  const char* name = std::getenv("GRPO_BENCH_DEVICE");
  return torch::Device(name != nullptr && *name != '\0' ? name : "cpu");
}

void synchronize() {
  if (device().is_cuda()) torch::cuda::synchronize();
}

grpo::TransformerConfig shape(const std::string& name) {
  grpo::TransformerConfig c;
  if (name == "10M") {
    c.vocab_size = 4096, c.hidden_size = 256, c.intermediate_size = 1024, c.num_layers = 8;
    c.num_heads = 8, c.num_kv_heads = 4;
  } else {  // "100M": GPT-2-small widths with Llama 2's vocabulary
    c.vocab_size = 32000, c.hidden_size = 768, c.intermediate_size = 2048, c.num_layers = 12;
    c.num_heads = 12, c.num_kv_heads = 4;
  }
  c.max_position_embeddings = 2048;
  return c;
}

std::shared_ptr<grpo::TransformerLM> model(const std::string& name, torch::ScalarType dtype) {
  static std::map<std::pair<std::string, int>, std::shared_ptr<grpo::TransformerLM>> cache;
  auto& m = cache[{name, static_cast<int>(dtype)}];
  if (!m) {
    torch::manual_seed(0);
    m = std::make_shared<grpo::TransformerLM>(shape(name));
    m->to(device(), dtype);
  }
  return m;
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// Left-padded ids (B, L) and mask: row b has L - 2b real tokens.
std::pair<torch::Tensor, torch::Tensor> batch(int64_t B, int64_t L, int64_t V) {
  torch::manual_seed(1);
  torch::Tensor ids = torch::randint(1, V, {B, L}, torch::kLong);
  torch::Tensor mask = torch::ones({B, L}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) mask[b].slice(0, 0, std::min<int64_t>(2 * b, L - 1)).zero_();
  return {ids.masked_fill(mask == 0, 0).to(device()), mask.to(device())};
}

void finish(benchmark::State& state, int64_t tokens_per_iteration, int64_t parameters) {
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(tokens_per_iteration), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_MiB"] = peak_rss_mib();
#ifdef GRPO_BENCH_CUDA_STATS
  if (device().is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device().index() < 0 ? 0 : device().index());
    state.counters["gpu_peak_MiB"] = static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0);
  }
#endif
  state.counters["params_M"] = static_cast<double>(parameters) / 1e6;
}

int64_t parameter_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

// B = 8 prompts of up to 256 tokens: hidden states, then the last position's logits.
void BM_Prefill(benchmark::State& state, const std::string& name, torch::ScalarType dtype) {
  auto m = model(name, dtype);
  const int64_t B = 8, L = 256;
  const auto [ids, mask] = batch(B, L, m->vocab_size());
  const torch::Tensor positions = grpo::positions_from_mask(mask, L);
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    auto cache = m->make_cache(B, L + 1);
    const torch::Tensor h = m->hidden_states(ids, mask, positions, cache.get()).select(1, -1);
    benchmark::DoNotOptimize(torch::matmul(h, m->output_weight().t()).data_ptr());
    synchronize();
  }
  finish(state, mask.sum().item<int64_t>(), parameter_count(*m));
}

// B = 8 rows after a 64-token prompt: 64 cached decoding steps of one token.
void BM_Decode(benchmark::State& state, const std::string& name, torch::ScalarType dtype) {
  auto m = model(name, dtype);
  const int64_t B = 8, Lp = 64, T = 64;
  const auto [ids, mask] = batch(B, Lp, m->vocab_size());
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    state.PauseTiming();
    synchronize();
    auto cache = m->make_cache(B, Lp + T);
    m->hidden_states(ids, mask, grpo::positions_from_mask(mask, Lp), cache.get());
    torch::Tensor attention = mask;
    torch::Tensor next = ids.select(1, -1).unsqueeze(1);
    state.ResumeTiming();
    for (int64_t t = 0; t < T; ++t) {
      attention = torch::cat({attention, torch::ones({B, 1}, attention.options())}, 1);
      const torch::Tensor h = m->hidden_states(next, attention, grpo::positions_from_mask(attention, 1), cache.get());
      next = torch::matmul(h.select(1, -1), m->output_weight().t()).argmax(-1, /*keepdim=*/true);
    }
    benchmark::DoNotOptimize(next.data_ptr());
    synchronize();
  }
  finish(state, B * T, parameter_count(*m));
}

// B = 4 sequences of 256 tokens: forward, mean log-prob of the next token, backward.
void BM_TrainStep(benchmark::State& state, const std::string& name, torch::ScalarType dtype) {
  auto m = model(name, dtype);
  const int64_t B = 4, L = 256;
  const auto [ids, mask] = batch(B, L, m->vocab_size());
  const torch::Tensor positions = grpo::positions_from_mask(mask, L);
  for (auto _ : state) {
    m->zero_grad();
    const torch::Tensor logits = m->forward(ids, mask, positions, nullptr).slice(1, 0, L - 1).to(torch::kFloat32);
    const torch::Tensor logp = torch::log_softmax(logits, -1).gather(-1, ids.slice(1, 1).unsqueeze(-1)).squeeze(-1);
    const torch::Tensor loss = -(logp * mask.slice(1, 1)).sum() / mask.slice(1, 1).sum();
    loss.backward();
    benchmark::DoNotOptimize(loss.data_ptr());
    synchronize();
  }
  finish(state, mask.sum().item<int64_t>(), parameter_count(*m));
}

void register_all() {
  for (const std::string name : {"10M", "100M"}) {
    for (const auto& [dtype_name, dtype] :
         {std::pair{"fp32", torch::kFloat32}, std::pair{"bf16", torch::kBFloat16}}) {
      const std::string suffix = "/" + name + "/" + dtype_name;
      const torch::ScalarType t = dtype;
      benchmark::RegisterBenchmark(("BM_Prefill" + suffix).c_str(), [name, t](benchmark::State& s) {
        BM_Prefill(s, name, t);
      })->Unit(benchmark::kMillisecond)->UseRealTime();
      benchmark::RegisterBenchmark(("BM_Decode" + suffix).c_str(), [name, t](benchmark::State& s) {
        BM_Decode(s, name, t);
      })->Unit(benchmark::kMillisecond)->UseRealTime();
      benchmark::RegisterBenchmark(("BM_TrainStep" + suffix).c_str(), [name, t](benchmark::State& s) {
        BM_TrainStep(s, name, t);
      })->Unit(benchmark::kMillisecond)->UseRealTime();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  torch::set_num_threads(1);  // NB: on the CPU one intra-op thread, so the figures are per core and repeatable
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("libtorch", TORCH_VERSION);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
