// ModelRegistry: the built-in architecture by name and by Hugging Face name,
// the errors that name what is wrong, and a user's own architecture that
// checkpoints save and load_model builds again with no other code.
#include <grpo/error.h>
#include <grpo/models/registry.h>
#include <grpo/models/transformer.h>
#include <grpo/train/checkpoint.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "test_util.h"
#include "tiny_models.h"

namespace {

using grpo::ModelArchitecture;
using grpo::ModelRegistry;
using nlohmann::json;

// A user's model that says how to build it again: MeanLM with its sizes as config.
struct RegisteredMeanLM : grpo_test::MeanLM {
  RegisteredMeanLM(int64_t V, int64_t H, int64_t max_len) : MeanLM(V, H, max_len), hidden_(H) {}
  json architecture() const override {
    return {{"type", "test_mean_lm"}, {"config", {{"vocab", V_}, {"hidden", hidden_}, {"max_len", max_len_}}}};
  }
  int64_t hidden_;
};

ModelArchitecture mean_lm_architecture() {
  ModelArchitecture a;
  a.create = [](const json& c, bool, const std::string&) -> std::shared_ptr<grpo::CausalLM> {
    return std::make_shared<RegisteredMeanLM>(c.at("vocab").get<int64_t>(), c.at("hidden").get<int64_t>(),
                                              c.at("max_len").get<int64_t>());
  };
  return a;
}

}  // namespace

TEST(ModelRegistry, BuiltInTransformerByNameAndHuggingFaceName) {
  ModelRegistry& r = ModelRegistry::global();
  EXPECT_TRUE(r.contains("transformer"));
  const grpo::TransformerConfig c = grpo_test::tiny_transformer_config();
  auto model = r.create("transformer", c.to_json(), /*initialize=*/true, "here");
  auto* lm = dynamic_cast<grpo::TransformerLM*>(model.get());
  ASSERT_NE(lm, nullptr);
  EXPECT_EQ(lm->config().to_json(), c.to_json());
  EXPECT_EQ(model->architecture(), (json{{"type", "transformer"}, {"config", c.to_json()}}));

  for (const json& hf : {json{{"architectures", {"Qwen2ForCausalLM"}}}, json{{"model_type", "llama"}},
                         json{{"model_type", "mistral"}}}) {
    EXPECT_EQ(r.for_hf_config(hf, "config.json").first, "transformer") << hf.dump();
  }
  EXPECT_HAS(error_of([&] { r.for_hf_config(json{{"architectures", {"GPT2LMHeadModel"}}}, "x/config.json"); }),
             "x/config.json: architecture \"GPT2LMHeadModel\" is not supported (known: LlamaForCausalLM,");
  EXPECT_HAS(error_of([] { grpo::hf_architecture_name(json{{"architectures", {"A", "B"}}}, "y/config.json"); }),
             "y/config.json: \"architectures\" must be a list of one name");
  EXPECT_HAS(error_of([] { grpo::hf_architecture_name(json::array(), "z/config.json"); }),
             "z/config.json: expected a JSON object");
  EXPECT_EQ(grpo::hf_architecture_name(json{{"torch_dtype", "bfloat16"}}, "c"), "");
  EXPECT_HAS(error_of([&] { r.create("mamba", json::object(), true, "m/model.json"); }),
             "m/model.json: unknown model type \"mamba\" (known: ");
  EXPECT_HAS(error_of([&] { r.create("transformer", json{{"hidden_size", "x"}}, false, "m/model.json"); }),
             "m/model.json.hidden_size: expected an integer");
}

TEST(ModelRegistry, RegistrationErrorsNameTheProblem) {
  ModelRegistry r;  // empty, apart from the global one
  EXPECT_FALSE(r.contains("transformer"));
  EXPECT_HAS(error_of([&] { r.register_architecture("", mean_lm_architecture()); }), "needs a name");
  EXPECT_HAS(error_of([&] { r.register_architecture("a", ModelArchitecture{}); }), "\"a\" has no create function");
  ModelArchitecture hf = mean_lm_architecture();
  hf.hf_names = {"mean"};
  EXPECT_HAS(error_of([&] { r.register_architecture("b", hf); }), "\"b\" reads Hugging Face configs but has no config_from_hf");
  hf.config_from_hf = [](const json& j, const std::string&) { return j; };
  r.register_architecture("b", hf);
  EXPECT_HAS(error_of([&] { r.register_architecture("b", mean_lm_architecture()); }), "\"b\" is already registered");
  EXPECT_HAS(error_of([&] { r.register_architecture("c", hf); }), "Hugging Face name \"mean\" is already read by \"b\"");
  grpo::register_builtin_models(r);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"b", "transformer"}));
}

// One registration is all a new architecture needs: checkpoints record it and
// load_model builds it again, weights and all.
TEST(ModelRegistry, AUsersArchitectureRoundTripsThroughACheckpoint) {
  static const bool registered = [] {
    ModelRegistry::global().register_architecture("test_mean_lm", mean_lm_architecture());
    return true;
  }();
  ASSERT_TRUE(registered);
  TempDir dir("registry");
  torch::manual_seed(3);
  RegisteredMeanLM model(11, 8, 32);
  grpo::CheckpointContents contents;
  contents.model = &model;
  grpo::write_checkpoint(dir / "ckpt", contents);
  auto loaded = grpo::load_model(dir / "ckpt");
  ASSERT_NE(dynamic_cast<RegisteredMeanLM*>(loaded.get()), nullptr);
  const auto want = model.named_parameters();
  for (const auto& p : loaded->module().named_parameters()) EXPECT_TRUE(torch::equal(p.value(), want[p.key()])) << p.key();

  // A model that is not registered is saved, but cannot be built again from its checkpoint.
  grpo_test::MeanLM plain(11, 8, 32);
  contents.model = &plain;
  grpo::write_checkpoint(dir / "plain", contents);
  EXPECT_HAS(error_of([&] { grpo::load_model(dir / "plain"); }), "\"type\" is \"custom\"");
}
