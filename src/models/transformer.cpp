// TransformerLM: a Llama / Qwen2 decoder computed as Hugging Face's eager
// implementation does (rotate-half RoPE, RMSNorm and attention scores in at least
// float32), its KV cache, and its config's JSON form.
// Shapes: B rows, T new positions, S cached, L = S + T, H hidden, I MLP width,
// V vocabulary, NH query heads, KV key/value heads, R = NH / KV, D head dim.
#include "grpo/models/transformer.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "grpo/error.h"
#include "grpo/models/registry.h"
#include "models/transformer_fields.h"

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

TransformerConfig config_from_pretrained(const nlohmann::json& config, const std::string& where) {
  std::string arch = hf_architecture_name(config, where);
  arch = arch == "llama" ? "LlamaForCausalLM" : arch == "qwen2" ? "Qwen2ForCausalLM"
       : arch == "mistral" ? "MistralForCausalLM" : arch;
  if (arch != "LlamaForCausalLM" && arch != "Qwen2ForCausalLM" && arch != "MistralForCausalLM") {
    throw Error(where + ": architecture \"" + arch +
                "\" is not supported (known: LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM)");
  }
  nlohmann::json j = config;
  if (!j.contains("rms_norm_eps")) j["rms_norm_eps"] = 1e-6;  // transformers' default for all three
  // NB: Qwen2's sliding-window keys are off unless use_sliding_window is true, which from_json rejects.
  if (arch == "Qwen2ForCausalLM") j.erase("sliding_window");
  if (arch == "Qwen2ForCausalLM") j["attention_bias"] = true;  // Qwen2 has q/k/v biases and no key for them
  TransformerConfig c = TransformerConfig::from_json(j, /*strict=*/false, where);
  if (arch == "MistralForCausalLM" && j.contains("sliding_window") && j["sliding_window"].is_number_integer()) {
    c.max_position_embeddings = std::min<int64_t>(c.max_position_embeddings, j["sliding_window"].get<int64_t>());
  }
  return c;
}

// ---------------------------------------------------------------- KV cache

