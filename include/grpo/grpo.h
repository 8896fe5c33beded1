// Everything public in one include, layer by layer (docs/ARCHITECTURE.md).
// Including the headers you use is quicker to compile; this is for trying
// things out.
#pragma once

#include "grpo/build_info.h"
#include "grpo/error.h"
#include "grpo/files.h"

#include "grpo/tokenizers/char_tokenizer.h"
#include "grpo/tokenizers/chat.h"
#include "grpo/tokenizers/hf_tokenizer.h"
#include "grpo/tokenizers/sentencepiece.h"
#include "grpo/tokenizers/tokenizer.h"

#include "grpo/rewards/reward.h"
#include "grpo/data/jsonl.h"
#include "grpo/data/prompt_dataset.h"

#include "grpo/ops/distill_loss.h"
#include "grpo/ops/enums.h"
#include "grpo/ops/group_advantages.h"
#include "grpo/ops/grpo_loss.h"
#include "grpo/ops/token_logprobs.h"

#include "grpo/models/causal_lm.h"
#include "grpo/models/registry.h"
#include "grpo/models/transformer.h"

#include "grpo/io/gguf.h"
#include "grpo/io/pretrained.h"
#include "grpo/io/safetensors.h"
#include "grpo/io/weights.h"

#include "grpo/rollout/policy.h"
#include "grpo/rollout/reference.h"
#include "grpo/rollout/sampler.h"
#include "grpo/rollout/sampling.h"

#include "grpo/config/config.h"

#include "grpo/train/checkpoint.h"
#include "grpo/train/distiller.h"
#include "grpo/train/evaluate.h"
#include "grpo/train/factory.h"
#include "grpo/train/grpo_trainer.h"
#include "grpo/train/metrics.h"
#include "grpo/train/pipeline.h"
#include "grpo/train/rejection_sampling.h"
#include "grpo/train/sft_trainer.h"
