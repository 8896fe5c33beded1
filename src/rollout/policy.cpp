// Policy: batched sampling with a shared-prefix KV cache, and the
// log-probabilities of given completions through the token_logprobs op.
// Shapes: P prompts, G samples each, N = P·G, Lp prompt and T completion
// positions, H hidden, V vocabulary, M completion tokens on the mask.
#include "grpo/rollout/policy.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <tuple>

#include "grpo/error.h"
#include "grpo/ops/token_logprobs.h"
#include "ops/common.h"

namespace grpo {

namespace {

// Checks the prompts and left-pads them: (P, Lp) ids and mask.
std::pair<torch::Tensor, torch::Tensor> pad_prompts(const std::vector<std::vector<int64_t>>& prompts,
                                                    const GenerationConfig& config, CausalLM& model) {
  if (prompts.empty()) throw Error("Policy::generate: no prompts");
  size_t longest = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    if (prompts[p].empty()) throw Error("Policy::generate: prompt " + std::to_string(p) + " is empty");
    for (int64_t id : prompts[p]) {
      if (id < 0 || id >= model.vocab_size()) {
        throw Error("Policy::generate: prompt " + std::to_string(p) + " has token id " + std::to_string(id) +
                    ", outside the vocabulary [0, " + std::to_string(model.vocab_size()) + ")");
      }
    }
    longest = std::max(longest, prompts[p].size());
  }
  const int64_t Lp = static_cast<int64_t>(longest);
  if (Lp + config.max_new_tokens > model.max_positions()) {
    throw Error("Policy::generate: the longest prompt has " + std::to_string(Lp) + " tokens; with max_new_tokens " +
                std::to_string(config.max_new_tokens) + " that exceeds the model's " +
                std::to_string(model.max_positions()) + " positions");
  }
  const int64_t P = static_cast<int64_t>(prompts.size());
  torch::Tensor ids = torch::full({P, Lp}, config.pad_id, torch::kLong);
  torch::Tensor mask = torch::zeros({P, Lp}, torch::kLong);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  for (int64_t p = 0; p < P; ++p) {
    const int64_t offset = Lp - static_cast<int64_t>(prompts[p].size());
    for (size_t t = 0; t < prompts[p].size(); ++t) {
      ids_a[p][offset + static_cast<int64_t>(t)] = prompts[p][t];
      mask_a[p][offset + static_cast<int64_t>(t)] = 1;
    }
  }
  return {ids, mask};
}

// The logits (B, V) of the token after the last of `ids`: the output
// projection of the last position only (no (B, T, V) tensor for a prompt),
// each row as the token_logprobs op's chunks compute it.
torch::Tensor next_logits(CausalLM& model, const torch::Tensor& ids, const torch::Tensor& attention,
                          const torch::Tensor& positions, KVCache* cache) {
  const torch::Tensor last = model.hidden_states(ids, attention, positions, cache).select(1, -1);  // (B, H)
  return ops::row_invariant_linear(last, model.output_weight());
}

torch::Device device_of(CausalLM& model) {
  const auto params = model.module().parameters();
  return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

}  // namespace

Policy::Policy(std::shared_ptr<CausalLM> model) : model_(std::move(model)) {
  if (!model_) throw Error("Policy: the model is null");
}

Generation Policy::generate(const std::vector<std::vector<int64_t>>& prompts, const GenerationConfig& config,
                            int64_t num_samples) {
  config.validate();
  if (num_samples < 1) throw Error("Policy::generate: num_samples (G) must be >= 1, got " + std::to_string(num_samples));
  torch::NoGradGuard no_grad;
  CausalLM& model = *model_;
  const torch::Device device = device_of(model);
  auto [prompt_ids, prompt_mask] = pad_prompts(prompts, config, model);
  const int64_t P = prompt_ids.size(0), Lp = prompt_ids.size(1), G = num_samples, N = P * G;
  const int64_t T = config.max_new_tokens;
  prompt_ids = prompt_ids.to(device);
  prompt_mask = prompt_mask.to(device);
  const torch::Tensor rows = torch::arange(P, torch::TensorOptions().dtype(torch::kLong).device(device))
                                 .repeat_interleave(G);  // (N) prompt of each row

  at::Generator generator = at::globalContext().defaultGenerator(device).clone();
  generator.set_current_seed(config.seed);
  std::vector<at::Generator> prompt_generators;  // one per prompt when config.prompt_seeds is given
  if (!config.prompt_seeds.empty()) {
    if (static_cast<int64_t>(config.prompt_seeds.size()) != P) {
      throw Error("Policy::generate: " + std::to_string(config.prompt_seeds.size()) + " prompt_seeds for " +
                  std::to_string(P) + " prompts");
    }
    for (uint64_t seed : config.prompt_seeds) {
      prompt_generators.push_back(at::globalContext().defaultGenerator(device).clone());
      prompt_generators.back().set_current_seed(seed);
    }
  }

  std::unique_ptr<KVCache> cache = config.use_cache ? model.make_cache(P, Lp + T) : nullptr;
  torch::Tensor logits;  // (N, V) the next token's logits
  if (cache) {
    // Prefill each prompt once, then give its cache to its G rows.
    logits = next_logits(model, prompt_ids, prompt_mask, positions_from_mask(prompt_mask, Lp), cache.get());
    cache->select_rows(rows);
    logits = logits.index_select(0, rows);
  }
  const torch::Tensor row_prompt_ids = prompt_ids.index_select(0, rows);
  torch::Tensor attention = prompt_mask.index_select(0, rows);  // (N, Lp + t)
  const auto long_options = torch::TensorOptions().dtype(torch::kLong).device(device);
  torch::Tensor completion = torch::full({N, T}, config.pad_id, long_options);
  torch::Tensor done = torch::zeros({N}, torch::TensorOptions().dtype(torch::kBool).device(device));
  const auto float_options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  torch::Tensor logprobs = torch::zeros({N, T}, float_options);
  torch::Tensor sampling_logprobs = torch::zeros({N, T}, float_options);
  // NB: greedy decoding has no temperature; its tokens are scored at 1.
  const double score_temperature = config.temperature > 0 ? config.temperature : 1.0;
  torch::Tensor eos = torch::tensor(config.eos_ids, torch::kLong).to(device);
  int64_t produced = 0;
  // The decode batch: rows leave it when they finish (cache path), in_batch of
  // the N remain; `active` lists them and slot_of[row] is a row's place in it.
  int64_t in_batch = N;
  torch::Tensor active;
  torch::Tensor slot_of = torch::arange(N, long_options);
  for (int64_t t = 0; t < T; ++t) {
    if (!cache) {
      const torch::Tensor ids = torch::cat({row_prompt_ids, completion.narrow(1, 0, t)}, 1);
      logits = next_logits(model, ids, attention, positions_from_mask(attention, ids.size(1)), nullptr);
    }
    torch::Tensor drawn_logprobs;
    torch::Tensor next = prompt_generators.empty()
                             ? sample_next_token(logits, config, generator, &drawn_logprobs)
                             : sample_next_token(logits, config, prompt_generators, G, &drawn_logprobs);
    next = next.masked_fill(done, config.pad_id);
    completion.select(1, t).copy_(next);
    logprobs.select(1, t).copy_(tempered_logprobs(logits, next, score_temperature));
    sampling_logprobs.select(1, t).copy_(drawn_logprobs);
    produced = t + 1;
    if (eos.numel() > 0) done = done | torch::isin(next, eos);
    attention = torch::cat({attention, torch::ones({N, 1}, long_options)}, 1);
    // NB: the token's one read from the device: how many rows are still going.
    const int64_t going = eos.numel() > 0 ? done.logical_not().sum().item<int64_t>() : N;
    if (t + 1 == T || going == 0) break;
    if (cache) {
      if (going <= in_batch * 3 / 4) {
        // A quarter of the decode batch has finished: those rows leave it and the cache.
        active = done.logical_not().nonzero().squeeze(1);
        cache->select_rows(slot_of.index_select(0, active));
        in_batch = going;
        slot_of.index_put_({active}, torch::arange(in_batch, long_options));
      }
      if (in_batch == N) {
        logits = next_logits(model, next.unsqueeze(1), attention, positions_from_mask(attention, 1), cache.get());
      } else {
        // NB: the draw still sees all N rows (finished ones keep stale logits and are masked), so
        // each generator draws what it would have without the compaction.
        const torch::Tensor rows_attention = attention.index_select(0, active);
        logits.index_copy_(0, active, next_logits(model, next.index_select(0, active).unsqueeze(1), rows_attention,
                                                  positions_from_mask(rows_attention, 1), cache.get()));
      }
    }
  }

  // The mask keeps every token up to and including the first EOS.
  const torch::Tensor is_eos = eos.numel() > 0 ? torch::isin(completion, eos).to(torch::kLong)
                                               : torch::zeros({N, T}, long_options);
  const torch::Tensor eos_before = is_eos.cumsum(1) - is_eos;  // EOS tokens strictly before t
  torch::Tensor completion_mask = (eos_before == 0).to(torch::kLong);
  if (produced < T) completion_mask.narrow(1, produced, T - produced).zero_();
  Generation out;
  out.prompt_ids = row_prompt_ids;
  out.prompt_mask = prompt_mask.index_select(0, rows);
  out.completion_ids = completion;
  out.completion_mask = completion_mask;
  out.truncated = is_eos.sum(1) == 0;
  const torch::Tensor kept = completion_mask.to(torch::kBool);
  out.logprobs = logprobs.masked_fill(kept.logical_not(), 0);
  out.sampling_logprobs = sampling_logprobs.masked_fill(kept.logical_not(), 0);
  return out;
}

// ---------------------------------------------------------------- log-probs

namespace {

void check_rollout_shapes(const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                          const torch::Tensor& completion_ids, const torch::Tensor& completion_mask) {
  auto fail = [](const std::string& what) { throw Error("token_logprobs: " + what); };
  if (prompt_ids.dim() != 2) fail("prompt_ids must be (N, Lp), got " + c10::str(prompt_ids.sizes()));
  if (completion_ids.dim() != 2 || completion_ids.size(0) != prompt_ids.size(0)) {
    fail("completion_ids must be (N, T) with N = " + std::to_string(prompt_ids.size(0)) + ", got " +
         c10::str(completion_ids.sizes()));
  }
  if (prompt_mask.sizes() != prompt_ids.sizes()) {
    fail("prompt_mask must have the shape of prompt_ids " + c10::str(prompt_ids.sizes()) + ", got " +
         c10::str(prompt_mask.sizes()));
  }
  if (completion_mask.sizes() != completion_ids.sizes()) {
    fail("completion_mask must have the shape of completion_ids " + c10::str(completion_ids.sizes()) + ", got " +
         c10::str(completion_mask.sizes()));
  }
  if (prompt_ids.size(1) < 1) fail("the prompts are empty (Lp = 0)");
}

// The final hidden states (N, T, H) at the positions that predict each
// completion token, each group's prompt run once: the prompt's last state
// predicts token 0, completion position t token t + 1. Null when no two rows
// share a prompt or the model has no training cache.
std::optional<torch::Tensor> shared_prompt_states(CausalLM& model, const torch::Tensor& ids,
                                                  const torch::Tensor& attention, const torch::Tensor& groups,
                                                  int64_t Lp, int64_t T) {
  const int64_t N = ids.size(0);
  const auto [labels, inverse] = at::_unique(groups.to(ids.device(), torch::kLong), /*sorted=*/true,
                                             /*return_inverse=*/true);
  const int64_t U = labels.size(0);
  if (U == N) return std::nullopt;
  std::unique_ptr<KVCache> cache = model.make_training_cache(U, Lp + T);
  if (!cache) return std::nullopt;
  // The first row of each group stands for it.
  const torch::Tensor first = torch::full({U}, N, inverse.options())
                                  .scatter_reduce(0, inverse, torch::arange(N, inverse.options()), "amin");
  const torch::Tensor prompt_ids = ids.narrow(1, 0, Lp), prompt_mask = attention.narrow(1, 0, Lp);
  const torch::Tensor group_ids = prompt_ids.index_select(0, first), group_mask = prompt_mask.index_select(0, first);
  if (!torch::equal(group_ids.index_select(0, inverse), prompt_ids) ||
      !torch::equal(group_mask.index_select(0, inverse), prompt_mask)) {
    throw Error("token_logprobs: prompt_groups puts rows with different prompts in one group");
  }
  const torch::Tensor prompt_hidden =
      model.hidden_states(group_ids, group_mask, positions_from_mask(group_mask, Lp), cache.get());  // (U, Lp, H)
  cache->select_rows(inverse);
  const torch::Tensor completion_hidden = model.hidden_states(
      ids.narrow(1, Lp, T), attention, positions_from_mask(attention, T), cache.get());  // (N, T, H)
  const torch::Tensor last_prompt = prompt_hidden.select(1, Lp - 1).index_select(0, inverse).unsqueeze(1);
  return torch::cat({last_prompt, completion_hidden.narrow(1, 0, T - 1)}, 1);
}

}  // namespace

CompletionStates completion_states(CausalLM& model, const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                                   const torch::Tensor& completion_ids, const torch::Tensor& completion_mask,
                                   const torch::Tensor& prompt_groups) {
  check_rollout_shapes(prompt_ids, prompt_mask, completion_ids, completion_mask);
  const int64_t Lp = prompt_ids.size(1), T = completion_ids.size(1);
  if (prompt_groups.defined() && (prompt_groups.dim() != 1 || prompt_groups.size(0) != prompt_ids.size(0))) {
    throw Error("token_logprobs: prompt_groups must be (N) = (" + std::to_string(prompt_ids.size(0)) + "), got " +
                c10::str(prompt_groups.sizes()));
  }
  // Inputs may live elsewhere (a RolloutBatch is on the CPU); the result is on the model's device.
  const torch::Device device = device_of(model);
  const torch::Tensor ids = torch::cat({prompt_ids, completion_ids}, 1).to(device, torch::kLong);
  // NB: completion positions after the stop attend normally; only earlier positions matter for kept tokens.
  const torch::Tensor attention =
      torch::cat({prompt_mask.to(torch::kLong), torch::ones_like(completion_ids, torch::kLong)}, 1).to(device);
  CompletionStates out;
  out.kept = completion_mask.to(device).reshape({-1}).nonzero().squeeze(1);  // (M) flat indices into (N, T)
  out.targets = ids.narrow(1, Lp, T).reshape({-1}).index_select(0, out.kept);
  if (prompt_groups.defined() && ids.size(0) > 0) {
    if (const auto states = shared_prompt_states(model, ids, attention, prompt_groups, Lp, T)) {
      out.hidden = states->reshape({-1, states->size(-1)}).index_select(0, out.kept);  // (M, H)
      return out;
    }
  }
  const torch::Tensor hidden = model.hidden_states(ids, attention, positions_from_mask(attention, Lp + T), nullptr);
  const int64_t H = hidden.size(-1);
  // Position Lp - 1 + t predicts completion token t.
  const torch::Tensor rows = out.kept.div(T, "floor"), cols = out.kept.remainder(T);
  const torch::Tensor flat_positions = rows * (Lp + T) + (Lp - 1) + cols;
  out.hidden = hidden.reshape({-1, H}).index_select(0, flat_positions);  // (M, H)
  return out;
}

TokenLogprobs token_logprobs(CausalLM& model, const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                             const torch::Tensor& completion_ids, const torch::Tensor& completion_mask,
                             const LogprobOptions& options) {
  if (!(options.temperature > 0)) {
    throw Error("token_logprobs: temperature must be > 0, got " + c10::str(options.temperature) +
                " (greedy sampling has no log-probs; score with temperature 1)");
  }
  if (options.chunk_tokens < 1) throw Error("token_logprobs: chunk_tokens must be >= 1");
  const CompletionStates states =
      completion_states(model, prompt_ids, prompt_mask, completion_ids, completion_mask, options.prompt_groups);
  const int64_t N = completion_ids.size(0), T = completion_ids.size(1);
  const torch::Tensor &h = states.hidden, &kept = states.kept;
  const torch::Tensor weight = model.output_weight();
  torch::Tensor kept_logprobs, kept_entropy;
  if (options.entropy) {
    // NB: one pass: the entropy comes from the logits the log-probs need anyway.
    std::tie(kept_logprobs, kept_entropy) =
        grpo::token_logprobs_and_entropy(h, weight, states.targets, options.temperature, options.chunk_tokens);
  } else {
    kept_logprobs = grpo::token_logprobs(h, weight, states.targets, options.temperature, options.chunk_tokens);
  }
  TokenLogprobs out;
  out.logprobs = torch::zeros({N * T}, kept_logprobs.options()).index_put({kept}, kept_logprobs).view({N, T});
  if (options.entropy) {
    torch::NoGradGuard no_grad;
    out.entropy = torch::zeros({N * T}, kept_logprobs.options()).index_put_({kept}, kept_entropy).view({N, T});
  }
  return out;
}

TokenLogprobs Policy::token_logprobs(const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                                     const torch::Tensor& completion_ids, const torch::Tensor& completion_mask,
                                     const LogprobOptions& options) {
  return grpo::token_logprobs(*model_, prompt_ids, prompt_mask, completion_ids, completion_mask, options);
}

}  // namespace grpo
