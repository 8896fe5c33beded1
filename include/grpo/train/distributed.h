// Data parallel over PyTorch's own distributed engine: a c10d process group
// from LibTorch (Gloo on the CPU, NCCL on CUDA) met through a c10d TCPStore,
// in processes started by torchrun:
//   torchrun --no-python --nproc-per-node K [--nnodes M --rdzv-endpoint HOST:PORT] grpo train -c config.json
// Each process reads its place from torchrun's environment (RANK, WORLD_SIZE,
// LOCAL_RANK, MASTER_ADDR, MASTER_PORT); without it a process is a job of one
// and every collective is the identity. The trainers hold a Distributed and
// call its collectives at the same points on every rank.
//
// Failures: a collective that fails or outlasts distributed.timeout_seconds
// raises DistributedError on every rank that waits in it; a rank that failed
// first (report_failure) is named in that error, with its own message.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/error.h"

namespace grpo {

// Raised on a rank when a collective or the rendezvous fails: another rank
// failed or died, a peer never came, or the timeout ran out.
class DistributedError : public Error {
 public:
  using Error::Error;
};

// Where this process sits in the job, as torchrun's environment says.
struct ProcessPlacement {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;                 // the rank on this machine: its GPU is cuda:local_rank
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;           // TORCHELASTIC_USE_AGENT_STORE: torchrun's agent hosts the store
  int restart_count = 0;              // TORCHELASTIC_RESTART_COUNT: keys of an earlier attempt are not read

  // From the environment: a single process when WORLD_SIZE and RANK are both
  // unset; grpo::Error naming the variable when one is malformed, out of
  // range, or MASTER_ADDR / MASTER_PORT are missing in a job of several.
  static ProcessPlacement from_env();
};

class Distributed {
 public:
  // A job of one: rank 0 of 1, every collective the identity.
  Distributed();
  // Joins the job `p` describes: connects to the TCPStore at
  // master_addr:master_port (rank 0 hosts it unless torchrun's agent does),
  // then builds the process group of `config.backend` ("auto": NCCL when
  // `device` is CUDA, else Gloo). Waits at most config.timeout_seconds for
  // every peer; DistributedError naming the address otherwise.
  Distributed(const ProcessPlacement& p, const DistributedConfig& config, const torch::Device& device);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  // From the environment (ProcessPlacement::from_env): a job of one without
  // torchrun's variables. `model_device` is the config's model.device.
  static std::shared_ptr<Distributed> from_env(const DistributedConfig& config, const std::string& model_device);

  int rank() const { return placement_.rank; }
  int world_size() const { return placement_.world_size; }
  int local_rank() const { return placement_.local_rank; }
  bool is_main() const { return placement_.rank == 0; }  // rank 0 writes metrics, checkpoints and reports
  bool active() const { return placement_.world_size > 1; }
  std::string backend_name() const;   // "none", "gloo" or "nccl"
  const ProcessPlacement& placement() const { return placement_; }
  const DistributedConfig& config() const { return config_; }

  // The device a rank computes on: "cuda" becomes cuda:<local_rank> in a job
  // of several; anything else is returned as it is.
  std::string device_for(const std::string& model_device) const;

  // This rank's share [begin, end) of n items split over the ranks in order:
  // contiguous, the first n % K ranks one more.
  std::pair<int64_t, int64_t> share(int64_t n) const;

  // Sums over the ranks, in place. The tensors may be on any device; `what`
  // names the collective in errors.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what);
  torch::Tensor all_reduce_sum(torch::Tensor tensor, const std::string& what);  // the sum (a new tensor)
  double all_reduce_sum(double value, const std::string& what);
  // Rank 0's values into every rank's tensors, in place.
  void broadcast(std::vector<torch::Tensor>& tensors, const std::string& what);
  void barrier(const std::string& what);

  // A sum over the ranks started by start_all_reduce_sum and not yet waited
  // on. wait() (once) leaves the sum in the tensor, and raises as the blocking
  // collectives do. A default Pending (a job of one) waits for nothing.
  class Pending {
   public:
    Pending();
    ~Pending();
    Pending(Pending&&) noexcept;
    Pending& operator=(Pending&&) noexcept;
    void wait();

   private:
    friend class Distributed;
    struct Impl;
    std::unique_ptr<Impl> impl_;
  };
  // Starts summing `tensor` (contiguous; on the process group's device for
  // NCCL) over the ranks, in place. Every rank must start its sums in the
  // same order. The tensor must be left alone until wait().
  Pending start_all_reduce_sum(torch::Tensor tensor, const std::string& what);

  // Records that this rank failed with `what`, for the other ranks' errors to
  // name; the rank that hosts the store waits a moment for them to read it.
  // Does nothing in a job of one, or when this rank's failure was itself a
  // DistributedError caused by another rank.
  void report_failure(const std::string& what) noexcept;
  // Runs `body` and returns what it returns; an exception from it is first
  // reported (report_failure), so the other ranks name it, then propagates.
  template <class F>
  auto reporting_failures(F&& body) -> decltype(body()) {
    try {
      return body();
    } catch (const std::exception& e) {
      report_failure(e.what());
      throw;
    }
  }

 private:
  struct Impl;
  // Raises the DistributedError for a failed collective `what`.
  [[noreturn]] void fail(const std::string& what, const std::exception& e) const;

  ProcessPlacement placement_;
  DistributedConfig config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grpo
