// TransformerLM: a Llama / Qwen2 / Qwen3 / Mistral decoder computed as
// Hugging Face's implementation does (rotate-half RoPE with its scaling types,
// RMSNorm in at least float32, scaled-dot-product attention), its KV cache,
// and its config's JSON and Hugging Face forms.
// Shapes: B rows, T new positions, S cached, L = S + T, H hidden, I MLP width,
// V vocabulary, NH query heads, KV key/value heads, R = NH / KV, D head dim.
#include "grpo/models/transformer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "grpo/error.h"
#include "grpo/models/registry.h"
#include "models/exact_attention.h"
#include "models/transformer_fields.h"
#include "ops/common.h"

namespace grpo {

namespace {

std::string describe(const torch::Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  std::ostringstream os;
  os << t.sizes() << " " << t.scalar_type() << " on " << t.device();
  return os.str();
}

std::string number(double x) {
  std::ostringstream os;
  os.precision(17);
  os << x;
  return os.str();
}

// NB: the reductions that decide the result's accuracy (norms, rotary angles,
// attention scores) run in float32 for half types, as Hugging Face does, and in
// float64 for a float64 model rather than rounding it down.
torch::ScalarType compute_type(const torch::Tensor& x) {
  return x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

}  // namespace

// ---------------------------------------------------------------- config

int64_t TransformerConfig::kv_heads() const { return num_kv_heads == 0 ? num_heads : num_kv_heads; }

int64_t TransformerConfig::dim_per_head() const {
  if (head_dim != 0) return head_dim;
  return num_heads > 0 ? hidden_size / num_heads : 0;
}

void TransformerConfig::validate(const std::string& path) const {
  auto fail = [&path](const std::string& field, const std::string& expected, const std::string& got) {
    throw Error(path + "." + field + ": " + expected + ", got " + got);
  };
  auto positive = [&](const std::string& field, int64_t v) {
    if (v <= 0) fail(field, "must be positive", std::to_string(v));
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_layers (num_hidden_layers)", num_layers);
  positive("num_heads (num_attention_heads)", num_heads);
  if (num_kv_heads < 0)
    fail("num_kv_heads (num_key_value_heads)", "must be positive, or 0 for num_heads", std::to_string(num_kv_heads));
  if (num_heads % kv_heads() != 0)
    fail("num_kv_heads (num_key_value_heads)", "must divide num_heads = " + std::to_string(num_heads),
         std::to_string(kv_heads()));
  if (head_dim < 0) fail("head_dim", "must be positive, or 0 for hidden_size / num_heads", std::to_string(head_dim));
  if (head_dim == 0 && hidden_size % num_heads != 0)
    fail("hidden_size", "must be a multiple of num_heads = " + std::to_string(num_heads) + " when head_dim is 0",
         std::to_string(hidden_size));
  if (dim_per_head() % 2 != 0)
    fail("head_dim", "must be even (rotary embeddings turn pairs of dimensions)",
         std::to_string(dim_per_head()) + (head_dim == 0 ? " (hidden_size / num_heads)" : ""));
  if (!(rope_theta > 0.0) || !std::isfinite(rope_theta))
    fail("rope_theta", "must be positive and finite", number(rope_theta));
  if (!(rms_norm_eps > 0.0) || !std::isfinite(rms_norm_eps))
    fail("rms_norm_eps", "must be positive and finite", number(rms_norm_eps));
  positive("max_position_embeddings", max_position_embeddings);
  if (sliding_window < 0)
    fail("sliding_window", "must be positive, or 0 (null) for none", std::to_string(sliding_window));
  if (rope_scaling) {
    const RopeScaling& r = *rope_scaling;
    const std::string type = r.rope_type;
    if (type != "linear" && type != "dynamic" && type != "yarn" && type != "llama3")
      fail("rope_scaling.rope_type", "must be \"linear\", \"dynamic\", \"yarn\" or \"llama3\" (null rope_scaling for none)",
           "\"" + type + "\"");
    if (!r.factor && type != "yarn") fail("rope_scaling.factor", "is required for rope_type " + type, "none");
    if (r.factor && !(*r.factor >= 1.0 && std::isfinite(*r.factor)))
      fail("rope_scaling.factor", "must be finite and >= 1", number(*r.factor));
    if (r.original_max_position_embeddings < 0)
      fail("rope_scaling.original_max_position_embeddings", "must be positive, or 0 (null) for max_position_embeddings",
           std::to_string(r.original_max_position_embeddings));
    if (type == "llama3" && !(r.low_freq_factor > 0.0 && r.high_freq_factor > r.low_freq_factor &&
                              std::isfinite(r.high_freq_factor)))
      fail("rope_scaling.high_freq_factor", "must be finite and above low_freq_factor = " + number(r.low_freq_factor) +
           " > 0", number(r.high_freq_factor));
    for (const auto& [key, value] : {std::pair{"beta_fast", r.beta_fast}, std::pair{"beta_slow", r.beta_slow}})
      if (!(value >= 0.0) || !std::isfinite(value))
        fail(std::string("rope_scaling.") + key, "must be finite and >= 0", number(value));
    for (const auto& [key, value] : {std::pair{"mscale", r.mscale}, std::pair{"mscale_all_dim", r.mscale_all_dim},
                                     std::pair{"attention_factor", r.attention_factor}})
      if (value && (!(*value > 0.0) || !std::isfinite(*value)))
        fail(std::string("rope_scaling.") + key, "must be positive and finite", number(*value));
    if (type == "dynamic" && static_cast<double>(max_positions()) > 1e12)
      fail("rope_scaling.factor", "makes max_position_embeddings x factor too large", number(*r.factor));
  }
}

int64_t TransformerConfig::max_positions() const {
  if (rope_scaling && rope_scaling->rope_type == "dynamic" && rope_scaling->factor)
    return static_cast<int64_t>(std::floor(static_cast<double>(max_position_embeddings) * *rope_scaling->factor));
  return max_position_embeddings;
}

nlohmann::json TransformerConfig::to_json() const {
  nlohmann::json j = json_fields::write_struct(*this);
  j["num_key_value_heads"] = kv_heads();
  j["head_dim"] = dim_per_head();
  return j;
}

TransformerConfig TransformerConfig::from_json(const nlohmann::json& j, bool strict, const std::string& path) {
  TransformerConfig c;
  json_fields::read_struct(j, path, c, strict);
  c.validate(path);
  return c;
}

namespace {

const char* const kHfArchitectures[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                                        "MistralForCausalLM"};

// The RoPE keys of a Hugging Face config in this model's form: rope_theta at
// the top and rope_scaling null or without rope_theta. transformers 5 writes
// "rope_parameters" {rope_type, rope_theta, ...}; earlier versions (and most
// checkpoints) "rope_scaling" {type or rope_type, ...} beside "rope_theta".
void normalize_rope(nlohmann::json& j, const std::string& where) {
  nlohmann::json scaling = j.contains("rope_scaling") ? j["rope_scaling"] : nlohmann::json(nullptr);
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    const nlohmann::json& params = j["rope_parameters"];
    if (!params.is_object()) throw Error(where + ": rope_parameters: expected an object, got " + params.dump());
    if (!scaling.is_null() && scaling != params)
      throw Error(where + ": rope_scaling and rope_parameters disagree; keep one");
    scaling = params;
  }
  j.erase("rope_parameters");
  if (scaling.is_null()) {
    j["rope_scaling"] = nullptr;
    return;
  }
  if (!scaling.is_object()) throw Error(where + ": rope_scaling: expected an object or null, got " + scaling.dump());
  if (scaling.contains("rope_theta")) {
    j["rope_theta"] = scaling["rope_theta"];
    scaling.erase("rope_theta");
  }
  if (scaling.contains("partial_rotary_factor")) {
    j["partial_rotary_factor"] = scaling["partial_rotary_factor"];
    scaling.erase("partial_rotary_factor");
  }
  if (scaling.contains("type") && !scaling.contains("rope_type")) scaling["rope_type"] = scaling["type"];
  scaling.erase("type");
  // transformers writes absent optional settings as null.
  for (auto it = scaling.begin(); it != scaling.end();) it = it->is_null() ? scaling.erase(it) : std::next(it);
  const nlohmann::json type = scaling.value("rope_type", nlohmann::json("default"));
  j["rope_scaling"] = type == "default" ? nlohmann::json(nullptr) : scaling;
}

}  // namespace

TransformerConfig config_from_pretrained(const nlohmann::json& config, const std::string& where) {
  std::string arch = hf_architecture_name(config, where);
  arch = arch == "llama" ? "LlamaForCausalLM" : arch == "qwen2" ? "Qwen2ForCausalLM"
       : arch == "qwen3" ? "Qwen3ForCausalLM" : arch == "mistral" ? "MistralForCausalLM" : arch;
  if (std::find(std::begin(kHfArchitectures), std::end(kHfArchitectures), arch) == std::end(kHfArchitectures)) {
    throw Error(where + ": architecture \"" + arch + "\" is not supported (known: " +
                json_fields::list({std::begin(kHfArchitectures), std::end(kHfArchitectures)}) + ")");
  }
  nlohmann::json j = config;
  if (!j.is_object()) throw Error(where + ": expected a JSON object");
  if (!j.contains("rms_norm_eps")) j["rms_norm_eps"] = 1e-6;  // transformers' default for all four
  normalize_rope(j, where);
  const bool qwen = arch == "Qwen2ForCausalLM" || arch == "Qwen3ForCausalLM";
  if (qwen) {
    // Sliding attention applies only with use_sliding_window (refused below, by
    // the fixed key); the window size and layer split are inert without it.
    if (j.contains("layer_types") && j["layer_types"].is_array()) {
      for (const auto& t : j["layer_types"])
        if (t != "full_attention")
          throw Error(where + ": layer_types: only \"full_attention\" layers are implemented, got " + t.dump());
    }
    j.erase("layer_types");
    j.erase("sliding_window");
  }
  if (arch == "Qwen2ForCausalLM") {
    j["attention_bias"] = true;  // Qwen2 has q/k/v biases and no key for them
    j["o_proj_bias"] = false;
  } else {
    const bool bias = j.value("attention_bias", false);
    j["attention_bias"] = bias;  // Llama's and Qwen3's attention_bias covers o_proj too
    j["o_proj_bias"] = bias;
  }
  j["qk_norm"] = arch == "Qwen3ForCausalLM";
  if (arch != "MistralForCausalLM") j.erase("sliding_window");
  return TransformerConfig::from_json(j, /*strict=*/false, where);
}

nlohmann::json hf_config(const TransformerConfig& c) {
  nlohmann::json j = c.to_json();
  std::string arch, type;
  if (c.qk_norm) {
    arch = "Qwen3ForCausalLM", type = "qwen3";
  } else if (c.attention_bias && !c.o_proj_bias) {
    arch = "Qwen2ForCausalLM", type = "qwen2";
  } else if (c.sliding_window > 0) {
    arch = "MistralForCausalLM", type = "mistral";
  } else {
    arch = "LlamaForCausalLM", type = "llama";
  }
  if (c.attention_bias != c.o_proj_bias && arch != "Qwen2ForCausalLM")
    throw Error("hf_config: " + std::string(c.o_proj_bias ? "an o_proj bias without q/k/v biases"
                                                          : "q/k/v biases without an o_proj bias on a " + arch) +
                " has no Hugging Face architecture");
  if (c.sliding_window > 0 && arch != "MistralForCausalLM")
    throw Error("hf_config: a sliding window on a " + arch + " has no Hugging Face form here (only Mistral's)");
  if ((c.attention_bias || c.o_proj_bias) && arch == "MistralForCausalLM")
    throw Error("hf_config: Mistral has no attention biases");
  j["architectures"] = {arch};
  j["model_type"] = type;
  j["hidden_act"] = "silu";
  j.erase("qk_norm");
  j.erase("o_proj_bias");
  if (arch == "Qwen2ForCausalLM") j.erase("attention_bias");
  if (arch == "MistralForCausalLM") j.erase("attention_bias");
  if (arch != "MistralForCausalLM") j.erase("sliding_window");
  if (c.rope_scaling) {
    // Only the keys of its type, as transformers validates them.
    const RopeScaling& r = *c.rope_scaling;
    nlohmann::json scaling = {{"rope_type", r.rope_type}};
    if (r.factor) scaling["factor"] = *r.factor;
    const int64_t original =
        r.original_max_position_embeddings > 0 ? r.original_max_position_embeddings : c.max_position_embeddings;
    if (r.rope_type == "llama3") {
      scaling["original_max_position_embeddings"] = original;
      scaling["low_freq_factor"] = r.low_freq_factor;
      scaling["high_freq_factor"] = r.high_freq_factor;
    } else if (r.rope_type == "yarn") {
      scaling["original_max_position_embeddings"] = original;
      scaling["beta_fast"] = r.beta_fast;
      scaling["beta_slow"] = r.beta_slow;
      if (r.mscale) scaling["mscale"] = *r.mscale;
      if (r.mscale_all_dim) scaling["mscale_all_dim"] = *r.mscale_all_dim;
      if (r.attention_factor) scaling["attention_factor"] = *r.attention_factor;
      if (!r.truncate) scaling["truncate"] = false;
    }
    j["rope_scaling"] = scaling;
  }
  return j;
}

// ---------------------------------------------------------------- KV cache

TransformerKVCache::TransformerKVCache(int64_t num_layers, int64_t batch, int64_t num_kv_heads, int64_t max_length,
                                       int64_t head_dim, const torch::TensorOptions& options, bool keep_graph)
    : batch_(batch), max_length_(max_length), keep_graph_(keep_graph) {
  if (num_layers < 0 || batch < 0 || num_kv_heads <= 0 || max_length < 0 || head_dim <= 0)
    throw Error("TransformerKVCache: need num_layers, batch, max_length >= 0 and num_kv_heads, head_dim > 0, got " +
                std::to_string(num_layers) + ", " + std::to_string(batch) + ", " + std::to_string(max_length) +
                " and " + std::to_string(num_kv_heads) + ", " + std::to_string(head_dim));
  const torch::TensorOptions opts = options.requires_grad(false);
  const int64_t allocated = keep_graph ? 0 : max_length;
  for (int64_t l = 0; l < num_layers; ++l) {
    keys_.push_back(torch::empty({batch, num_kv_heads, allocated, head_dim}, opts));
    values_.push_back(torch::empty({batch, num_kv_heads, allocated, head_dim}, opts));
  }
}

void TransformerKVCache::select_rows(const torch::Tensor& index) {
  if (!index.defined() || index.dim() != 1 || !at::isIntegralType(index.scalar_type(), /*includeBool=*/false))
    throw Error("TransformerKVCache::select_rows: index must be a 1-D integer tensor (B'), got " + describe(index));
  const torch::Device device = keys_.empty() ? index.device() : keys_.front().device();
  const torch::Tensor idx = index.to(device, torch::kLong);
  if (idx.numel() > 0) {
    // NB: checked here because an out-of-range index_select on a GPU is a device assert.
    const torch::Tensor range = torch::stack({idx.min(), idx.max()}).cpu();
    const int64_t lo = range[0].item<int64_t>();
    const int64_t hi = range[1].item<int64_t>();
    if (lo < 0 || hi >= batch_)
      throw Error("TransformerKVCache::select_rows: row " + std::to_string(lo < 0 ? lo : hi) +
                  " is outside [0, batch_size = " + std::to_string(batch_) + ")");
  }
  for (size_t l = 0; l < keys_.size(); ++l) {
    keys_[l] = keys_[l].index_select(0, idx);
    values_[l] = values_[l].index_select(0, idx);
  }
  batch_ = idx.numel();
}

std::pair<torch::Tensor, torch::Tensor> TransformerKVCache::write(int64_t layer, const torch::Tensor& k,
                                                                  const torch::Tensor& v) {
  const int64_t T = k.size(2);
  if (length_ + T > max_length_)
    throw Error("TransformerKVCache: " + std::to_string(T) + " new positions after the " + std::to_string(length_) +
                " cached exceed max_length = " + std::to_string(max_length_));
  torch::Tensor& kb = keys_.at(static_cast<size_t>(layer));
  torch::Tensor& vb = values_.at(static_cast<size_t>(layer));
  TORCH_INTERNAL_ASSERT(k.sizes() == v.sizes() && k.size(0) == kb.size(0) && k.size(1) == kb.size(1) &&
                        k.size(3) == kb.size(3));
  if (keep_graph_) {
    // NB: this layer's tensors hold exactly the length_ cached positions until advance().
    kb = length_ == 0 ? k : torch::cat({kb, k.to(kb.scalar_type())}, 2);
    vb = length_ == 0 ? v : torch::cat({vb, v.to(vb.scalar_type())}, 2);
    return {kb, vb};
  }
  kb.slice(2, length_, length_ + T).copy_(k.detach());
  vb.slice(2, length_, length_ + T).copy_(v.detach());
  if (torch::GradMode::is_enabled() && (k.requires_grad() || v.requires_grad())) {
    // NB: the new keys and values keep their graph (the buffer holds detached
    // copies, and the next write would overwrite what backward needs).
    return {torch::cat({kb.slice(2, 0, length_), k.to(kb.scalar_type())}, 2),
            torch::cat({vb.slice(2, 0, length_), v.to(vb.scalar_type())}, 2)};
  }
  return {kb.slice(2, 0, length_ + T), vb.slice(2, 0, length_ + T)};
}

void TransformerKVCache::advance(int64_t T) {
  if (T < 0 || length_ + T > max_length_)
    throw Error("TransformerKVCache::advance: length " + std::to_string(length_) + " + " + std::to_string(T) +
                " is outside [0, max_length = " + std::to_string(max_length_) + "]");
  length_ += T;
}

// ---------------------------------------------------------------- modules

namespace detail {

// y = x · weightᵀ + bias, its parameters named as in torch.nn.Linear.
struct Projection : torch::nn::Module {
  Projection(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
    weight = register_parameter("weight", torch::empty({out, in}));
    if (with_bias) bias = register_parameter("bias", torch::zeros({out}));
  }
  // `exact`: every row as any call holding it computes it (batch-invariant mode).
  torch::Tensor forward(const torch::Tensor& x, bool exact = false) const {
    return exact ? ops::row_invariant_linear(x, weight, bias) : torch::linear(x, weight, bias);
  }
  void pretty_print(std::ostream& os) const override {
    os << "Projection(in=" << in_features << ", out=" << out_features << ", bias=" << bias.defined() << ")";
  }

