// Distributed: torchrun's environment, the c10d TCPStore rendezvous, a Gloo or
// NCCL process group from LibTorch, and the collectives the trainers use.
// NB: this is the one translation unit that includes c10d's backend headers,
// under LibTorch's own USE_C10D_GLOO / USE_C10D_NCCL (its CMake target sets
// them as LibTorch was built), and GRPO_WITH_NCCL where NCCL's header was
// found. ProcessGroupGloo.hpp includes Gloo's headers (Debian's libgloo-dev);
// Gloo's code is LibTorch's own.
#include "grpo/train/distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef GRPO_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "grpo/log.h"

namespace grpo {

namespace {

using std::chrono::milliseconds;

const std::string kFailedKey = "grpo/failed";   // "rank R: message" of the first rank that failed
const std::string kFailCount = "grpo/failures";  // ranks that reported; the first one writes kFailedKey
const std::string kSeenCount = "grpo/seen";      // ranks that read kFailedKey

milliseconds to_ms(double seconds) { return milliseconds(static_cast<int64_t>(seconds * 1000.0)); }

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// An integer environment variable in [lo, hi]; grpo::Error naming it otherwise.
int env_int(const char* name, int lo, int hi) {
  const std::string s = env_or(name, "");
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size() || v < lo || v > hi) {
    throw Error(std::string("distributed: environment variable ") + name + " must be an integer in [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "], got \"" + s + "\"");
  }
  return static_cast<int>(v);
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

std::string address(const ProcessPlacement& p) { return p.master_addr + ":" + std::to_string(p.master_port); }

}  // namespace

ProcessPlacement ProcessPlacement::from_env() {
  ProcessPlacement p;
  const bool has_world = std::getenv("WORLD_SIZE") != nullptr, has_rank = std::getenv("RANK") != nullptr;
  if (!has_world && !has_rank) return p;
  if (has_world != has_rank) {
    throw Error(std::string("distributed: RANK and WORLD_SIZE must be set together (as torchrun does); only ") +
                (has_world ? "WORLD_SIZE" : "RANK") + " is set");
  }
  p.world_size = env_int("WORLD_SIZE", 1, 1 << 20);
  p.rank = env_int("RANK", 0, p.world_size - 1);
  p.local_rank = std::getenv("LOCAL_RANK") ? env_int("LOCAL_RANK", 0, p.world_size - 1) : p.rank;
  if (p.world_size == 1) return p;
  p.master_addr = env_or("MASTER_ADDR", "");
  if (p.master_addr.empty()) throw Error("distributed: MASTER_ADDR must be set in a job of several processes");
  if (!std::getenv("MASTER_PORT")) throw Error("distributed: MASTER_PORT must be set in a job of several processes");
  p.master_port = env_int("MASTER_PORT", 1, 65535);
  p.agent_store = env_or("TORCHELASTIC_USE_AGENT_STORE", "") == "True";
  if (std::getenv("TORCHELASTIC_RESTART_COUNT")) p.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0, 1 << 20);
  return p;
}

struct Distributed::Impl {
  c10::intrusive_ptr<c10d::Store> store;     // the job's keys, under a prefix of this attempt
  c10::intrusive_ptr<c10d::Backend> group;   // Gloo or NCCL
  torch::Device device{torch::kCPU};         // where NCCL's tensors must be
  bool nccl = false;
  bool peer_failed = false;                  // a DistributedError named another rank's failure
};

Distributed::Distributed() = default;

