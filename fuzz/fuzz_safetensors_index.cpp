// A sharded checkpoint: the input is model.safetensors.index.json, beside two
// valid shards (model-00001-of-00002.safetensors holds "a" and "b",
// model-00002-of-00002.safetensors holds "c"). An index that is accepted must
// give exactly the tensors its weight map names.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fuzz_util.h"
#include "grpo/io/safetensors.h"

namespace {

const std::string& folder() {
  static const std::string dir = [] {
    const std::filesystem::path d = grpo::fuzz::scratch() / "sharded";
    std::filesystem::create_directories(d);
    grpo::save_safetensors((d / "model-00001-of-00002.safetensors").string(),
                           std::map<std::string, torch::Tensor>{{"a", torch::arange(6, torch::kFloat32).view({2, 3})},
                                                                {"b", torch::ones({4}, torch::kInt64)}});
    grpo::save_safetensors((d / "model-00002-of-00002.safetensors").string(),
                           std::map<std::string, torch::Tensor>{{"c", torch::zeros({1}, torch::kBFloat16)}});
    return d.string();
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = folder();
  grpo::fuzz::write_file("sharded/model.safetensors.index.json", data, size);
  GRPO_FUZZ_EXPECT_ERRORS({
    const std::map<std::string, torch::Tensor> tensors = grpo::load_safetensors(dir);
    const nlohmann::json index = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(data), size));
    if (tensors.size() != index.at("weight_map").size()) grpo::fuzz::finding("tensor count differs from the weight map");
    grpo::SafetensorsCheckpoint checkpoint(dir);
    (void)checkpoint.views();
  })
  return 0;
}