  int64_t in_features, out_features;
  torch::Tensor weight;  // (out, in)
  torch::Tensor bias;    // (out), undefined without bias
};

struct TokenEmbedding : torch::nn::Module {
  TokenEmbedding(int64_t V, int64_t H) { weight = register_parameter("weight", torch::empty({V, H})); }
  torch::Tensor forward(const torch::Tensor& ids) const { return torch::embedding(weight, ids); }
  void pretty_print(std::ostream& os) const override {
    os << "TokenEmbedding(" << weight.size(0) << ", " << weight.size(1) << ")";
  }

  torch::Tensor weight;  // (V, H)
};

struct RMSNorm : torch::nn::Module {
  RMSNorm(int64_t H, double eps) : eps(eps) { weight = register_parameter("weight", torch::ones({H})); }
  torch::Tensor forward(const torch::Tensor& x) const {
    const torch::Tensor xf = x.to(compute_type(x));
    const torch::Tensor normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
    return weight * normed.to(x.scalar_type());
  }
  void pretty_print(std::ostream& os) const override { os << "RMSNorm(" << weight.size(0) << ", eps=" << eps << ")"; }

  double eps;
  torch::Tensor weight;  // (H)
};

// The rotary embedding's inverse frequencies (D/2) in `opts`' dtype and the
// scale of its cos and sin, as transformers' modeling_rope_utils computes
// them. seq_len (largest position + 1 in this forward) matters only for
// dynamic scaling, which transformers also derives from the forward's
// positions.
std::pair<torch::Tensor, double> rope_frequencies(const TransformerConfig& c, int64_t seq_len,
                                                  const torch::TensorOptions& opts) {
  const int64_t D = c.dim_per_head();
  const torch::Tensor exponent = torch::arange(0, D, 2, opts.dtype(torch::kLong)).to(opts.dtype()) / static_cast<double>(D);
  const auto inverse = [&](double base) { return 1.0 / torch::pow(base, exponent); };
  if (!c.rope_scaling) return {inverse(c.rope_theta), 1.0};
  const RopeScaling& r = *c.rope_scaling;
  const double max_pos = static_cast<double>(c.max_position_embeddings);
  const double original =
      r.original_max_position_embeddings > 0 ? static_cast<double>(r.original_max_position_embeddings) : max_pos;
  if (r.rope_type == "linear") return {inverse(c.rope_theta) / *r.factor, 1.0};
  if (r.rope_type == "dynamic") {
    // NB: NTK scaling raises the base once the sequence passes max_position_embeddings.
    const double length = std::max(static_cast<double>(seq_len), max_pos);
    const double factor = *r.factor;
    const double base =
        c.rope_theta * std::pow(factor * length / max_pos - (factor - 1.0), static_cast<double>(D) / (D - 2));
    return {inverse(base), 1.0};
  }
  if (r.rope_type == "llama3") {
    const double factor = *r.factor;
    const torch::Tensor inv_freq = inverse(c.rope_theta);
    const double low_freq_wavelen = original / r.low_freq_factor, high_freq_wavelen = original / r.high_freq_factor;
    const torch::Tensor wavelen = 2 * M_PI / inv_freq;
    torch::Tensor scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq);
    const torch::Tensor smooth = (original / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
    const torch::Tensor smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
    const torch::Tensor medium = (wavelen < high_freq_wavelen).logical_not() & (wavelen > low_freq_wavelen).logical_not();
    return {torch::where(medium, smoothed, scaled), 1.0};
  }
  // yarn
  const double factor = r.factor ? *r.factor : max_pos / original;
  const auto mscale = [](double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
  double attention = 0.0;
  if (r.attention_factor) {
    attention = *r.attention_factor;
  } else if (r.mscale && r.mscale_all_dim && *r.mscale != 0.0 && *r.mscale_all_dim != 0.0) {
    attention = mscale(factor, *r.mscale) / mscale(factor, *r.mscale_all_dim);
  } else {
    attention = mscale(factor, 1.0);
  }
  const double beta_fast = r.beta_fast != 0.0 ? r.beta_fast : 32.0;
  const double beta_slow = r.beta_slow != 0.0 ? r.beta_slow : 1.0;
  const auto correction_dim = [&](double rotations) {
    return (static_cast<double>(D) * std::log(original / (rotations * 2 * M_PI))) / (2 * std::log(c.rope_theta));
  };
  double low = correction_dim(beta_fast), high = correction_dim(beta_slow);
  if (r.truncate) low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(D - 1));
  if (low == high) high += 0.001;  // as transformers: no division by zero
  const torch::Tensor ramp = ((torch::arange(D / 2, opts.dtype(torch::kLong)).to(opts.dtype()) - low) / (high - low)).clamp(0, 1);
  const torch::Tensor pos_freqs = torch::pow(c.rope_theta, exponent);
  const torch::Tensor extrapolation = 1.0 / pos_freqs, interpolation = 1.0 / (factor * pos_freqs);
  const torch::Tensor extrapolation_factor = 1 - ramp;
  return {interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor, attention};
}

// cos and sin (B, 1, T, D) of the rotary angles positions · inv_freq, each
// frequency written twice (first half, second half) for rotate_half, times
// the attention factor; computed in `compute`, returned in `dtype`.
std::pair<torch::Tensor, torch::Tensor> rotary_cos_sin(const TransformerConfig& c, const torch::Tensor& positions,
                                                       int64_t seq_len, torch::ScalarType dtype,
                                                       torch::ScalarType compute) {
  const torch::TensorOptions opts = torch::TensorOptions().dtype(compute).device(positions.device());
  const auto [inv_freq, attention_factor] = rope_frequencies(c, seq_len, opts);
  const torch::Tensor freqs = positions.to(compute).unsqueeze(-1) * inv_freq;  // (B, T, D/2)
  const torch::Tensor angles = torch::cat({freqs, freqs}, -1).unsqueeze(1);    // (B, 1, T, D)
  if (attention_factor == 1.0) return {angles.cos().to(dtype), angles.sin().to(dtype)};
  return {(angles.cos() * attention_factor).to(dtype), (angles.sin() * attention_factor).to(dtype)};
}

// x (B, heads, T, D): x·cos + rotate_half(x)·sin, rotate_half(x) = (-x2, x1) for halves x1, x2.
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const torch::Tensor rotated = torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

// Which keys each query may see: an explicit mask (B, 1, T, L), true = may
// see, or none with is_causal (all keys real, no cache) or with neither (one
// new position over real keys: it sees them all). `exact` (batch-invariant
// mode) always has the mask and computes every row in a fixed order.
struct AttentionMask {
  std::optional<torch::Tensor> allowed;
  bool is_causal = false;
  bool exact = false;
};

struct Attention : torch::nn::Module {
  explicit Attention(const TransformerConfig& c)
      : heads(c.num_heads), kv_heads(c.kv_heads()), head_dim(c.dim_per_head()) {
    const int64_t H = c.hidden_size;
    q_proj = register_module("q_proj", std::make_shared<Projection>(H, heads * head_dim, c.attention_bias));
    k_proj = register_module("k_proj", std::make_shared<Projection>(H, kv_heads * head_dim, c.attention_bias));
    v_proj = register_module("v_proj", std::make_shared<Projection>(H, kv_heads * head_dim, c.attention_bias));
    o_proj = register_module("o_proj", std::make_shared<Projection>(heads * head_dim, H, c.o_proj_bias));
    if (c.qk_norm) {
      q_norm = register_module("q_norm", std::make_shared<RMSNorm>(head_dim, c.rms_norm_eps));
      k_norm = register_module("k_norm", std::make_shared<RMSNorm>(head_dim, c.rms_norm_eps));
    }
  }

