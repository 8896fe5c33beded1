// The config loader: the input is a config file, then "key.path=value"
// overrides after NUL bytes. A config that loads must survive its own JSON:
// from_json(to_json(c)) gives the same JSON again.
#include "fuzz_util.h"
#include "grpo/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> parts = grpo::fuzz::split_nul(data, size);
  const std::string path = grpo::fuzz::write_file("config.json", parts[0]);
  const std::vector<std::string> overrides(parts.begin() + 1, parts.end());
  GRPO_FUZZ_EXPECT_ERRORS({
    const grpo::TrainConfig config = grpo::load_config(path, overrides);
    const nlohmann::json once = config.to_json();
    const nlohmann::json twice = grpo::TrainConfig::from_json(once).to_json();
    if (once != twice) grpo::fuzz::finding("to_json/from_json round trip differs:\n" + once.dump() + "\n" + twice.dump());
  })
  return 0;
}
