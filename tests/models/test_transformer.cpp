// TransformerLM against a plain-LibTorch reference forward (float64, near-exact)
// and against itself: cached vs uncached decoding, left-padded rows vs rows
// alone, repeated cache rows; its Hugging Face names, config JSON, deep clone
// and bad-input errors. Shapes: B rows, T positions, V vocabulary, H hidden.
#include <grpo/error.h>
#include <grpo/models/transformer.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ops/reference.h"
#include "tiny_models.h"

namespace {

using grpo::TransformerConfig;
using grpo::TransformerLM;
using grpo_test::tensors_close;

const torch::TensorOptions kLongOpts = torch::TensorOptions().dtype(torch::kLong);

TransformerConfig tiny_config(bool tied = false, bool bias = true) {
  return grpo_test::tiny_transformer_config(50, tied, bias);
}

// Weights large enough that attention is far from uniform, norms and biases
// far from 1 and 0: masking, positions and biases then show in the logits.
std::shared_ptr<TransformerLM> make_model(const TransformerConfig& c, uint64_t seed = 0) {
  torch::manual_seed(seed);
  auto m = std::make_shared<TransformerLM>(c);
  torch::NoGradGuard no_grad;
  for (auto& item : m->named_parameters()) {
    torch::Tensor& p = item.value();
    if (p.dim() == 2) {
      p.normal_(0.0, 0.2);
    } else if (item.key().find("norm") != std::string::npos) {
      p.normal_(1.0, 0.2);
    } else {
      p.normal_(0.0, 0.5);
    }
  }
  return m;
}

// Logits (B, T, V) of whole sequences, no cache.
torch::Tensor full_logits(TransformerLM& m, const torch::Tensor& ids, const torch::Tensor& mask) {
  return m.forward(ids, mask, grpo::positions_from_mask(mask, ids.size(1)), nullptr);
}

torch::Tensor alone_logits(TransformerLM& m, const torch::Tensor& row) {
  const torch::Tensor ids = row.view({1, -1});
  return full_logits(m, ids, torch::ones_like(ids))[0];
}

// Left-pads `rows` with `pad` into (B, T) ids and their 0/1 mask.
std::pair<torch::Tensor, torch::Tensor> left_pad(const std::vector<torch::Tensor>& rows, int64_t pad = 0) {
  int64_t T = 0;
  for (const auto& r : rows) T = std::max(T, r.numel());
  torch::Tensor ids = torch::full({static_cast<int64_t>(rows.size()), T}, pad, kLongOpts);
  torch::Tensor mask = torch::zeros({static_cast<int64_t>(rows.size()), T}, kLongOpts);
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t n = rows[i].numel();
    ids[static_cast<int64_t>(i)].slice(0, T - n).copy_(rows[i]);
    mask[static_cast<int64_t>(i)].slice(0, T - n).fill_(1);
  }
  return {ids, mask};
}

template <typename F>
void expect_grpo_error(F&& f, std::initializer_list<std::string> needles, const std::string& what) {
  try {
    f();
  } catch (const grpo::Error& e) {
    const std::string message = e.what();
    for (const std::string& needle : needles)
      EXPECT_NE(message.find(needle), std::string::npos)
          << what << ": the error does not mention \"" << needle << "\": " << message;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": threw something other than grpo::Error: " << e.what();
    return;
  }
  ADD_FAILURE() << what << ": no error was raised";
}

// ---------------------------------------------------------------- reference forward

torch::Tensor ref_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b = {}) {
  torch::Tensor y = torch::matmul(x, w.t());
  return b.defined() ? y + b : y;
}

torch::Tensor ref_rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  return w * (x / torch::sqrt((x * x).mean(-1, /*keepdim=*/true) + eps));
}

// x (B, heads, T, D): dimension i pairs with i + D/2 and turns by the angle
// position · theta^(-2i/D).
torch::Tensor ref_rope(const torch::Tensor& x, const torch::Tensor& positions, double theta) {
  const int64_t D = x.size(-1), half = D / 2;
  torch::Tensor out = x.clone();
  for (int64_t i = 0; i < half; ++i) {
    const torch::Tensor angle = positions.to(torch::kFloat64) * std::pow(theta, -2.0 * i / D);  // (B, T)
    const torch::Tensor c = angle.cos().unsqueeze(1), s = angle.sin().unsqueeze(1);
    const torch::Tensor a = x.select(-1, i), b = x.select(-1, i + half);
    out.select(-1, i).copy_(a * c - b * s);
    out.select(-1, i + half).copy_(b * c + a * s);
  }
  return out;
}