Distributed::Distributed(const ProcessPlacement& p, const DistributedConfig& config, const torch::Device& device)
    : placement_(p), config_(config) {
  if (!active()) return;
  impl_ = std::make_unique<Impl>();
  const milliseconds timeout = to_ms(config.timeout_seconds);
  const std::string backend = config.backend == "auto" ? (device.is_cuda() ? "nccl" : "gloo") : config.backend;
  const std::string where = "distributed: rank " + std::to_string(p.rank) + " of " + std::to_string(p.world_size);
  c10::intrusive_ptr<c10d::Store> tcp;
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(p.master_port);
    o.isServer = p.rank == 0 && !p.agent_store;
    o.numWorkers = static_cast<size_t>(p.world_size);
    o.waitWorkers = true;  // NB: every rank counts itself in; the host waits for all of them
    o.timeout = timeout;
    o.multiTenant = true;
    tcp = c10::make_intrusive<c10d::TCPStore>(p.master_addr, o);
  } catch (const std::exception& e) {
    throw DistributedError(where + ": the rendezvous at " + address(p) + " failed within " +
                           log::fixed(config.timeout_seconds, 0) + " s (distributed.timeout_seconds): " + e.what() +
                           " (was every rank started, and can this machine reach " + address(p) + "?)");
  }
  impl_->store = c10::make_intrusive<c10d::PrefixStore>("grpo/attempt_" + std::to_string(p.restart_count), tcp);
  try {
    if (backend == "gloo") {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      // NB: on one machine the loopback device always works; across machines
      // Gloo binds as torch.distributed does (GLOO_SOCKET_IFNAME, else the host name's address).
      const std::string ifname = env_or("GLOO_SOCKET_IFNAME", "");
      if (!ifname.empty()) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (is_loopback(p.master_addr)) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, p.rank, p.world_size, options);
    } else {
#ifdef GRPO_WITH_NCCL
      if (!device.is_cuda()) throw Error("distributed.backend nccl: needs model.device cuda, got " + device.str());
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, p.rank, p.world_size, options);
      impl_->device = device;
      impl_->nccl = true;
#else
      throw Error("distributed.backend nccl: this build has no NCCL (LibTorch without CUDA, or nccl.h not found)");
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw DistributedError(where + ": the " + backend + " process group could not form through " + address(p) +
                           " within " + log::fixed(config.timeout_seconds, 0) + " s: " + e.what());
  }
  // NB: the store outlives a collective's failure on this side, so the first
  // barrier also proves every peer built its group.
  barrier("start-up");
}

Distributed::~Distributed() = default;

std::shared_ptr<Distributed> Distributed::from_env(const DistributedConfig& config, const std::string& model_device) {
  const ProcessPlacement p = ProcessPlacement::from_env();
  if (p.world_size == 1) return std::make_shared<Distributed>();
  torch::Device device(torch::kCPU);
  const std::string d = p.world_size > 1 && model_device == "cuda" ? "cuda:" + std::to_string(p.local_rank) : model_device;
  try {
    device = torch::Device(d);
  } catch (const c10::Error& e) {
    throw Error("model.device: \"" + model_device + "\" is not a device (" + e.what_without_backtrace() + ")");
  }
  return std::make_shared<Distributed>(p, config, device);
}

std::string Distributed::backend_name() const {
  if (!impl_) return "none";
  return impl_->nccl ? "nccl" : "gloo";
}

std::string Distributed::device_for(const std::string& model_device) const {
  if (active() && model_device == "cuda") return "cuda:" + std::to_string(local_rank());
  return model_device;
}

std::pair<int64_t, int64_t> Distributed::share(int64_t n) const {
  const int64_t K = world_size(), r = rank();
  const int64_t base = n / K, extra = n % K;
  const int64_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

void Distributed::fail(const std::string& what, const std::exception& e) const {
  std::string failed;
  // NB: a peer that failed writes its message before it exits, and this side
  // may notice the closed connection first: give the message a moment.
  for (int i = 0; i < 20 && failed.empty(); ++i) {
    try {
      if (impl_->store->check({kFailedKey})) {
        const std::vector<uint8_t> v = impl_->store->get(kFailedKey);
        failed.assign(v.begin(), v.end());
        impl_->store->add(kSeenCount, 1);
      }
    } catch (const std::exception&) {
      break;  // the store itself is gone: its host (rank 0, or torchrun's agent) ended
    }
    if (failed.empty()) std::this_thread::sleep_for(milliseconds(100));
  }
  const std::string where = "distributed: rank " + std::to_string(rank()) + " of " + std::to_string(world_size());
  if (!failed.empty()) {
    impl_->peer_failed = true;
    throw DistributedError(where + ": stopped in " + what + " because " + failed);
  }
  throw DistributedError(where + ": " + what + " failed (" + e.what() +
                         "); no rank reported an error: a peer died, hung longer than distributed.timeout_seconds = " +
                         log::fixed(config_.timeout_seconds, 0) + " s, or lost the network");
}

void Distributed::all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what) {
  if (!active() || tensors.empty()) return;
  try {
    std::vector<torch::Tensor> on_device;
    for (const torch::Tensor& t : tensors) {
      torch::Tensor x = impl_->nccl ? t.to(impl_->device) : t;
      on_device.push_back(x.is_contiguous() ? x : x.contiguous());
    }
    impl_->group->allreduce(on_device)->wait();
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (!on_device[i].is_same(tensors[i])) tensors[i].copy_(on_device[i]);
    }
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& e) {
    fail("the all-reduce of " + what, e);
  }
}