  // x (B, T, H); cos, sin (B, 1, T, D). Returns (B, T, H).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const AttentionMask& mask, TransformerKVCache* cache, int64_t layer) {
    const int64_t B = x.size(0), T = x.size(1);
    const bool exact = mask.exact;
    torch::Tensor q = q_proj->forward(x, exact).view({B, T, heads, head_dim});     // (B, T, NH, D)
    torch::Tensor k = k_proj->forward(x, exact).view({B, T, kv_heads, head_dim});  // (B, T, KV, D)
    if (q_norm) {
      q = q_norm->forward(q);
      k = k_norm->forward(k);
    }
    q = apply_rotary(q.transpose(1, 2), cos, sin);  // (B, NH, T, D)
    k = apply_rotary(k.transpose(1, 2), cos, sin);  // (B, KV, T, D)
    torch::Tensor v = v_proj->forward(x, exact).view({B, T, kv_heads, head_dim}).transpose(1, 2);  // (B, KV, T, D)
    if (cache != nullptr) std::tie(k, v) = cache->write(layer, k, v);  // now (B, KV, L, D)
    if (exact) {
      const torch::Tensor out = exact_attention(q, k, v, mask.allowed->squeeze(1), 1.0 / std::sqrt(static_cast<double>(head_dim)));
      return o_proj->forward(out.transpose(1, 2).reshape({B, T, heads * head_dim}), true);
    }
    // NB: query head h reads key/value head h / (NH / KV) (enable_gqa), without repeating them here.
    const torch::Tensor out = at::scaled_dot_product_attention(q, k, v, mask.allowed, /*dropout_p=*/0.0,
                                                               mask.is_causal, /*scale=*/std::nullopt,
                                                               /*enable_gqa=*/kv_heads != heads);  // (B, NH, T, D)
    return o_proj->forward(out.transpose(1, 2).reshape({B, T, heads * head_dim}));
  }

