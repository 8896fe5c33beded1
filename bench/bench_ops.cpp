// Speed of the grpo ops against the plain LibTorch composite a trainer would
// otherwise write (TRL's GRPO loss and advantage code), on the CPU and, when
// LibTorch sees one, on CUDA. Figures go to docs/BENCHMARKS.md. Shapes: N
// sequences, T completion tokens, G completions per group.
//
// Byte counts (bytes_per_second) are the traffic the fused loss cannot avoid:
// logp, old_logp, ref_logp and mask read once, dloss/dlogp written once. Every
// loss benchmark of a shape and dtype reports the same count, so its
// bytes_per_second is an effective bandwidth comparable with `copy`, which
// reads and writes that many bytes in total.
#include <benchmark/benchmark.h>
#include <grpo/ops/group_advantages.h>
#include <grpo/ops/grpo_loss.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr double kEpsilon = 0.2;  // clip range, both sides
constexpr double kBeta = 0.04;    // KL weight
constexpr double kAdvantageEps = 1e-4;
// On CUDA one benchmark iteration runs the body this many times before one
// synchronize, so the figure is the time per call with launches pipelined
// as in a training step, not one call's latency plus a sync.
constexpr int kCudaRepeat = 10;

const char* device_name(const torch::Device& device) { return device.is_cuda() ? "cuda" : "cpu"; }
const char* dtype_name(torch::ScalarType dtype) { return dtype == torch::kBFloat16 ? "bf16" : "f32"; }

// ---------------------------------------------------------------- timing

// Runs `body` once untimed, then once per benchmark iteration. On CUDA each
// iteration is timed by hand: kCudaRepeat calls, then torch::cuda::synchronize.
void run_timed(benchmark::State& state, const torch::Device& device, const std::function<void()>& body) {
  body();
  if (!device.is_cuda()) {
    for (auto _ : state) body();
    return;
  }
  torch::cuda::synchronize();
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < kCudaRepeat; ++r) body();
    torch::cuda::synchronize();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    state.SetIterationTime(elapsed.count() / kCudaRepeat);
  }
}

// ---------------------------------------------------------------- the loss

struct LossInputs {
  torch::Tensor logp;        // (N, T) dtype, requires grad
  torch::Tensor old_logp;    // (N, T) dtype
  torch::Tensor ref_logp;    // (N, T) dtype
  torch::Tensor advantages;  // (N) float32
  torch::Tensor mask;        // (N, T) float32, 1 = completion token; each row ends in 0..20% padding
};

// Log-probs in [-4, 0) with old and ref within a few tenths (so some ratios are
// clipped), made on the CPU from a fixed seed and then moved.
LossInputs make_loss_inputs(int64_t N, int64_t T, torch::ScalarType dtype, const torch::Device& device) {
  torch::manual_seed(0);
  const torch::Tensor logp = -4 * torch::rand({N, T}) - 1e-3;
  const torch::Tensor old_logp = logp + 0.1 * torch::randn({N, T});
  const torch::Tensor ref_logp = logp + 0.1 * torch::randn({N, T});
  const torch::Tensor lengths = T - torch::randint(0, T / 5 + 1, {N}, torch::kLong);
  const torch::Tensor mask = (torch::arange(T).unsqueeze(0) < lengths.unsqueeze(1)).to(torch::kFloat32);
  LossInputs in;
  in.logp = logp.to(device, dtype).requires_grad_(true);
  in.old_logp = old_logp.to(device, dtype);
  in.ref_logp = ref_logp.to(device, dtype);
  in.advantages = torch::randn({N}).to(device);
  in.mask = mask.to(device);
  return in;
}

// What the fused op must read and write at least (see the top of the file).
int64_t loss_bytes(int64_t N, int64_t T, torch::ScalarType dtype) {
  const int64_t logp_bytes = static_cast<int64_t>(torch::elementSize(dtype));
  return N * T * (3 * logp_bytes + 4 /* float mask */ + logp_bytes /* dloss/dlogp */);
}

struct CompositeLoss {
  torch::Tensor loss;  // ()
  torch::Tensor kl_mean, clip_low_frac, clip_high_frac, clip_region_frac;  // () statistics over masked tokens
};