TransformerKVCache::TransformerKVCache(int64_t num_layers, int64_t batch, int64_t num_kv_heads, int64_t max_length,
                                       int64_t head_dim, const torch::TensorOptions& options)
    : batch_(batch), max_length_(max_length) {
  if (num_layers < 0 || batch < 0 || num_kv_heads <= 0 || max_length < 0 || head_dim <= 0)
    throw Error("TransformerKVCache: need num_layers, batch, max_length >= 0 and num_kv_heads, head_dim > 0, got " +
                std::to_string(num_layers) + ", " + std::to_string(batch) + ", " + std::to_string(max_length) +
                " and " + std::to_string(num_kv_heads) + ", " + std::to_string(head_dim));
  const torch::TensorOptions opts = options.requires_grad(false);
  for (int64_t l = 0; l < num_layers; ++l) {
    keys_.push_back(torch::empty({batch, num_kv_heads, max_length, head_dim}, opts));
    values_.push_back(torch::empty({batch, num_kv_heads, max_length, head_dim}, opts));
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
  torch::Tensor forward(const torch::Tensor& x) const { return torch::linear(x, weight, bias); }
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

// cos and sin (B, 1, T, D) of the rotary angles pos · theta^(-2i/D), each
// frequency written twice (first half, second half) for rotate_half.
std::pair<torch::Tensor, torch::Tensor> rotary_cos_sin(const torch::Tensor& positions, int64_t D, double theta,
                                                       torch::ScalarType dtype, torch::ScalarType compute) {
  const torch::TensorOptions opts = torch::TensorOptions().dtype(compute).device(positions.device());
  const torch::Tensor exponent = torch::arange(0, D, 2, opts.dtype(torch::kLong)).to(compute) / static_cast<double>(D);
  const torch::Tensor inv_freq = 1.0 / torch::pow(theta, exponent);            // (D/2)
  const torch::Tensor freqs = positions.to(compute).unsqueeze(-1) * inv_freq;  // (B, T, D/2)
  const torch::Tensor angles = torch::cat({freqs, freqs}, -1).unsqueeze(1);    // (B, 1, T, D)
  return {angles.cos().to(dtype), angles.sin().to(dtype)};
}

// x (B, heads, T, D): x·cos + rotate_half(x)·sin, rotate_half(x) = (-x2, x1) for halves x1, x2.
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const torch::Tensor rotated = torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

struct Attention : torch::nn::Module {
  explicit Attention(const TransformerConfig& c)
      : heads(c.num_heads), kv_heads(c.kv_heads()), head_dim(c.dim_per_head()) {
    const int64_t H = c.hidden_size;
    q_proj = register_module("q_proj", std::make_shared<Projection>(H, heads * head_dim, c.attention_bias));
    k_proj = register_module("k_proj", std::make_shared<Projection>(H, kv_heads * head_dim, c.attention_bias));
    v_proj = register_module("v_proj", std::make_shared<Projection>(H, kv_heads * head_dim, c.attention_bias));
    o_proj = register_module("o_proj", std::make_shared<Projection>(heads * head_dim, H, false));
  }

  // x (B, T, H); cos, sin (B, 1, T, D); allowed (B, 1, 1, T, L) bool, true =
  // the query may see the key. Returns (B, T, H).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& allowed, TransformerKVCache* cache, int64_t layer) {
    const int64_t B = x.size(0), T = x.size(1), R = heads / kv_heads;
    torch::Tensor q = q_proj->forward(x).view({B, T, heads, head_dim}).transpose(1, 2);     // (B, NH, T, D)
    torch::Tensor k = k_proj->forward(x).view({B, T, kv_heads, head_dim}).transpose(1, 2);  // (B, KV, T, D)
    torch::Tensor v = v_proj->forward(x).view({B, T, kv_heads, head_dim}).transpose(1, 2);  // (B, KV, T, D)
    q = apply_rotary(q, cos, sin);
    k = apply_rotary(k, cos, sin);
    if (cache != nullptr) std::tie(k, v) = cache->write(layer, k, v);  // now (B, KV, L, D)
    const int64_t L = k.size(2);

    // Query head h reads key/value head h / R: group the R query heads of each
    // key/value head along the query axis instead of repeating the keys.
    const torch::ScalarType acc = compute_type(x);
    const torch::Tensor qg = q.reshape({B, kv_heads, R * T, head_dim}).to(acc);
    torch::Tensor scores = torch::matmul(qg, k.to(acc).transpose(-1, -2)) / std::sqrt(static_cast<double>(head_dim));
    // NB: the lowest finite value rather than -inf, so a query that may see no
    // key (a left pad) gets a uniform, finite row instead of NaN; elsewhere its
    // exp underflows to exactly 0.
    scores =
        scores.view({B, kv_heads, R, T, L}).masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest());
    const torch::Tensor probs = torch::softmax(scores, -1).to(v.scalar_type()).view({B, kv_heads, R * T, L});
    const torch::Tensor out = torch::matmul(probs, v)  // (B, KV, R·T, D)
                                  .view({B, heads, T, head_dim})
                                  .transpose(1, 2)
                                  .reshape({B, T, heads * head_dim});
    return o_proj->forward(out);
  }

  int64_t heads, kv_heads, head_dim;
  std::shared_ptr<Projection> q_proj, k_proj, v_proj, o_proj;
};