// Logits (B, T, V) from the named parameters, one head at a time; rows of pad
// queries are 0.
torch::Tensor ref_forward(TransformerLM& m, const torch::Tensor& ids, const torch::Tensor& mask) {
  const TransformerConfig& c = m.config();
  auto P = m.named_parameters();
  auto p = [&](const std::string& name) { return P[name]; };
  auto bias = [&](const std::string& name) { return P.contains(name) ? P[name] : torch::Tensor(); };
  const int64_t B = ids.size(0), T = ids.size(1), NH = c.num_heads, KV = c.kv_heads(), D = c.dim_per_head();
  const torch::Tensor positions = grpo::positions_from_mask(mask, T);
  torch::Tensor x = p("model.embed_tokens.weight").index_select(0, ids.reshape({-1})).view({B, T, -1});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    const torch::Tensor h = ref_rms_norm(x, p(pre + "input_layernorm.weight"), c.rms_norm_eps);
    auto project = [&](const std::string& name, int64_t heads) {
      return ref_linear(h, p(pre + "self_attn." + name + ".weight"), bias(pre + "self_attn." + name + ".bias"))
          .view({B, T, heads, D})
          .transpose(1, 2);
    };
    torch::Tensor q = project("q_proj", NH), k = project("k_proj", KV);  // (B, heads, T, D)
    if (c.qk_norm) {
      q = ref_rms_norm(q, p(pre + "self_attn.q_norm.weight"), c.rms_norm_eps);
      k = ref_rms_norm(k, p(pre + "self_attn.k_norm.weight"), c.rms_norm_eps);
    }
    q = ref_rope(q, positions, c.rope_theta);
    k = ref_rope(k, positions, c.rope_theta);
    const torch::Tensor v = project("v_proj", KV);
    torch::Tensor attn = torch::zeros({B, T, NH, D}, x.options());
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t head = 0; head < NH; ++head) {
        const int64_t g = head / (NH / KV);
        torch::Tensor scores = torch::matmul(q[b][head], k[b][g].t()) / std::sqrt(static_cast<double>(D));
        for (int64_t i = 0; i < T; ++i)
          for (int64_t j = 0; j < T; ++j)
            if (j > i || mask[b][j].item<int64_t>() == 0 || (c.sliding_window > 0 && i - j >= c.sliding_window))
              scores[i][j] = -INFINITY;
        for (int64_t i = 0; i < T; ++i) {
          if (mask[b][i].item<int64_t>() == 0) continue;
          attn[b].select(0, i)[head].copy_(torch::matmul(torch::softmax(scores[i], 0), v[b][g]));
        }
      }
    }
    x = x + ref_linear(attn.view({B, T, NH * D}), p(pre + "self_attn.o_proj.weight"), bias(pre + "self_attn.o_proj.bias"));
    const torch::Tensor h2 = ref_rms_norm(x, p(pre + "post_attention_layernorm.weight"), c.rms_norm_eps);
    const torch::Tensor gate = ref_linear(h2, p(pre + "mlp.gate_proj.weight"));
    const torch::Tensor up = ref_linear(h2, p(pre + "mlp.up_proj.weight"));
    x = x + ref_linear(gate * torch::sigmoid(gate) * up, p(pre + "mlp.down_proj.weight"));
  }
  x = ref_rms_norm(x, p("model.norm.weight"), c.rms_norm_eps);
  const torch::Tensor out = c.tie_word_embeddings ? p("model.embed_tokens.weight") : p("lm_head.weight");
  return ref_linear(x, out) * mask.unsqueeze(-1).to(x.scalar_type());
}

TEST(TransformerLMTest, MatchesReferenceForwardInFloat64) {
  struct Case {
    const char* name;
    bool tied, o_proj_bias, qk_norm;
    int64_t sliding_window;
  };
  for (const Case& k : {Case{"untied", false, false, false, 0}, Case{"tied", true, false, false, 0},
                        Case{"Llama attention_bias (o_proj too)", false, true, false, 0},
                        Case{"Qwen3 q/k norms", true, false, true, 0}, Case{"Mistral window 3", false, false, false, 3}}) {
    SCOPED_TRACE(k.name);
    const bool tied = k.tied;
    TransformerConfig c = tiny_config(tied, /*bias=*/true);
    c.head_dim = 16;  // not hidden / heads: the projections are not square
    c.rope_theta = 500.0;
    c.rms_norm_eps = 1e-3;
    c.o_proj_bias = k.o_proj_bias;
    c.qk_norm = k.qk_norm;
    c.sliding_window = k.sliding_window;
    auto m = make_model(c, 3);
    m->to(torch::kFloat64);
    torch::manual_seed(4);
    const auto [ids, mask] = left_pad({torch::randint(1, 50, {7}, kLongOpts), torch::randint(1, 50, {4}, kLongOpts)});
    const torch::Tensor got = full_logits(*m, ids, mask) * mask.unsqueeze(-1).to(torch::kFloat64);
    EXPECT_EQ(got.scalar_type(), torch::kFloat64);
    EXPECT_TRUE(tensors_close(got, ref_forward(*m, ids, mask), 1e-10, 1e-11));
  }
}

// ---------------------------------------------------------------- cache vs no cache

struct Variant {
  bool tied;
  bool bias;
  int64_t window = 0;  // sliding_window
};

class TransformerCachedDecoding : public ::testing::TestWithParam<Variant> {};