torch::Tensor Distributed::all_reduce_sum(torch::Tensor tensor, const std::string& what) {
  std::vector<torch::Tensor> v{tensor.clone()};
  all_reduce_sum(v, what);
  return v[0];
}

double Distributed::all_reduce_sum(double value, const std::string& what) {
  if (!active()) return value;
  return all_reduce_sum(torch::tensor({value}, torch::kFloat64), what).item<double>();
}

void Distributed::broadcast(std::vector<torch::Tensor>& tensors, const std::string& what) {
  if (!active() || tensors.empty()) return;
  try {
    // NB: c10d broadcasts one tensor per call on Gloo; the tensors go one by one.
    for (torch::Tensor& t : tensors) {
      std::vector<torch::Tensor> one{impl_->nccl ? t.to(impl_->device).contiguous() : t.contiguous()};
      impl_->group->broadcast(one)->wait();
      if (!one[0].is_same(t)) {
        torch::NoGradGuard no_grad;
        t.copy_(one[0]);
      }
    }
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& e) {
    fail("the broadcast of " + what, e);
  }
}

void Distributed::barrier(const std::string& what) {
  if (!active()) return;
  // NB: a barrier is an all-reduce of one number, so it fails and times out as every other collective does.
  std::vector<torch::Tensor> one{torch::ones({1}, torch::kFloat32)};
  all_reduce_sum(one, "the barrier at " + what);
}

struct Distributed::Pending::Impl {
  const Distributed* dist = nullptr;
  c10::intrusive_ptr<c10d::Work> work;
  std::string what;
};

Distributed::Pending::Pending() = default;
Distributed::Pending::~Pending() = default;
Distributed::Pending::Pending(Pending&&) noexcept = default;
Distributed::Pending& Distributed::Pending::operator=(Pending&&) noexcept = default;

void Distributed::Pending::wait() {
  if (!impl_ || !impl_->work) return;
  try {
    impl_->work->wait();
    impl_->work.reset();
  } catch (const std::exception& e) {
    impl_->work.reset();
    impl_->dist->fail(impl_->what, e);
  }
}

Distributed::Pending Distributed::start_all_reduce_sum(torch::Tensor tensor, const std::string& what) {
  Pending p;
  if (!active()) return p;
  TORCH_CHECK(tensor.is_contiguous(), "start_all_reduce_sum: the tensor must be contiguous");
  p.impl_ = std::make_unique<Pending::Impl>();
  p.impl_->dist = this;
  p.impl_->what = "the all-reduce of " + what;
  try {
    std::vector<torch::Tensor> one{std::move(tensor)};
    p.impl_->work = impl_->group->allreduce(one);
  } catch (const std::exception& e) {
    fail(p.impl_->what, e);
  }
  return p;
}

void Distributed::report_failure(const std::string& what) noexcept {
  if (!active() || !impl_ || impl_->peer_failed) return;
  try {
    if (impl_->store->add(kFailCount, 1) == 1) {
      const std::string msg = "rank " + std::to_string(rank()) + " failed: " + what;
      impl_->store->set(kFailedKey, std::vector<uint8_t>(msg.begin(), msg.end()));
    }
    // NB: closing this rank's connections ends the peers' collectives at once, rather than at their timeout.
    impl_->group.reset();
    // NB: when this process hosts the store, leaving ends it: wait (briefly) until the others have read the message.
    if (rank() == 0 && !placement_.agent_store) {
      for (int i = 0; i < 50; ++i) {
        if (impl_->store->add(kSeenCount, 0) >= world_size() - 1) break;
        std::this_thread::sleep_for(milliseconds(100));
      }
    }
  } catch (const std::exception&) {
    // The store is gone too: the others will report a lost peer.
  }
}

}  // namespace grpo
