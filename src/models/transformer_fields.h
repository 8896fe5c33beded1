// TransformerConfig's JSON keys, listed once (internal): the Hugging Face
// names, read and written by the shared reader (json_fields.h) for the model's
// own from_json and for a run config's "model.config" section.
#pragma once

#include "grpo/models/transformer.h"
#include "json_fields.h"

namespace grpo::json_fields {

template <class V>
void fields(V& v, RopeScaling& r) {
  v("rope_type", r.rope_type);
  v("factor", r.factor);
  v.int_or_null("original_max_position_embeddings", r.original_max_position_embeddings);
  v("low_freq_factor", r.low_freq_factor);
  v("high_freq_factor", r.high_freq_factor);
  v("beta_fast", r.beta_fast);
  v("beta_slow", r.beta_slow);
  v("mscale", r.mscale);
  v("mscale_all_dim", r.mscale_all_dim);
  v("attention_factor", r.attention_factor);
  v("truncate", r.truncate);
}

template <class V>
void fields(V& v, TransformerConfig& c) {
  v("vocab_size", c.vocab_size);
  v("hidden_size", c.hidden_size);
  v("intermediate_size", c.intermediate_size);
  v("num_hidden_layers", c.num_layers);
  v("num_attention_heads", c.num_heads);
  v.int_or_null("num_key_value_heads", c.num_kv_heads);
  v.int_or_null("head_dim", c.head_dim);
  v("rope_theta", c.rope_theta);
  v("rms_norm_eps", c.rms_norm_eps);
  v("max_position_embeddings", c.max_position_embeddings);
  v("tie_word_embeddings", c.tie_word_embeddings);
  v("attention_bias", c.attention_bias);
  v("o_proj_bias", c.o_proj_bias);
  v("qk_norm", c.qk_norm);
  v.int_or_null("sliding_window", c.sliding_window);
  v.optional_section("rope_scaling", c.rope_scaling);
  // NB: these keys change the network; ignoring them would load a model that
  // computes something else, so even lenient reading checks them.
  v.fixed("hidden_act", [](const nlohmann::json& x) { return x == "silu"; }, "\"silu\" (SwiGLU)");
  v.fixed("mlp_bias", [](const nlohmann::json& x) { return x == false; }, "false (the MLP has no bias)");
  v.fixed("partial_rotary_factor", [](const nlohmann::json& x) { return x.is_null() || x == 1.0; },
          "1 (RoPE turns every dimension)");
  v.fixed("use_sliding_window", [](const nlohmann::json& x) { return x == false; },
          "false (attention is always full)");
}

}  // namespace grpo::json_fields