TEST_P(TransformerCachedDecoding, MatchesFullForwardAtEveryStep) {
  const Variant v = GetParam();
  TransformerConfig c = tiny_config(v.tied, v.bias);
  c.sliding_window = v.window;
  auto m = make_model(c, 1);
  const int64_t B = 2, prompt = 5;
  // 10 new tokens: one multi-token step, then single ones.
  const std::vector<int64_t> chunks = {3, 1, 1, 1, 1, 1, 1, 1};
  torch::manual_seed(2);
  const torch::Tensor ids = torch::randint(0, 50, {B, prompt + 10}, kLongOpts);
  const torch::Tensor mask = torch::ones({B, prompt + 10}, kLongOpts);
  // Grad on: the new keys stay in the graph (torch::cat); off: views of the buffers.
  for (const bool grad : {false, true}) {
    SCOPED_TRACE(grad ? "grad on" : "grad off");
    torch::AutoGradMode mode(grad);
    auto cache = m->make_cache(B, prompt + 10);
    int64_t done = 0;
    for (int64_t step = -1; step < static_cast<int64_t>(chunks.size()); ++step) {
      const int64_t T = step < 0 ? prompt : chunks[static_cast<size_t>(step)];
      const torch::Tensor seen = mask.slice(1, 0, done + T);
      const torch::Tensor got =
          m->forward(ids.slice(1, done, done + T), seen, grpo::positions_from_mask(seen, T), cache.get());
      const torch::Tensor want = full_logits(*m, ids.slice(1, 0, done + T), seen).slice(1, done);
      EXPECT_TRUE(tensors_close(got, want, 1e-5, 1e-5)) << "step " << step;
      done += T;
      EXPECT_EQ(cache->length(), done);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, TransformerCachedDecoding,
                         ::testing::Values(Variant{false, true}, Variant{true, true}, Variant{false, false},
                                           Variant{true, false}, Variant{false, false, 4}),
                         [](const ::testing::TestParamInfo<Variant>& info) {
                           return std::string(info.param.tied ? "Tied" : "Untied") +
                                  (info.param.bias ? "Bias" : "NoBias") +
                                  (info.param.window > 0 ? "Window" + std::to_string(info.param.window) : "");
                         });

// ---------------------------------------------------------------- padding

TEST(TransformerLMTest, LeftPaddedRowsMatchRowsAlone) {
  auto m = make_model(tiny_config(), 5);
  torch::manual_seed(6);
  const std::vector<int64_t> lengths = {3, 7, 5};
  const int64_t steps = 4;
  std::vector<torch::Tensor> rows, prompts;
  for (const int64_t n : lengths) {
    rows.push_back(torch::randint(1, 50, {n + steps}, kLongOpts));
    prompts.push_back(rows.back().slice(0, 0, n));
  }
  const auto [ids, prompt_mask] = left_pad(prompts);
  const int64_t B = ids.size(0), Lp = ids.size(1);

  auto expect_rows_match = [&](const torch::Tensor& logits, const std::string& what) {
    EXPECT_TRUE(torch::isfinite(logits).all().item<bool>()) << what << ": pad positions must stay finite";
    for (int64_t i = 0; i < B; ++i) {
      const int64_t n = lengths[static_cast<size_t>(i)];
      EXPECT_TRUE(
          tensors_close(logits[i].slice(0, Lp - n), alone_logits(*m, prompts[static_cast<size_t>(i)]), 1e-5, 1e-5))
          << what << ", row " << i;
    }
  };
  expect_rows_match(full_logits(*m, ids, prompt_mask), "no cache");

  auto cache = m->make_cache(B, Lp + steps);
  torch::Tensor mask = prompt_mask;
  expect_rows_match(m->forward(ids, mask, grpo::positions_from_mask(mask, Lp), cache.get()), "prefill");
  for (int64_t s = 0; s < steps; ++s) {
    torch::Tensor next = torch::empty({B, 1}, kLongOpts);
    for (int64_t i = 0; i < B; ++i) next[i][0] = rows[static_cast<size_t>(i)][lengths[static_cast<size_t>(i)] + s];
    mask = torch::cat({mask, torch::ones({B, 1}, kLongOpts)}, 1);
    const torch::Tensor got = m->forward(next, mask, grpo::positions_from_mask(mask, 1), cache.get());
    for (int64_t i = 0; i < B; ++i) {
      const torch::Tensor alone = alone_logits(*m, rows[static_cast<size_t>(i)].slice(0, 0, lengths[i] + s + 1));
      EXPECT_TRUE(tensors_close(got[i][0], alone[-1], 1e-5, 1e-5)) << "decode step " << s << ", row " << i;
    }
  }
}

// ---------------------------------------------------------------- select_rows

TEST(TransformerLMTest, SelectRowsRepeatsPrefilledRows) {
  auto m = make_model(tiny_config(), 7);
  torch::manual_seed(8);
  const torch::Tensor p0 = torch::randint(1, 50, {4}, kLongOpts), p1 = torch::randint(1, 50, {6}, kLongOpts);
  const torch::Tensor next = torch::randint(1, 50, {4, 1}, kLongOpts);

  // Two prompts prefilled once, each row repeated twice.
  const auto [ids2, mask2] = left_pad({p0, p1});
  auto shared = m->make_cache(2, 8);
  m->forward(ids2, mask2, grpo::positions_from_mask(mask2, 6), shared.get());
  shared->select_rows(torch::tensor({0, 0, 1, 1}, kLongOpts));
  EXPECT_EQ(shared->batch_size(), 4);
  EXPECT_EQ(shared->length(), 6);
  const torch::Tensor mask4 =
      torch::cat({mask2.index_select(0, torch::tensor({0, 0, 1, 1}, kLongOpts)), torch::ones({4, 1}, kLongOpts)}, 1);
  const torch::Tensor got = m->forward(next, mask4, grpo::positions_from_mask(mask4, 1), shared.get());

  // The four rows prefilled separately.
  const auto [ids4, prompt_mask4] = left_pad({p0, p0, p1, p1});
  auto own = m->make_cache(4, 8);
  m->forward(ids4, prompt_mask4, grpo::positions_from_mask(prompt_mask4, 6), own.get());
  const torch::Tensor want = m->forward(next, mask4, grpo::positions_from_mask(mask4, 1), own.get());
  EXPECT_TRUE(tensors_close(got, want, 1e-5, 1e-5));

  // Rows in another order, and fewer of them.
  shared->select_rows(torch::tensor({3, 0}, torch::TensorOptions().dtype(torch::kInt32)));
  EXPECT_EQ(shared->batch_size(), 2);
  auto* kv = dynamic_cast<grpo::TransformerKVCache*>(shared.get());
  ASSERT_NE(kv, nullptr);
  auto* kv_own = dynamic_cast<grpo::TransformerKVCache*>(own.get());
  EXPECT_TRUE(tensors_close(kv->keys(1).slice(2, 0, 7)[0], kv_own->keys(1).slice(2, 0, 7)[3], 1e-6, 1e-6));

  expect_grpo_error(
      [&] {
        shared->select_rows(torch::tensor({0, 2}, kLongOpts));
      },
      {"select_rows", "row 2", "batch_size = 2"}, "row out of range");
  expect_grpo_error([&] { shared->select_rows(torch::tensor({-1}, kLongOpts)); }, {"-1"}, "negative row");
  expect_grpo_error([&] { shared->select_rows(torch::zeros({1, 1}, kLongOpts)); }, {"1-D integer"}, "2-D index");
  expect_grpo_error([&] { shared->select_rows(torch::zeros({1})); }, {"1-D integer"}, "float index");
}

// ---------------------------------------------------------------- names and init

std::vector<std::string> hf_names(int64_t layers, bool tied, bool bias) {
  std::vector<std::string> names = {"model.embed_tokens.weight"};
  for (int64_t l = 0; l < layers; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
      names.push_back(pre + "self_attn." + proj + ".weight");
      if (bias) names.push_back(pre + "self_attn." + proj + ".bias");
    }
    names.push_back(pre + "self_attn.o_proj.weight");
    for (const char* proj : {"gate_proj", "up_proj", "down_proj"}) names.push_back(pre + "mlp." + proj + ".weight");
    names.push_back(pre + "input_layernorm.weight");
    names.push_back(pre + "post_attention_layernorm.weight");
  }
  names.push_back("model.norm.weight");
  if (!tied) names.push_back("lm_head.weight");
  return names;
}

TEST(TransformerLMTest, ParameterNamesAreHuggingFaceLlama) {
  for (const bool tied : {false, true}) {
    for (const bool bias : {false, true}) {
      SCOPED_TRACE(std::string(tied ? "tied" : "untied") + (bias ? ", bias" : ", no bias"));
      TransformerConfig c = tiny_config(tied, bias);
      c.num_layers = 3;
      TransformerLM m(c);
      EXPECT_EQ(m.named_parameters().keys(), hf_names(3, tied, bias));
      EXPECT_TRUE(m.named_buffers().is_empty());
      const torch::Tensor embed = m.named_parameters()["model.embed_tokens.weight"];
      EXPECT_EQ(m.output_weight().is_same(embed), tied);
    }
  }
}

TEST(TransformerLMTest, ParameterShapesWithExplicitHeadDim) {
  TransformerConfig c = tiny_config(false, true);
  c.head_dim = 16;  // 4 heads · 16 = 64 != hidden 32
  c.intermediate_size = 48;
  TransformerLM m(c);
  auto P = m.named_parameters();
  using Sizes = std::vector<int64_t>;
  EXPECT_EQ(P["model.embed_tokens.weight"].sizes().vec(), (Sizes{50, 32}));
  EXPECT_EQ(P["model.layers.0.self_attn.q_proj.weight"].sizes().vec(), (Sizes{64, 32}));
  EXPECT_EQ(P["model.layers.0.self_attn.q_proj.bias"].sizes().vec(), (Sizes{64}));
  EXPECT_EQ(P["model.layers.0.self_attn.k_proj.weight"].sizes().vec(), (Sizes{32, 32}));
  EXPECT_EQ(P["model.layers.0.self_attn.v_proj.bias"].sizes().vec(), (Sizes{32}));
  EXPECT_EQ(P["model.layers.0.self_attn.o_proj.weight"].sizes().vec(), (Sizes{32, 64}));
  EXPECT_EQ(P["model.layers.1.mlp.gate_proj.weight"].sizes().vec(), (Sizes{48, 32}));
  EXPECT_EQ(P["model.layers.1.mlp.up_proj.weight"].sizes().vec(), (Sizes{48, 32}));
  EXPECT_EQ(P["model.layers.1.mlp.down_proj.weight"].sizes().vec(), (Sizes{32, 48}));
  EXPECT_EQ(P["model.layers.1.input_layernorm.weight"].sizes().vec(), (Sizes{32}));
  EXPECT_EQ(P["model.norm.weight"].sizes().vec(), (Sizes{32}));
  EXPECT_EQ(P["lm_head.weight"].sizes().vec(), (Sizes{50, 32}));
  const torch::Tensor ids = torch::randint(0, 50, {2, 3}, kLongOpts);
  EXPECT_EQ(full_logits(m, ids, torch::ones_like(ids)).sizes().vec(), (Sizes{2, 3, 50}));
  EXPECT_EQ(m.hidden_states(ids, torch::ones_like(ids), torch::zeros_like(ids), nullptr).sizes().vec(),
            (Sizes{2, 3, 32}));
  // No new positions: an empty result, with or without a cache.
  const torch::Tensor none = torch::zeros({2, 0}, kLongOpts);
  EXPECT_EQ(full_logits(m, none, none).sizes().vec(), (Sizes{2, 0, 50}));
  auto cache = m.make_cache(2, 4);
  m.forward(ids, torch::ones_like(ids), torch::zeros_like(ids), cache.get());
  EXPECT_EQ(m.forward(none, torch::ones_like(ids), none, cache.get()).sizes().vec(), (Sizes{2, 0, 50}));
  EXPECT_EQ(cache->length(), 3);
}

TEST(TransformerLMTest, InitializationIsSeededAndHuggingFaceLike) {
  torch::manual_seed(11);
  TransformerLM a(tiny_config());
  torch::manual_seed(11);
  TransformerLM b(tiny_config());
  auto pa = a.named_parameters(), pb = b.named_parameters();
  for (const auto& item : pa) {
    const torch::Tensor& p = item.value();
    EXPECT_TRUE(torch::equal(p, pb[item.key()])) << item.key();
    EXPECT_TRUE(p.requires_grad()) << item.key();
    if (item.key().find("norm") != std::string::npos) {
      EXPECT_TRUE(torch::equal(p, torch::ones_like(p))) << item.key();
    } else if (p.dim() == 1) {
      EXPECT_TRUE(torch::equal(p, torch::zeros_like(p))) << item.key();
    } else {
      const double std = p.std().item<double>();
      EXPECT_NEAR(std, 0.02, 0.004) << item.key();
    }
  }
}

// ---------------------------------------------------------------- config JSON

TEST(TransformerConfigTest, JsonRoundTrip) {
  TransformerConfig c;
  c.vocab_size = 151936;
  c.hidden_size = 896;
  c.intermediate_size = 4864;
  c.num_layers = 24;
  c.num_heads = 14;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.rope_theta = 1000000.0;
  c.rms_norm_eps = 1e-6;
  c.max_position_embeddings = 32768;
  c.tie_word_embeddings = true;
  c.attention_bias = true;
  const nlohmann::json j = c.to_json();
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"attention_bias", "head_dim", "hidden_size", "intermediate_size",
                                            "max_position_embeddings", "num_attention_heads", "num_hidden_layers",
                                            "num_key_value_heads", "o_proj_bias", "qk_norm", "rms_norm_eps",
                                            "rope_scaling", "rope_theta", "sliding_window", "tie_word_embeddings",
                                            "vocab_size"}));
  EXPECT_TRUE(j["rope_scaling"].is_null());
  EXPECT_TRUE(j["sliding_window"].is_null());
  const TransformerConfig back = TransformerConfig::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(back.to_json(), j);
  EXPECT_EQ(back.vocab_size, 151936);
  EXPECT_EQ(back.num_layers, 24);
  EXPECT_EQ(back.num_heads, 14);
  EXPECT_EQ(back.num_kv_heads, 2);
  EXPECT_EQ(back.head_dim, 64);
  EXPECT_EQ(back.rope_theta, 1000000.0);
  EXPECT_EQ(back.rms_norm_eps, 1e-6);
  EXPECT_TRUE(back.tie_word_embeddings);
  EXPECT_TRUE(back.attention_bias);

  // 0 = derived: to_json writes the derived values, which read back the same.
  TransformerConfig d = tiny_config();
  d.num_kv_heads = 0;
  EXPECT_EQ(d.to_json()["num_key_value_heads"], 4);
  EXPECT_EQ(d.to_json()["head_dim"], 8);
  EXPECT_EQ(TransformerConfig::from_json(d.to_json()).to_json(), d.to_json());
  // Missing keys keep the defaults; null head dims mean "derive".
  const TransformerConfig partial =
      TransformerConfig::from_json({{"hidden_size", 64}, {"num_attention_heads", 8}, {"head_dim", nullptr}});
  EXPECT_EQ(partial.dim_per_head(), 8);
  EXPECT_EQ(partial.kv_heads(), 8);
  EXPECT_EQ(partial.vocab_size, TransformerConfig{}.vocab_size);
}