struct Mlp : torch::nn::Module {
  explicit Mlp(const TransformerConfig& c) {
    gate_proj = register_module("gate_proj", std::make_shared<Projection>(c.hidden_size, c.intermediate_size, false));
    up_proj = register_module("up_proj", std::make_shared<Projection>(c.hidden_size, c.intermediate_size, false));
    down_proj = register_module("down_proj", std::make_shared<Projection>(c.intermediate_size, c.hidden_size, false));
  }
  torch::Tensor forward(const torch::Tensor& x) const {
    return down_proj->forward(torch::silu(gate_proj->forward(x)) * up_proj->forward(x));
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
                        const torch::Tensor& allowed, TransformerKVCache* cache, int64_t layer) {
    const torch::Tensor h = x + self_attn->forward(input_layernorm->forward(x), cos, sin, allowed, cache, layer);
    return h + mlp->forward(post_attention_layernorm->forward(h));
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

std::unique_ptr<KVCache> TransformerLM::make_cache(int64_t batch, int64_t max_length) {
  if (batch < 0 || max_length < 0)
    throw Error("TransformerLM::make_cache: batch and max_length must be >= 0, got " + std::to_string(batch) + " and " +
                std::to_string(max_length));
  const torch::Tensor& w = model_->embed_tokens->weight;
  return std::make_unique<TransformerKVCache>(config_.num_layers, batch, config_.kv_heads(), max_length,
                                              config_.dim_per_head(), w.options());
}

torch::Tensor TransformerLM::hidden_states(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                                           const torch::Tensor& positions, KVCache* cache) {
  const std::string where = "TransformerLM::hidden_states: ";
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
  if (L > config_.max_position_embeddings)
    throw Error(where + "sequence of " + std::to_string(S) + " cached + " + std::to_string(T) +
                " new = " + std::to_string(L) +
                " positions exceeds max_position_embeddings = " + std::to_string(config_.max_position_embeddings));
  if (!attention_mask.defined() || attention_mask.dim() != 2 || attention_mask.size(0) != B ||
      attention_mask.size(1) != L)
    throw Error(where + "attention_mask must be (B, S + T) = (" + std::to_string(B) + ", " + std::to_string(L) +
                "), got " + describe(attention_mask));
  if (!positions.defined() || positions.dim() != 2 || positions.size(0) != B || positions.size(1) != T ||
      positions.scalar_type() != torch::kLong)
    throw Error(where + "positions must be (B, T) = (" + std::to_string(B) + ", " + std::to_string(T) +
                ") int64, got " + describe(positions));
  const torch::Tensor pos = positions.to(device);
  if (ids.numel() > 0) {
    // One device-to-host read for both ranges; an out-of-range id on a GPU
    // would otherwise be a device assert rather than an error.
    const torch::Tensor range = torch::stack({ids.min(), ids.max(), pos.min(), pos.max()}).cpu();
    const int64_t id_lo = range[0].item<int64_t>(), id_hi = range[1].item<int64_t>();
    const int64_t pos_lo = range[2].item<int64_t>(), pos_hi = range[3].item<int64_t>();
    if (id_lo < 0 || id_hi >= config_.vocab_size)
      throw Error(where + "ids: token id " + std::to_string(id_lo < 0 ? id_lo : id_hi) +
                  " is outside [0, vocab_size = " + std::to_string(config_.vocab_size) + ")");
    if (pos_lo < 0 || pos_hi >= config_.max_position_embeddings)
      throw Error(where + "positions: " + std::to_string(pos_lo < 0 ? pos_lo : pos_hi) +
                  " is outside [0, max_position_embeddings = " + std::to_string(config_.max_position_embeddings) + ")");
  }

  // Query i (absolute position S + i among the L) may see key j <= S + i when j is not padding.
  const torch::TensorOptions long_opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  const torch::Tensor causal =
      torch::arange(0, L, long_opts).unsqueeze(0) <= torch::arange(S, L, long_opts).unsqueeze(1);  // (T, L)
  const torch::Tensor allowed =
      (causal.unsqueeze(0) & attention_mask.to(device).ne(0).unsqueeze(1)).view({B, 1, 1, T, L});

  torch::Tensor x = model_->embed_tokens->forward(ids);  // (B, T, H)
  const auto [cos, sin] =
      detail::rotary_cos_sin(pos, config_.dim_per_head(), config_.rope_theta, x.scalar_type(), compute_type(x));
  for (int64_t l = 0; l < config_.num_layers; ++l)
    x = model_->decoder[static_cast<size_t>(l)]->forward(x, cos, sin, allowed, kv, l);
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
     << ", attention_bias=" << config_.attention_bias << ")";
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
  a.hf_names = {"llama", "qwen2", "mistral", "LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"};
  a.config_from_hf = [](const nlohmann::json& hf, const std::string& where) {
    return config_from_pretrained(hf, where).to_json();
  };
  registry.register_architecture("transformer", std::move(a));
}

}  // namespace grpo
