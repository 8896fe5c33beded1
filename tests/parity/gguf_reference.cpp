// Our side of the GGUF parity checks (gguf_parity.py): the ids, float32 logits
// and greedy continuation our model gives for each prompt, which llama.cpp must
// reproduce from the exported GGUF file.
//   grpo_gguf_reference MODEL_DIR PROMPTS.json OUT.safetensors NEW_TOKENS
// For prompt k: ids_k (T) int64 = Tokenizer::encode_prompt; logits_k (T, V)
// float32 of one unpadded forward; greedy_k (NEW_TOKENS) int64, each the argmax
// of a full forward over the prompt and the tokens chosen so far (no cache).
#include <grpo/files.h>
#include <grpo/io/safetensors.h>
#include <grpo/train/checkpoint.h>
#include <torch/torch.h>

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace {

torch::Tensor logits_of(grpo::CausalLM& model, const std::vector<int64_t>& ids) {
  const int64_t T = static_cast<int64_t>(ids.size());
  const torch::Tensor x = torch::tensor(ids, torch::kInt64).unsqueeze(0);   // (1, T)
  const torch::Tensor mask = torch::ones({1, T}, torch::kInt64);             // (1, T)
  const torch::Tensor positions = torch::arange(T, torch::kInt64).unsqueeze(0);
  return model.forward(x, mask, positions, nullptr)[0].to(torch::kFloat32);  // (T, V)
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: grpo_gguf_reference MODEL_DIR PROMPTS.json OUT.safetensors NEW_TOKENS\n";
    return 2;
  }
  try {
    torch::NoGradGuard no_grad;
    const auto model = grpo::load_model(argv[1]);
    model->module().to(torch::kFloat32);
    model->module().eval();
    const auto tokenizer = grpo::load_tokenizer(argv[1]);
    const nlohmann::json prompts = grpo::read_json_file(argv[2], "a JSON list of prompts");
    const int64_t new_tokens = std::stoll(argv[4]);
    std::map<std::string, torch::Tensor> out;
    for (size_t k = 0; k < prompts.size(); ++k) {
      std::vector<int64_t> ids = tokenizer->encode_prompt(prompts[k].get<std::string>());
      out["ids_" + std::to_string(k)] = torch::tensor(ids, torch::kInt64);
      out["logits_" + std::to_string(k)] = logits_of(*model, ids).contiguous();
      std::vector<int64_t> greedy;
      for (int64_t n = 0; n < new_tokens; ++n) {
        const int64_t next = logits_of(*model, ids)[-1].argmax().item<int64_t>();
        greedy.push_back(next);
        ids.push_back(next);
      }
      out["greedy_" + std::to_string(k)] = torch::tensor(greedy, torch::kInt64);
    }
    grpo::save_safetensors(argv[3], out);
  } catch (const std::exception& e) {
    std::cerr << "grpo_gguf_reference: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