TEST(TransformerConfigTest, HuggingFaceConfigFileNeedsNonStrict) {
  // Qwen2.5-0.5B's config.json.
  const nlohmann::json hf = nlohmann::json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
    "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 24,
    "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
    "torch_dtype": "bfloat16", "transformers_version": "4.40.1", "use_cache": true, "use_sliding_window": false,
    "vocab_size": 151936, "rope_scaling": null, "use_mrope": false})");
  expect_grpo_error([&] { TransformerConfig::from_json(hf); }, {"unknown key", "TransformerConfig.architectures:"},
                    "strict");
  const TransformerConfig c = TransformerConfig::from_json(hf, /*strict=*/false);
  EXPECT_EQ(c.hidden_size, 896);
  EXPECT_EQ(c.num_layers, 24);
  EXPECT_EQ(c.num_heads, 14);
  EXPECT_EQ(c.kv_heads(), 2);
  EXPECT_EQ(c.dim_per_head(), 64);
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);  // Qwen2 files do not say; a loader sets it

  // Keys that would change the network are checked even when not strict.
  struct Fixed {
    std::string key;
    nlohmann::json value;
    std::string needle;
  };
  const std::vector<Fixed> fixed = {{"hidden_act", "gelu", "silu"},
                                    {"partial_rotary_factor", 0.5, "1"},
                                    {"mlp_bias", true, "false"},
                                    {"use_sliding_window", true, "false"}};
  for (const Fixed& f : fixed) {
    nlohmann::json j = hf;
    j[f.key] = f.value;
    expect_grpo_error([&] { TransformerConfig::from_json(j, false); }, {"TransformerConfig." + f.key + ":", f.needle}, f.key);
  }
}