  int64_t heads, kv_heads, head_dim;
  std::shared_ptr<Projection> q_proj, k_proj, v_proj, o_proj;
  std::shared_ptr<RMSNorm> q_norm, k_norm;  // null without qk_norm
};

struct Mlp : torch::nn::Module {
  explicit Mlp(const TransformerConfig& c) {
    gate_proj = register_module("gate_proj", std::make_shared<Projection>(c.hidden_size, c.intermediate_size, false));
    up_proj = register_module("up_proj", std::make_shared<Projection>(c.hidden_size, c.intermediate_size, false));
    down_proj = register_module("down_proj", std::make_shared<Projection>(c.intermediate_size, c.hidden_size, false));
  }
  torch::Tensor forward(const torch::Tensor& x, bool exact) const {
    if (!exact) return down_proj->forward(torch::silu(gate_proj->forward(x)) * up_proj->forward(x));
    // NB: silu's and sigmoid's CPU kernels compute the last elements of each
    // thread's share with scalar code that can differ from their vector code in
    // the last bit, so where an element falls would matter; exp's agree, and the
    // rest is correctly rounded arithmetic.
    const torch::Tensor gate = gate_proj->forward(x, true);
    return down_proj->forward(gate / (1 + torch::exp(-gate)) * up_proj->forward(x, true), true);
  }