// The loss written the obvious way, as TRL's GRPOTrainer does, with the
// statistics it logs (left on the device, as the fused op leaves its own).
CompositeLoss composite_grpo_loss(const LossInputs& in) {
  const torch::Tensor adv = in.advantages.unsqueeze(1);  // (N, 1)
  const torch::Tensor ratio = torch::exp(in.logp - in.old_logp);
  const torch::Tensor clipped_ratio = torch::clamp(ratio, 1 - kEpsilon, 1 + kEpsilon);
  const torch::Tensor objective = torch::min(ratio * adv, clipped_ratio * adv);
  const torch::Tensor x = in.ref_logp - in.logp;
  const torch::Tensor kl = torch::exp(x) - x - 1;
  const torch::Tensor per_token = -objective + kBeta * kl;
  CompositeLoss out;
  out.loss = ((per_token * in.mask).sum(-1) / in.mask.sum(-1).clamp_min(1)).mean();

  const torch::NoGradGuard no_grad;
  const torch::Tensor tokens = in.mask.sum().clamp_min(1);
  auto masked_mean = [&](const torch::Tensor& t) { return (t * in.mask).sum() / tokens; };
  const torch::Tensor low = (ratio < 1 - kEpsilon) & (adv < 0);
  const torch::Tensor high = (ratio > 1 + kEpsilon) & (adv > 0);
  out.kl_mean = masked_mean(kl);
  out.clip_low_frac = masked_mean(low);
  out.clip_high_frac = masked_mean(high);
  out.clip_region_frac = masked_mean(low | high);
  return out;
}

grpo::GrpoLossOptions fused_options(bool check_inputs) {
  grpo::GrpoLossOptions o;
  o.epsilon_low = kEpsilon;
  o.epsilon_high = kEpsilon;
  o.beta = kBeta;
  o.loss_type = grpo::LossType::GRPO;
  o.check_inputs = check_inputs;
  return o;
}

enum class LossImpl { Fused, FusedNoCheck, Composite };
enum class Pass { ForwardBackward, Forward };

torch::Tensor loss_forward(const LossInputs& in, LossImpl impl) {
  if (impl == LossImpl::Composite) return composite_grpo_loss(in).loss;
  const grpo::GrpoLossResult r = grpo::grpo_loss(in.logp, in.old_logp, in.ref_logp, in.advantages, in.mask,
                                                 fused_options(impl == LossImpl::Fused));
  return r.loss;
}

void bm_loss(benchmark::State& state, LossImpl impl, Pass pass, int64_t N, int64_t T, torch::ScalarType dtype,
             torch::Device device) {
  LossInputs in = make_loss_inputs(N, T, dtype, device);
  std::function<void()> body = [&] {
    torch::Tensor loss = loss_forward(in, impl);
    if (pass == Pass::ForwardBackward) {
      loss.backward();
      benchmark::DoNotOptimize(in.logp.grad().data_ptr());
      in.logp.mutable_grad() = torch::Tensor();  // a fresh gradient each time, not an accumulation
    }
    benchmark::DoNotOptimize(loss.data_ptr());
  };
  try {
    run_timed(state, device, body);
  } catch (const c10::Error& e) {
    state.SkipWithError(e.what_without_backtrace());
    return;
  }
  state.SetItemsProcessed(state.iterations() * N * T);
  state.SetBytesProcessed(state.iterations() * loss_bytes(N, T, dtype));
}

// A copy that reads and writes, in total, the bytes a loss call of this shape must move.
void bm_copy(benchmark::State& state, int64_t bytes, torch::Device device) {
  const auto options = torch::TensorOptions().dtype(torch::kUInt8).device(device);
  const torch::Tensor src = torch::ones({bytes / 2}, options);
  torch::Tensor dst = torch::empty({bytes / 2}, options);
  run_timed(state, device, [&] { dst.copy_(src); });
  state.SetBytesProcessed(state.iterations() * 2 * (bytes / 2));
}

// ---------------------------------------------------------------- advantages

// TRL's advantage code: per group of G, (r - mean) / (std + eps).
torch::Tensor composite_group_advantages(const torch::Tensor& rewards, int64_t G) {
  const torch::Tensor grouped = rewards.view({-1, G});
  const torch::Tensor mean = grouped.mean(1, /*keepdim=*/true);
  const torch::Tensor stdev = grouped.std(torch::IntArrayRef{1}, /*unbiased=*/true, /*keepdim=*/true);
  return ((grouped - mean) / (stdev + kAdvantageEps)).view({-1});
}