TEST(TransformerConfigTest, FromJsonErrorsNameTheKey) {
  const nlohmann::json base = tiny_config().to_json();
  auto with = [&](const std::string& key, const nlohmann::json& v) {
    nlohmann::json j = base;
    j[key] = v;
    return j;
  };
  expect_grpo_error([&] { TransformerConfig::from_json(with("hiden_size", 32)); }, {"unknown key", "TransformerConfig.hiden_size:"},
                    "misspelt key");
  EXPECT_NO_THROW(TransformerConfig::from_json(with("hiden_size", 32), /*strict=*/false));
  expect_grpo_error([&] { TransformerConfig::from_json(nlohmann::json::array()); }, {"object"}, "not an object");

  // Wrong types.
  expect_grpo_error([&] { TransformerConfig::from_json(with("hidden_size", "32")); },
                    {"TransformerConfig.hidden_size:", "integer", "\"32\""}, "string for an integer");
  expect_grpo_error([&] { TransformerConfig::from_json(with("num_hidden_layers", 2.5)); },
                    {"TransformerConfig.num_hidden_layers:", "integer"}, "float for an integer");
  expect_grpo_error([&] { TransformerConfig::from_json(with("rope_theta", "big")); }, {"TransformerConfig.rope_theta:", "number"},
                    "string for a number");
  expect_grpo_error([&] { TransformerConfig::from_json(with("tie_word_embeddings", 1)); },
                    {"TransformerConfig.tie_word_embeddings:", "true or false"}, "integer for a bool");
  expect_grpo_error([&] { TransformerConfig::from_json(with("vocab_size", nullptr)); }, {"TransformerConfig.vocab_size:"},
                    "null vocab");
  expect_grpo_error([&] { TransformerConfig::from_json(with("hidden_size", 18446744073709551615ull)); },
                    {"TransformerConfig.hidden_size:", "int64"}, "huge");

  // Bad values, through validate(): the message names the field and its JSON key.
  expect_grpo_error([&] { TransformerConfig::from_json(with("num_key_value_heads", 3)); },
                    {"num_kv_heads", "num_key_value_heads", "must divide num_heads = 4", "got 3"}, "kv heads");
  expect_grpo_error([&] { TransformerConfig::from_json(with("num_attention_heads", 0)); },
                    {"num_heads", "num_attention_heads", "positive", "got 0"}, "no heads");
  expect_grpo_error([&] { TransformerConfig::from_json(with("head_dim", 5)); }, {"head_dim", "even", "got 5"},
                    "odd head_dim");
  expect_grpo_error([&] { TransformerConfig::from_json(with("vocab_size", -3)); }, {"vocab_size", "got -3"},
                    "negative vocab");
  expect_grpo_error([&] { TransformerConfig::from_json(with("rms_norm_eps", 0.0)); }, {"rms_norm_eps", "positive"},
                    "zero eps");
  expect_grpo_error([&] { TransformerConfig::from_json(with("rope_theta", -1.0)); }, {"rope_theta", "got -1"},
                    "negative theta");
  expect_grpo_error([&] { TransformerConfig::from_json(with("max_position_embeddings", 0)); },
                    {"max_position_embeddings", "positive"}, "no positions");
  nlohmann::json indivisible = with("hidden_size", 30);
  indivisible.erase("head_dim");
  expect_grpo_error([&] { TransformerConfig::from_json(indivisible); }, {"hidden_size", "multiple of num_heads"},
                    "hidden not a multiple of heads");
  // The constructor validates too.
  TransformerConfig odd = tiny_config();
  odd.hidden_size = 24;  // 24 / 4 = 6 is even, 2 kv heads: fine
  EXPECT_NO_THROW(TransformerLM{odd});
  odd.hidden_size = 20;  // 20 / 4 = 5
  expect_grpo_error([&] { TransformerLM m(odd); }, {"head_dim", "even"}, "constructor");
}

// ---------------------------------------------------------------- Hugging Face configs

