// A fixture for check_layers.py: two violations it must report.
#pragma once
#include <torch/torch.h>
#include "grpo/train/trainer.h"
