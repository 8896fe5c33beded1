// A fixture for check_layers.py: downward includes are fine.
#pragma once
#include "grpo/tokenizers/upward.h"