TEST(TransformerConfigTest, RopeScalingRoundTripsAndIsValidated) {
  TransformerConfig c = tiny_config();
  grpo::RopeScaling r;
  r.rope_type = "llama3";
  r.factor = 8.0;
  r.original_max_position_embeddings = 16;
  c.rope_scaling = r;
  const TransformerConfig back = TransformerConfig::from_json(nlohmann::json::parse(c.to_json().dump()));
  ASSERT_TRUE(back.rope_scaling.has_value());
  EXPECT_EQ(back.rope_scaling->rope_type, "llama3");
  EXPECT_EQ(back.rope_scaling->factor, 8.0);
  EXPECT_EQ(back.rope_scaling->original_max_position_embeddings, 16);
  EXPECT_EQ(back.to_json(), c.to_json());

  auto with_scaling = [&](const nlohmann::json& scaling) {
    nlohmann::json j = tiny_config().to_json();
    j["rope_scaling"] = scaling;
    return j;
  };
  expect_grpo_error([&] { TransformerConfig::from_json(with_scaling({{"rope_type", "longrope"}, {"factor", 2.0}})); },
                    {"TransformerConfig.rope_scaling.rope_type", "longrope", "llama3"}, "unknown type");
  expect_grpo_error([&] { TransformerConfig::from_json(with_scaling({{"rope_type", "linear"}})); },
                    {"rope_scaling.factor", "required"}, "no factor");
  expect_grpo_error([&] { TransformerConfig::from_json(with_scaling({{"rope_type", "dynamic"}, {"factor", 0.5}})); },
                    {"rope_scaling.factor", ">= 1", "0.5"}, "factor below 1");
  expect_grpo_error([&] { TransformerConfig::from_json(with_scaling({{"rope_type", "yarn"}, {"factr", 2.0}})); },
                    {"TransformerConfig.rope_scaling.factr", "unknown key"}, "misspelt key");
  expect_grpo_error(
      [&] {
        TransformerConfig::from_json(
            with_scaling({{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 4.0}, {"high_freq_factor", 1.0}}));
      },
      {"high_freq_factor", "above low_freq_factor"}, "llama3 factors reversed");
  // Dynamic scaling extends the positions the model accepts.
  EXPECT_EQ(TransformerConfig::from_json(with_scaling({{"rope_type", "dynamic"}, {"factor", 2.5}})).max_positions(),
            static_cast<int64_t>(tiny_config().max_position_embeddings * 2.5));
  EXPECT_EQ(TransformerConfig::from_json(with_scaling({{"rope_type", "linear"}, {"factor", 2.5}})).max_positions(),
            tiny_config().max_position_embeddings);
}

