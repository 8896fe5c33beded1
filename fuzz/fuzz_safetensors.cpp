// The safetensors reader: the input is a .safetensors file. A file whose header
// is accepted must give every tensor it lists, with the listed shape.
#include "fuzz_util.h"
#include "grpo/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = grpo::fuzz::write_file("model.safetensors", data, size);
  GRPO_FUZZ_EXPECT_ERRORS({
    grpo::SafetensorsFile file(path);
    for (const std::string& name : file.names()) {
      const grpo::SafetensorsInfo& info = file.info(name);
      const torch::Tensor t = file.tensor(name);
      if (t.sizes().vec() != info.shape) grpo::fuzz::finding("tensor " + name + ": shape differs from the header");
      (void)file.view(name);
    }
    (void)file.metadata();
  })
  return 0;
}
