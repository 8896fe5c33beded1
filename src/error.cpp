// grpo::Error.
#include "grpo/error.h"

namespace grpo {

Error::Error(const std::string& what) : std::runtime_error(what) {}

}  // namespace grpo