TEST(TransformerConfigTest, FromPretrainedReadsEveryFamily) {
  const nlohmann::json base = {{"hidden_size", 32}, {"intermediate_size", 64}, {"num_hidden_layers", 2},
                               {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"vocab_size", 64},
                               {"max_position_embeddings", 128}};
  auto hf = [&](const std::string& model_type, nlohmann::json extra) {
    nlohmann::json j = base;
    j["model_type"] = model_type;
    for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
    return j;
  };
  // Llama 3.1's legacy form and transformers 5's rope_parameters give one config.
  const nlohmann::json scaling = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                                  {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  const TransformerConfig legacy =
      grpo::config_from_pretrained(hf("llama", {{"rope_theta", 500000.0}, {"rope_scaling", scaling}}));
  nlohmann::json params = scaling;
  params["rope_theta"] = 500000.0;
  const TransformerConfig v5 = grpo::config_from_pretrained(hf("llama", {{"rope_parameters", params}}));
  EXPECT_EQ(legacy.to_json(), v5.to_json());
  EXPECT_EQ(v5.rope_theta, 500000.0);
  ASSERT_TRUE(v5.rope_scaling);
  EXPECT_EQ(v5.rope_scaling->rope_type, "llama3");
  // The older "type" key, and "default" as no scaling.
  nlohmann::json typed = scaling;
  typed.erase("rope_type");
  typed["type"] = "llama3";
  EXPECT_EQ(grpo::config_from_pretrained(hf("llama", {{"rope_theta", 500000.0}, {"rope_scaling", typed}})).to_json(),
            legacy.to_json());
  EXPECT_FALSE(grpo::config_from_pretrained(
                   hf("llama", {{"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 1e4}}}}))
                   .rope_scaling);

  // Llama's attention_bias covers o_proj; Qwen2 has q/k/v biases only; Qwen3 has q/k norms.
  const TransformerConfig llama = grpo::config_from_pretrained(hf("llama", {{"attention_bias", true}}));
  EXPECT_TRUE(llama.attention_bias && llama.o_proj_bias && !llama.qk_norm);
  const TransformerConfig qwen2 = grpo::config_from_pretrained(
      hf("qwen2", {{"sliding_window", 32}, {"use_sliding_window", false}, {"layer_types", {"full_attention", "full_attention"}}}));
  EXPECT_TRUE(qwen2.attention_bias && !qwen2.o_proj_bias && !qwen2.qk_norm);
  EXPECT_EQ(qwen2.sliding_window, 0);  // inert without use_sliding_window
  const TransformerConfig qwen3 = grpo::config_from_pretrained(hf("qwen3", {{"head_dim", 16}, {"attention_bias", false}}));
  EXPECT_TRUE(qwen3.qk_norm && !qwen3.attention_bias && !qwen3.o_proj_bias);
  EXPECT_EQ(qwen3.dim_per_head(), 16);
  // Mistral keeps its window and its whole context.
  const TransformerConfig mistral = grpo::config_from_pretrained(hf("mistral", {{"sliding_window", 16}}));
  EXPECT_EQ(mistral.sliding_window, 16);
  EXPECT_EQ(mistral.max_position_embeddings, 128);
  EXPECT_EQ(grpo::config_from_pretrained(hf("mistral", {{"sliding_window", nullptr}})).sliding_window, 0);

  // What the model cannot compute is refused by name.
  expect_grpo_error([&] { grpo::config_from_pretrained(hf("qwen2", {{"layer_types", {"sliding_attention", "full_attention"}}})); },
                    {"layer_types", "sliding_attention"}, "Qwen2 sliding layers");
  expect_grpo_error([&] { grpo::config_from_pretrained(hf("qwen3", {{"use_sliding_window", true}})); },
                    {"use_sliding_window", "false"}, "Qwen3 sliding window");
  expect_grpo_error(
      [&] { grpo::config_from_pretrained(hf("llama", {{"rope_parameters", {{"rope_type", "longrope"}, {"factor", 2.0}}}})); },
      {"rope_scaling.rope_type", "longrope"}, "longrope");
  expect_grpo_error(
      [&] {
        grpo::config_from_pretrained(
            hf("llama", {{"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 1e4}, {"partial_rotary_factor", 0.5}}}}));
      },
      {"partial_rotary_factor", "1"}, "partial rotary");
  expect_grpo_error([&] { grpo::config_from_pretrained(hf("gemma", {})); }, {"gemma", "Qwen3ForCausalLM"}, "unknown family");
}

TEST(TransformerConfigTest, HfConfigIsTheInverse) {
  std::vector<TransformerConfig> configs;
  TransformerConfig c = tiny_config(false, false);
  configs.push_back(c);  // Llama
  c.attention_bias = c.o_proj_bias = true;
  configs.push_back(c);  // Llama with attention_bias
  c = tiny_config(true, true);
  configs.push_back(c);  // Qwen2
  c = tiny_config(true, false);
  c.qk_norm = true;
  c.head_dim = 16;
  configs.push_back(c);  // Qwen3
  c = tiny_config(false, false);
  c.sliding_window = 8;
  configs.push_back(c);  // Mistral
  c = tiny_config(false, false);
  grpo::RopeScaling yarn;
  yarn.rope_type = "yarn";
  yarn.factor = 4.0;
  yarn.original_max_position_embeddings = 8;
  yarn.attention_factor = 1.2;
  c.rope_scaling = yarn;
  configs.push_back(c);  // Llama with yarn
  for (const TransformerConfig& config : configs) {
    const nlohmann::json hf = grpo::hf_config(config);
    SCOPED_TRACE(hf.dump());
    EXPECT_EQ(grpo::config_from_pretrained(hf).to_json(), config.to_json());
  }
  EXPECT_EQ(grpo::hf_config(configs[2])["architectures"][0], "Qwen2ForCausalLM");
  EXPECT_EQ(grpo::hf_config(configs[3])["architectures"][0], "Qwen3ForCausalLM");
  EXPECT_EQ(grpo::hf_config(configs[4])["architectures"][0], "MistralForCausalLM");
  TransformerConfig lone = tiny_config(false, false);
  lone.o_proj_bias = true;
  expect_grpo_error([&] { grpo::hf_config(lone); }, {"o_proj bias", "no Hugging Face architecture"}, "o_proj bias alone");
}

// ---------------------------------------------------------------- clone

TEST(TransformerLMTest, CloneIsDeep) {
  auto m = make_model(tiny_config(), 9);
  m->named_parameters()["model.norm.weight"].requires_grad_(false);
  m->eval();
  torch::manual_seed(10);
  const torch::Tensor ids = torch::randint(0, 50, {2, 6}, kLongOpts);
  const torch::Tensor mask = torch::ones_like(ids);
  const torch::Tensor before = full_logits(*m, ids, mask).detach();

  torch::manual_seed(12);
  std::shared_ptr<grpo::CausalLM> copy = m->clone();
  const torch::Tensor after_clone = torch::randn({4});
  torch::manual_seed(12);
  EXPECT_TRUE(torch::equal(after_clone, torch::randn({4}))) << "clone drew from the global generator";

  auto* c = dynamic_cast<TransformerLM*>(copy.get());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->config().to_json(), m->config().to_json());
  EXPECT_FALSE(c->is_training());
  auto src = m->named_parameters(), dst = c->named_parameters();
  ASSERT_EQ(dst.keys(), src.keys());
  for (const auto& item : src) {
    const torch::Tensor& d = dst[item.key()];
    EXPECT_TRUE(torch::equal(d, item.value())) << item.key();
    EXPECT_NE(d.data_ptr(), item.value().data_ptr()) << item.key();
    EXPECT_EQ(d.requires_grad(), item.value().requires_grad()) << item.key();
  }
  EXPECT_TRUE(tensors_close(full_logits(*c, ids, mask), before, 0, 0));

  {
    torch::NoGradGuard no_grad;
    for (auto& p : c->parameters()) p.add_(0.5);
  }
  EXPECT_TRUE(tensors_close(full_logits(*m, ids, mask), before, 0, 0)) << "changing the clone changed the original";
  EXPECT_FALSE(torch::allclose(full_logits(*c, ids, mask), before));

  // torch::nn::Module's clone gives the same kind of copy.
  std::shared_ptr<torch::nn::Module> as_module =
      static_cast<const torch::nn::Module&>(*m).clone(torch::Device(torch::kCPU));
  auto* c2 = dynamic_cast<TransformerLM*>(as_module.get());
  ASSERT_NE(c2, nullptr);
  EXPECT_TRUE(tensors_close(full_logits(*c2, ids, mask), before, 0, 0));
}

// ---------------------------------------------------------------- dtypes, gradients

TEST(TransformerLMTest, BFloat16RunsWithItsOwnCache) {
  auto m = make_model(tiny_config(), 13);
  torch::manual_seed(14);
  const torch::Tensor ids = torch::randint(0, 50, {2, 6}, kLongOpts);
  const torch::Tensor mask = torch::ones_like(ids);
  const torch::Tensor want = full_logits(*m, ids, mask).detach();
  m->to(torch::kBFloat16);
  torch::NoGradGuard no_grad;
  auto cache = m->make_cache(2, 6);
  EXPECT_EQ(dynamic_cast<grpo::TransformerKVCache*>(cache.get())->keys(0).scalar_type(), torch::kBFloat16);
  const torch::Tensor prefill = m->forward(ids.slice(1, 0, 5), mask.slice(1, 0, 5),
                                           grpo::positions_from_mask(mask.slice(1, 0, 5), 5), cache.get());
  const torch::Tensor step = m->forward(ids.slice(1, 5), mask, grpo::positions_from_mask(mask, 1), cache.get());
  const torch::Tensor got = torch::cat({prefill, step}, 1);
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::isfinite(got).all().item<bool>());
  EXPECT_LT((got.to(torch::kFloat32) - want).abs().max().item<double>(), 0.1 * want.abs().max().item<double>());
}

TEST(TransformerLMTest, GradientsFlowWithAndWithoutCache) {
  auto m = make_model(tiny_config(true, true), 15);
  torch::manual_seed(16);
  const torch::Tensor ids = torch::randint(0, 50, {2, 5}, kLongOpts);
  const torch::Tensor mask = torch::ones_like(ids);
  full_logits(*m, ids, mask).logsumexp(-1).sum().backward();
  for (const auto& item : m->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_TRUE(torch::isfinite(item.value().grad()).all().item<bool>()) << item.key();
    EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0.0) << item.key();
  }
  // Decoding with grad on: each step's graph survives the next step's cache write.
  m->zero_grad();
  auto cache = m->make_cache(2, 5);
  torch::Tensor loss = m->forward(ids.slice(1, 0, 3), mask.slice(1, 0, 3),
                                  grpo::positions_from_mask(mask.slice(1, 0, 3), 3), cache.get())
                           .sum();
  for (int64_t t = 3; t < 5; ++t) {
    const torch::Tensor seen = mask.slice(1, 0, t + 1);
    loss = loss + m->forward(ids.slice(1, t, t + 1), seen, grpo::positions_from_mask(seen, 1), cache.get()).sum();
  }
  EXPECT_NO_THROW(loss.backward());
}

// ---------------------------------------------------------------- bad input

class NotATransformerCache : public grpo::KVCache {
 public:
  int64_t length() const override { return 0; }
  int64_t batch_size() const override { return 1; }
  void select_rows(const torch::Tensor&) override {}
};

TEST(TransformerLMTest, BadInputsRaiseNamedErrors) {
  TransformerConfig c = tiny_config();
  c.max_position_embeddings = 8;
  auto m = make_model(c, 17);
  const torch::Tensor ids = torch::randint(0, 50, {2, 4}, kLongOpts);
  const torch::Tensor mask = torch::ones_like(ids);
  const torch::Tensor pos = grpo::positions_from_mask(mask, 4);
  auto run = [&](const torch::Tensor& i, const torch::Tensor& am, const torch::Tensor& p, grpo::KVCache* kv = nullptr) {
    return [&m, i, am, p, kv] { m->forward(i, am, p, kv); };
  };

  torch::Tensor big = ids.clone();
  big[1][2] = 57;
  expect_grpo_error(run(big, mask, pos), {"ids", "57", "vocab_size = 50"}, "id >= vocab");
  torch::Tensor negative = ids.clone();
  negative[0][0] = -2;
  expect_grpo_error(run(negative, mask, pos), {"ids", "-2", "vocab_size = 50"}, "negative id");
  expect_grpo_error(run(ids.to(torch::kInt32), mask, pos), {"ids", "int64", "Int"}, "int32 ids");
  expect_grpo_error(run(ids.flatten(), mask, pos), {"ids", "(B, T)"}, "1-D ids");
  expect_grpo_error(run(ids, mask.slice(1, 1), pos), {"attention_mask", "(2, 4)", "[2, 3]"}, "short mask");
  expect_grpo_error(run(ids, mask.slice(0, 1), pos), {"attention_mask", "(2, 4)"}, "mask rows");
  expect_grpo_error(run(ids, torch::Tensor(), pos), {"attention_mask", "undefined"}, "no mask");
  expect_grpo_error(run(ids, mask, pos.slice(1, 1)), {"positions", "(2, 4)"}, "positions shape");
  expect_grpo_error(run(ids, mask, pos.to(torch::kFloat32)), {"positions", "int64"}, "float positions");
  expect_grpo_error(run(ids, mask, pos + 6), {"positions", "9", "max_position_embeddings = 8"}, "position too far");

  // Longer than max_position_embeddings, with and without a cache.
  const torch::Tensor long_ids = torch::randint(0, 50, {1, 9}, kLongOpts);
  expect_grpo_error(run(long_ids, torch::ones_like(long_ids), torch::arange(9, kLongOpts).view({1, 9})),
                    {"9 positions", "max_position_embeddings = 8"}, "too long");
  auto roomy = m->make_cache(1, 12);
  m->forward(long_ids.slice(1, 0, 6), torch::ones({1, 6}, kLongOpts), torch::arange(6, kLongOpts).view({1, 6}),
             roomy.get());
  expect_grpo_error(run(long_ids.slice(1, 6), torch::ones({1, 9}, kLongOpts),
                        torch::arange(6, 9, kLongOpts).view({1, 3}), roomy.get()),
                    {"6 cached + 3 new", "max_position_embeddings = 8"}, "too long with a cache");
  EXPECT_EQ(roomy->length(), 6) << "a failed call must leave the cache as it was";

  // Cache overflow, then the cache still works.
  auto small = m->make_cache(2, 5);
  m->forward(ids, mask, pos, small.get());
  const torch::Tensor two = ids.slice(1, 0, 2);
  const torch::Tensor mask6 = torch::ones({2, 6}, kLongOpts);
  expect_grpo_error(run(two, mask6, grpo::positions_from_mask(mask6, 2), small.get()),
                    {"cache overflow", "max_length = 5"}, "cache overflow");
  EXPECT_EQ(small->length(), 4);
  const torch::Tensor mask5 = torch::ones({2, 5}, kLongOpts);
  EXPECT_NO_THROW(m->forward(ids.slice(1, 0, 1), mask5, grpo::positions_from_mask(mask5, 1), small.get()));
  EXPECT_EQ(small->length(), 5);

  // A cache of the wrong size or kind; a mask that forgets the cached positions.
  auto three_rows = m->make_cache(3, 8);
  expect_grpo_error(run(ids, mask, pos, three_rows.get()), {"cache holds 3 rows", "B = 2"}, "cache rows");
  NotATransformerCache foreign;
  expect_grpo_error(run(ids.slice(0, 0, 1), mask.slice(0, 0, 1), pos.slice(0, 0, 1), &foreign), {"make_cache"},
                    "foreign cache");
  TransformerConfig wide = tiny_config();
  wide.num_kv_heads = 4;
  auto wide_cache = TransformerLM(wide).make_cache(2, 8);
  expect_grpo_error(run(ids, mask, pos, wide_cache.get()), {"another model shape"}, "cache of another shape");
  auto fresh = m->make_cache(2, 8);
  m->forward(ids, mask, pos, fresh.get());
  expect_grpo_error(run(ids.slice(1, 0, 1), mask.slice(1, 0, 1), pos.slice(1, 0, 1), fresh.get()),
                    {"attention_mask", "(2, 5)"}, "mask without the cached positions");
  expect_grpo_error([&] { m->make_cache(-1, 4); }, {"make_cache", "-1"}, "negative batch");
}

}  // namespace
