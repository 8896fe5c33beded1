"""The shipped GSM8K config's path on a tiny model of its shape: a Qwen2 model
made by transformers with a vocabulary padded past its tokenizer's (as
Qwen2.5's 151936 rows for 151665 tokens), saved in bfloat16 with a ChatML
byte-level BPE tokenizer, trained two GRPO steps by `grpo train -c
configs/gsm8k.json` (only sizes, device and lengths overridden), exported, and
read back by transformers.

usage: gsm8k_path.py GRPO_CLI REPO_ROOT WORK_DIR
"""
import json
import os
import shutil
import subprocess
import sys

import torch
import transformers


def main():
    cli, root, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    model_dir = os.path.join(work, "qwen2-tiny-padded")
    tokenizer_dir = os.path.join(root, "tests", "fixtures", "tokenizers", "qwen2_tiny")
    with open(os.path.join(tokenizer_dir, "tokenizer.json")) as f:
        tok = json.load(f)
    tokenizer_size = len(tok["model"]["vocab"]) + len(tok["added_tokens"])
    padded = 320
    assert padded > tokenizer_size, (padded, tokenizer_size)

    torch.manual_seed(0)
    # NB: 2048 positions: this tiny tokenizer spends many more tokens on a GSM8K prompt than
    # Qwen's own (its longest training prompt is 1122 tokens here), and every prompt must fit.
    config = transformers.Qwen2Config(
        vocab_size=padded, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=True, eos_token_id=tok["added_tokens"][2]["id"])
    model = transformers.Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(model_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tokenizer_dir, name), model_dir)

    run = os.path.join(work, "run")
    overrides = {
        "model.init_from": model_dir, "model.device": "cpu", "model.dtype": "bfloat16",
        "output_dir": run, "grpo.steps": 2, "grpo.prompts_per_step": 2, "grpo.group_size": 2,
        "grpo.mini_batches": 1, "grpo.micro_batch_size": 2, "grpo.dynamic_sampling": False,
        "sampling.max_new_tokens": 8, "eval.every": 0, "eval.batch_size": 2, "data.eval_limit": 2,
        "checkpoint.save_every": 0,
    }
    cmd = [cli, "train", "-c", os.path.join(root, "configs", "gsm8k.json")]
    for key, value in overrides.items():
        cmd += ["-s", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
    print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
    if done.returncode != 0:
        sys.exit(f"grpo train exited with {done.returncode}")

    with open(os.path.join(run, "metrics.jsonl")) as f:
        steps = [json.loads(line) for line in f if line.strip()]
    if [s["step"] for s in steps] != [1, 2]:
        sys.exit(f"expected metrics for steps 1 and 2, got {[s.get('step') for s in steps]}")

    final = os.path.join(run, "final")
    exported = transformers.AutoModelForCausalLM.from_pretrained(final)
    if exported.config.vocab_size != padded:
        sys.exit(f"the exported model has vocab {exported.config.vocab_size}, not the padded {padded}")
    ids = torch.tensor([[1, 2, 3, 4]])
    logits = exported(ids).logits
    if not torch.isfinite(logits).all():
        sys.exit("the exported model's logits are not finite")
    print("ok: 2 steps trained; exported folder loads in transformers with vocab", padded)


if __name__ == "__main__":
    main()
