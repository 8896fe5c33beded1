// Generation speed of the built-in TransformerLM (about 10M parameters):
// decoding with the KV cache vs recomputing the whole prefix every step, and
// prefilling each prompt once for its G completions vs prefilling every row;
// and the training log-prob forward + backward with each group's prompt run
// once (LogprobOptions::prompt_groups) vs with every row; and the next-token
// draw against torch::multinomial.
// Shapes: P prompts, G completions each, N = P·G rows, Lp prompt positions.
#include <benchmark/benchmark.h>
#include <grpo/models/transformer.h>
#include <grpo/rollout/policy.h>
#include <grpo/rollout/sampling.h>
#include <torch/torch.h>

#include <memory>

namespace {

constexpr int64_t kG = 8;

std::shared_ptr<grpo::TransformerLM> model_10m() {
  static std::shared_ptr<grpo::TransformerLM> model = [] {
    torch::manual_seed(0);
    grpo::TransformerConfig c;
    c.vocab_size = 4096;
    c.hidden_size = 256;
    c.intermediate_size = 1024;
    c.num_layers = 8;
    c.num_heads = 8;
    c.num_kv_heads = 4;
    c.max_position_embeddings = 2048;
    auto m = std::make_shared<grpo::TransformerLM>(c);
    m->eval();
    return m;
  }();
  return model;
}

int64_t parameter_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

std::vector<std::vector<int64_t>> prompts(int64_t P, int64_t Lp) {
  std::vector<std::vector<int64_t>> out(P);
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t t = 0; t < Lp; ++t) out[p].push_back(1 + (p * 131 + t * 17) % 4000);
  }
  return out;
}

// One prompt of 16 tokens, G = 8 completions of range(0) new tokens, no EOS.
void BM_Decode(benchmark::State& state, bool use_cache) {
  auto model = model_10m();
  grpo::Policy policy(model);
  grpo::GenerationConfig config;
  config.max_new_tokens = state.range(0);
  config.use_cache = use_cache;
  config.seed = 1;
  const auto batch = prompts(1, 16);
  for (auto _ : state) {
    const grpo::Generation g = policy.generate(batch, config, kG);
    benchmark::DoNotOptimize(g.completion_ids.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * kG * state.range(0));  // items/s = generated tokens/s
  state.counters["parameters"] = static_cast<double>(parameter_count(*model));
}

// Prefill of P = 4 prompts of range(0) tokens for G = 8 completions each.
void BM_Prefill(benchmark::State& state, bool shared) {
  auto model = model_10m();
  torch::NoGradGuard no_grad;
  const int64_t P = 4, Lp = state.range(0), N = P * kG;
  const torch::Tensor ids = torch::randint(1, 4000, {P, Lp}, torch::kLong);
  const torch::Tensor mask = torch::ones({P, Lp}, torch::kLong);
  const torch::Tensor rows = torch::arange(P).repeat_interleave(kG);
  for (auto _ : state) {
    if (shared) {
      auto cache = model->make_cache(P, Lp + 1);
      model->forward(ids, mask, grpo::positions_from_mask(mask, Lp), cache.get());
      cache->select_rows(rows);
      benchmark::DoNotOptimize(cache->length());
    } else {
      auto cache = model->make_cache(N, Lp + 1);
      const torch::Tensor all_ids = ids.index_select(0, rows), all_mask = mask.index_select(0, rows);
      model->forward(all_ids, all_mask, grpo::positions_from_mask(all_mask, Lp), cache.get());
      benchmark::DoNotOptimize(cache->length());
    }
  }
  state.SetItemsProcessed(state.iterations() * N * Lp);  // prompt tokens made available to the N rows
}

// Log-probs with gradient of G = 8 completions of 200 tokens after one prompt
// of range(0) tokens, then the backward: the trainer's update on one group.
void BM_TrainLogprobs(benchmark::State& state, bool shared) {
  auto model = model_10m();
  const int64_t Lp = state.range(0), T = 200, N = kG;
  const torch::Tensor prompt = torch::randint(1, 4000, {1, Lp}, torch::kLong).expand({N, Lp}).contiguous();
  const torch::Tensor prompt_mask = torch::ones({N, Lp}, torch::kLong);
  const torch::Tensor completion = torch::randint(1, 4000, {N, T}, torch::kLong);
  const torch::Tensor completion_mask = torch::ones({N, T}, torch::kLong);
  grpo::Policy policy(model);
  grpo::LogprobOptions options;
  if (shared) options.prompt_groups = torch::zeros({N}, torch::kLong);
  for (auto _ : state) {
    model->zero_grad();
    const grpo::TokenLogprobs lp = policy.token_logprobs(prompt, prompt_mask, completion, completion_mask, options);
    lp.logprobs.sum().backward();
    benchmark::DoNotOptimize(lp.logprobs.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * N * T);  // completion tokens scored
}

// One token for each of 16 rows from a distribution over range(0) tokens:
// grpo::draw_from_probs (one uniform number per row, the inverse
// distribution function) against torch::multinomial (one exponential number
// per token), the draw before it.
void BM_Draw(benchmark::State& state, bool inverse_cdf) {
  const int64_t B = 16, V = state.range(0);
  torch::manual_seed(0);
  const torch::Tensor probs = torch::randn({B, V}).softmax(-1);
  at::Generator generator = at::globalContext().defaultGenerator(torch::kCPU).clone();
  for (auto _ : state) {
    const torch::Tensor tokens =
        inverse_cdf ? grpo::draw_from_probs(probs, torch::rand({B}, generator, torch::kFloat64))
                    : torch::multinomial(probs, 1, /*replacement=*/false, generator).squeeze(-1);
    benchmark::DoNotOptimize(tokens.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * B);  // tokens drawn
}

}  // namespace

BENCHMARK_CAPTURE(BM_TrainLogprobs, shared_prompt, true)->Arg(150)->Arg(1500)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainLogprobs, every_row, false)->Arg(150)->Arg(1500)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Decode, kv_cache, true)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Decode, recompute, false)
    ->Arg(128)
    ->Arg(256)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Prefill, shared_prefix, true)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Prefill, every_row, false)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_CAPTURE(BM_Draw, inverse_cdf, true)->Arg(512)->Arg(8192)->Arg(151936)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Draw, multinomial, false)->Arg(512)->Arg(8192)->Arg(151936)->Unit(benchmark::kMicrosecond)->UseRealTime();

BENCHMARK_MAIN();