  std::shared_ptr<Projection> gate_proj, up_proj, down_proj;
};

struct DecoderLayer : torch::nn::Module {
  explicit DecoderLayer(const TransformerConfig& c) {
    self_attn = register_module("self_attn", std::make_shared<Attention>(c));
    mlp = register_module("mlp", std::make_shared<Mlp>(c));
    input_layernorm = register_module("input_layernorm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps));
    post_attention_layernorm =
        register_module("post_attention_layernorm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const AttentionMask& mask, TransformerKVCache* cache, int64_t layer) {
    const torch::Tensor h = x + self_attn->forward(input_layernorm->forward(x), cos, sin, mask, cache, layer);
    return h + mlp->forward(post_attention_layernorm->forward(h), mask.exact);
  }

  std::shared_ptr<Attention> self_attn;
  std::shared_ptr<Mlp> mlp;
  std::shared_ptr<RMSNorm> input_layernorm, post_attention_layernorm;
};

// Hugging Face's LlamaModel: everything but the output projection.
struct TransformerBody : torch::nn::Module {
  explicit TransformerBody(const TransformerConfig& c) {
    embed_tokens = register_module("embed_tokens", std::make_shared<TokenEmbedding>(c.vocab_size, c.hidden_size));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_layers; ++i) {
      decoder.push_back(std::make_shared<DecoderLayer>(c));
      layers->push_back(decoder.back());
    }
    norm = register_module("norm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps));
  }

  std::shared_ptr<TokenEmbedding> embed_tokens;
  torch::nn::ModuleList layers;  // "layers.{i}", the same modules as decoder
  std::vector<std::shared_ptr<DecoderLayer>> decoder;
  std::shared_ptr<RMSNorm> norm;
};

}  // namespace detail

// ---------------------------------------------------------------- TransformerLM

namespace {
const TransformerConfig& validated(const TransformerConfig& c) {
  c.validate();
  return c;
}
}  // namespace

TransformerLM::TransformerLM(const TransformerConfig& config, Uninitialized)
    : torch::nn::Module("TransformerLM"), config_(validated(config)) {
  model_ = register_module("model", std::make_shared<detail::TransformerBody>(config_));
  if (!config_.tie_word_embeddings)
    lm_head_ = register_module("lm_head",
                               std::make_shared<detail::Projection>(config_.hidden_size, config_.vocab_size, false));
}

TransformerLM::TransformerLM(const TransformerConfig& config) : TransformerLM(config, Uninitialized{}) {
  // Norm weights are ones and biases zeros from their constructors; every
  // matrix (embedding and projections) is drawn here, in parameter order.
  torch::NoGradGuard no_grad;
  for (auto& p : parameters()) {
    if (p.dim() == 2) p.normal_(0.0, 0.02);
  }
}

std::shared_ptr<TransformerLM> TransformerLM::uninitialized(const TransformerConfig& config) {
  return std::shared_ptr<TransformerLM>(new TransformerLM(config, Uninitialized{}));
}

torch::Tensor TransformerLM::output_weight() { return lm_head_ ? lm_head_->weight : model_->embed_tokens->weight; }

std::unique_ptr<KVCache> TransformerLM::new_cache(int64_t batch, int64_t max_length, bool keep_graph,
                                                  const char* who) const {
  if (batch < 0 || max_length < 0)
    throw Error(std::string("TransformerLM::") + who + ": batch and max_length must be >= 0, got " +
                std::to_string(batch) + " and " + std::to_string(max_length));
  const torch::Tensor& w = model_->embed_tokens->weight;
  return std::make_unique<TransformerKVCache>(config_.num_layers, batch, config_.kv_heads(), max_length,
                                              config_.dim_per_head(), w.options(), keep_graph);
}

std::unique_ptr<KVCache> TransformerLM::make_training_cache(int64_t batch, int64_t max_length) {
  return new_cache(batch, max_length, /*keep_graph=*/true, "make_training_cache");
}

std::unique_ptr<KVCache> TransformerLM::make_cache(int64_t batch, int64_t max_length) {
  return new_cache(batch, max_length, /*keep_graph=*/false, "make_cache");
}

torch::Tensor TransformerLM::hidden_states(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                                           const torch::Tensor& positions, KVCache* cache) {
  const std::string where = "TransformerLM::hidden_states: ";
  const auto positions_limit = [this] {
    return config_.max_positions() == config_.max_position_embeddings
               ? "max_position_embeddings = " + std::to_string(config_.max_position_embeddings)
               : "max_position_embeddings x rope_scaling.factor = " + std::to_string(config_.max_positions());
  };
  if (!ids.defined() || ids.dim() != 2 || ids.scalar_type() != torch::kLong)
    throw Error(where + "ids must be (B, T) int64, got " + describe(ids));
  const torch::Device device = model_->embed_tokens->weight.device();
  if (ids.device() != device)
    throw Error(where + "ids are on " + ids.device().str() + " but the model is on " + device.str());
  const int64_t B = ids.size(0), T = ids.size(1);

  TransformerKVCache* kv = nullptr;
  int64_t S = 0;
  if (cache != nullptr) {
    kv = dynamic_cast<TransformerKVCache*>(cache);
    if (kv == nullptr) throw Error(where + "cache was not made by TransformerLM::make_cache");
    if (kv->num_layers() != config_.num_layers ||
        (kv->num_layers() > 0 &&
         (kv->keys(0).size(1) != config_.kv_heads() || kv->keys(0).size(3) != config_.dim_per_head())))
      throw Error(where + "cache was made for another model shape (layers, key/value heads or head_dim differ)");
    if (kv->batch_size() != B)
      throw Error(where + "cache holds " + std::to_string(kv->batch_size()) +
                  " rows but ids have B = " + std::to_string(B));
    S = kv->length();
    if (S + T > kv->max_length())
      throw Error(where + "cache overflow: " + std::to_string(T) + " new positions after the " + std::to_string(S) +
                  " cached exceed the cache's max_length = " + std::to_string(kv->max_length()));
  }
  const int64_t L = S + T;
  const int64_t max_positions = config_.max_positions();
  if (L > max_positions)
    throw Error(where + "sequence of " + std::to_string(S) + " cached + " + std::to_string(T) +
                " new = " + std::to_string(L) + " positions exceeds " + positions_limit());
  if (!attention_mask.defined() || attention_mask.dim() != 2 || attention_mask.size(0) != B ||
      attention_mask.size(1) != L)
    throw Error(where + "attention_mask must be (B, S + T) = (" + std::to_string(B) + ", " + std::to_string(L) +
                "), got " + describe(attention_mask));
  if (!positions.defined() || positions.dim() != 2 || positions.size(0) != B || positions.size(1) != T ||
      positions.scalar_type() != torch::kLong)
    throw Error(where + "positions must be (B, T) = (" + std::to_string(B) + ", " + std::to_string(T) +
                ") int64, got " + describe(positions));
  const torch::Tensor pos = positions.to(device);
  const torch::Tensor key_real = attention_mask.to(device).ne(0);  // (B, L)
  int64_t pos_hi = 0;
  bool all_real = false;
  if (ids.numel() > 0) {
    // One device-to-host read for both ranges and the padding; an
    // out-of-range id on a GPU would otherwise be a device assert.
    const torch::Tensor facts =
        torch::stack({ids.min(), ids.max(), pos.min(), pos.max(), key_real.all().to(torch::kLong)}).cpu();
    const int64_t id_lo = facts[0].item<int64_t>(), id_hi = facts[1].item<int64_t>();
    const int64_t pos_lo = facts[2].item<int64_t>();
    pos_hi = facts[3].item<int64_t>();
    all_real = facts[4].item<int64_t>() != 0;
    if (id_lo < 0 || id_hi >= config_.vocab_size)
      throw Error(where + "ids: token id " + std::to_string(id_lo < 0 ? id_lo : id_hi) +
                  " is outside [0, vocab_size = " + std::to_string(config_.vocab_size) + ")");
    if (pos_lo < 0 || pos_hi >= max_positions)
      throw Error(where + "positions: " + std::to_string(pos_lo < 0 ? pos_lo : pos_hi) + " is outside [0, " +
                  positions_limit() + ")");
  }

  // Query i (index S + i among the L) may see key j <= S + i when j is real
  // and, with a sliding window W, S + i - j < W. A pad query sees itself only.
  detail::AttentionMask mask;
  mask.exact = batch_invariant_;
  const int64_t W = config_.sliding_window;
  const bool window_cuts = W > 0 && L > W;
  if (batch_invariant_ && !device.is_cpu())
    throw Error(where + "the batch-invariant mode runs on the CPU only; the model is on " + device.str());
  if (all_real && !window_cuts && S == 0 && !batch_invariant_) {
    mask.is_causal = true;
  } else if (!(all_real && !window_cuts && T == 1) || batch_invariant_) {
    const torch::TensorOptions long_opts = torch::TensorOptions().dtype(torch::kLong).device(device);
    const torch::Tensor query = torch::arange(S, L, long_opts).unsqueeze(1);  // (T, 1)
    const torch::Tensor key = torch::arange(0, L, long_opts).unsqueeze(0);    // (1, L)
    torch::Tensor visible = key <= query;                                      // (T, L)
    if (W > 0) visible = visible & (query - key < W);
    mask.allowed = ((visible.unsqueeze(0) & key_real.unsqueeze(1)) | (key == query).unsqueeze(0)).unsqueeze(1);
  }

  torch::Tensor x = model_->embed_tokens->forward(ids);  // (B, T, H)
  const auto [cos, sin] = detail::rotary_cos_sin(config_, pos, pos_hi + 1, x.scalar_type(), compute_type(x));
  for (int64_t l = 0; l < config_.num_layers; ++l)
    x = model_->decoder[static_cast<size_t>(l)]->forward(x, cos, sin, mask, kv, l);
  if (kv != nullptr) kv->advance(T);
  return model_->norm->forward(x);
}

std::shared_ptr<CausalLM> TransformerLM::clone() const {
  std::shared_ptr<TransformerLM> copy(new TransformerLM(config_, Uninitialized{}));
  torch::NoGradGuard no_grad;
  auto copy_all = [](const torch::OrderedDict<std::string, torch::Tensor>& from,
                     torch::OrderedDict<std::string, torch::Tensor> to) {
    TORCH_INTERNAL_ASSERT(from.size() == to.size());
    for (const auto& item : from) {
      torch::Tensor& dst = to[item.key()];
      dst.set_data(item.value().detach().clone());
      dst.requires_grad_(item.value().requires_grad());
    }
  };
  copy_all(named_parameters(), copy->named_parameters());
  copy_all(named_buffers(), copy->named_buffers());
  copy->train(is_training());
  copy->batch_invariant_ = batch_invariant_;
  return copy;
}

std::shared_ptr<torch::nn::Module> TransformerLM::clone(const c10::optional<torch::Device>& device) const {
  auto copy = std::dynamic_pointer_cast<TransformerLM>(clone());
  if (device.has_value()) copy->to(*device);
  return copy;
}

void TransformerLM::pretty_print(std::ostream& os) const {
  os << "TransformerLM(vocab=" << config_.vocab_size << ", hidden=" << config_.hidden_size
     << ", layers=" << config_.num_layers << ", heads=" << config_.num_heads << ", kv_heads=" << config_.kv_heads()
     << ", head_dim=" << config_.dim_per_head() << ", tied=" << config_.tie_word_embeddings
     << ", attention_bias=" << config_.attention_bias << ", o_proj_bias=" << config_.o_proj_bias
     << ", qk_norm=" << config_.qk_norm << ", sliding_window=" << config_.sliding_window
     << ", rope_scaling=" << (config_.rope_scaling ? config_.rope_scaling->rope_type : "none") << ")";
}

void TransformerLM::set_batch_invariant(bool on) {
  if (on && config_.rope_scaling && config_.rope_scaling->rope_type == "dynamic")
    throw Error("TransformerLM::set_batch_invariant: dynamic RoPE scaling depends on each forward's length, so no mode "
                "makes decoding and scoring agree");
  batch_invariant_ = on;
}

nlohmann::json TransformerLM::architecture() const {
  return {{"type", "transformer"}, {"config", config_.to_json()}};
}

void register_transformer(ModelRegistry& registry) {
  ModelArchitecture a;
  a.create = [](const nlohmann::json& config, bool initialize, const std::string& where) -> std::shared_ptr<CausalLM> {
    const TransformerConfig c = TransformerConfig::from_json(config, /*strict=*/true, where);
    if (initialize) return std::make_shared<TransformerLM>(c);
    return TransformerLM::uninitialized(c);
  };
  a.hf_names = {"llama", "qwen2", "qwen3", "mistral", "LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                "MistralForCausalLM"};
  a.config_from_hf = [](const nlohmann::json& hf, const std::string& where) {
    return config_from_pretrained(hf, where).to_json();
  };
  registry.register_architecture("transformer", std::move(a));
}

}  // namespace grpo
