// A fixture for check_layers.py: models may not include the config.
#include "grpo/config/config.h"