void bm_advantages(benchmark::State& state, bool fused, int64_t N, int64_t G, torch::Device device) {
  torch::manual_seed(0);
  const torch::Tensor rewards = torch::randn({N}).to(device);
  grpo::GroupAdvantageOptions options;
  options.eps = kAdvantageEps;
  run_timed(state, device, [&] {
    const torch::Tensor a =
        fused ? grpo::group_advantages(rewards, G, options).advantages : composite_group_advantages(rewards, G);
    benchmark::DoNotOptimize(a.data_ptr());
  });
  state.SetItemsProcessed(state.iterations() * N);
}

// ---------------------------------------------------------------- registration

// The fused op and the composite must compute the same loss, or the race is meaningless.
bool same_loss(const torch::Device& device) {
  const LossInputs in = make_loss_inputs(64, 1024, torch::kFloat32, device);
  const double fused = loss_forward(in, LossImpl::Fused).item<double>();
  const double composite = loss_forward(in, LossImpl::Composite).item<double>();
  if (std::abs(fused - composite) <= 1e-5 * std::abs(composite) + 1e-6) return true;
  std::fprintf(stderr, "bench_ops: on %s the fused loss %.9g differs from the composite %.9g\n", device_name(device),
               fused, composite);
  return false;
}

void register_all(const torch::Device& device) {
  const std::string dev = device_name(device);
  auto finish = [&](benchmark::internal::Benchmark* b) {
    b->Unit(benchmark::kMicrosecond);
    // With --benchmark_repetitions: the fastest repetition, the least disturbed by other load.
    b->ComputeStatistics("min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); });
    if (device.is_cuda()) b->UseManualTime();
  };
  struct Shape {
    int64_t N, T;
    torch::ScalarType dtype;
  };
  const Shape shapes[] = {{64, 1024, torch::kFloat32}, {256, 4096, torch::kFloat32}, {256, 4096, torch::kBFloat16}};
  const std::pair<LossImpl, const char*> impls[] = {
      {LossImpl::Fused, "fused"}, {LossImpl::FusedNoCheck, "fused_nocheck"}, {LossImpl::Composite, "composite"}};
  const std::pair<Pass, const char*> passes[] = {{Pass::ForwardBackward, "fwd_bwd"}, {Pass::Forward, "fwd"}};
  for (const auto& [pass, pass_name] : passes) {
    for (const Shape& s : shapes) {
      const std::string shape = std::to_string(s.N) + "x" + std::to_string(s.T);
      for (const auto& [impl, impl_name] : impls) {
        const std::string name = "grpo_loss/" + std::string(pass_name) + "/" + impl_name + "/" + dev + "/" +
                                 dtype_name(s.dtype) + "/" + shape;
        finish(benchmark::RegisterBenchmark(name.c_str(), bm_loss, impl, pass, s.N, s.T, s.dtype, device));
      }
      if (pass == Pass::ForwardBackward) {
        const std::string name = "copy/" + dev + "/bytes_of_" + dtype_name(s.dtype) + "_" + shape;
        finish(benchmark::RegisterBenchmark(name.c_str(), bm_copy, loss_bytes(s.N, s.T, s.dtype), device));
      }
    }
  }
  for (const int64_t G : {8, 64}) {
    for (const bool fused : {true, false}) {
      const std::string name = "group_advantages/" + std::string(fused ? "fused" : "composite") + "/" + dev +
                               "/N4096_G" + std::to_string(G);
      finish(benchmark::RegisterBenchmark(name.c_str(), bm_advantages, fused, int64_t{4096}, G, device));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("libtorch", TORCH_VERSION);
  benchmark::AddCustomContext("torch_threads", std::to_string(torch::get_num_threads()));
  const bool cuda = torch::cuda::is_available();
  benchmark::AddCustomContext("cuda", cuda ? "available" : "not available (CUDA benchmarks not registered)");

  if (!same_loss(torch::kCPU)) return 1;
  register_all(torch::kCPU);
  if (cuda) {
    if (!same_loss(torch::kCUDA)) return 1;
    register_all(torch::kCUDA);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
