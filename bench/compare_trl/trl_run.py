"""One run of Hugging Face TRL's GRPOTrainer for the comparison (compare.py starts it in a
process of its own), with its phases timed by wrapping the trainer's own methods.
Writes, per GRPO step (one generation batch and its num_iterations x mini-batch
optimizer steps): seconds in generation, rewards, no-grad log-probs, the update and the
whole step, and the completion tokens.
Usage: trl_run.py SPEC.json RESULT.json   (SPEC: the run's settings, written by compare.py)"""
import json
import os
import re
import sys
import time


def main(spec_path, result_path):
    with open(spec_path) as f:
        spec = json.load(f)
    # NB: the thread count is set before torch is imported, as the grpo side's is before it starts.
    os.environ["OMP_NUM_THREADS"] = str(spec["threads"])
    import torch
    torch.set_num_threads(spec["threads"])
    import transformers
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    N = spec["prompts_per_step"] * spec["group_size"]
    micro = spec["micro_batch_size"]
    per_update = N // spec["mini_batches"]
    updates_per_step = spec["mini_batches"] * spec["num_iterations"]
    steps = spec["steps"]

    with open(spec["prompts"]) as f:
        prompts = [json.loads(line)["prompt"] for line in f]
    dataset = Dataset.from_list([{"prompt": p} for p in prompts])

    pattern = re.compile(spec["reward_pattern"])

    def regex(completions, **kwargs):
        # grpo's built-in `regex` reward: 1 when the pattern is found in the completion, else 0.
        return [1.0 if pattern.search(c) else 0.0 for c in completions]

    args = GRPOConfig(
        output_dir=spec["output_dir"],
        use_cpu=True,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        seed=spec["seed"],
        model_init_kwargs={"dtype": "float32"},
        # One GRPO step: a generation batch of P*G completions, mini_batches optimizer steps
        # per pass, num_iterations passes, each optimizer step accumulated over micro-batches.
        num_generations=spec["group_size"],
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=per_update // micro,
        steps_per_generation=N // micro,
        num_iterations=spec["num_iterations"],
        max_steps=steps * updates_per_step,
        shuffle_dataset=False,
        max_completion_length=spec["max_new_tokens"],
        temperature=spec["temperature"],
        top_p=1.0,
        top_k=0,
        loss_type=spec["loss_type"],
        beta=spec["beta"],
        # NB: grpo's KL is the k3 estimator alone; TRL's default multiplies it by the importance ratio.
        use_bias_correction_kl=False,
        epsilon=spec["epsilon_low"],
        epsilon_high=spec["epsilon_high"],
        importance_sampling_level="token",
        scale_rewards="group",
        learning_rate=spec["lr"],
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        max_grad_norm=1.0,
        # NB: logs once per GRPO step, after its last optimizer step, outside the timed window.
        logging_steps=updates_per_step,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        log_completions=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    trainer = GRPOTrainer(model=spec["model"], reward_funcs=regex, args=args, train_dataset=dataset,
                          processing_class=tokenizer)

    # Each timed call adds its seconds to the current GRPO step's phase.
    current = {}
    records = []

    def timed(name, fn, when=None):
        def wrapper(*a, **kw):
            if when is not None and not when():
                return fn(*a, **kw)
            t0 = time.perf_counter()
            out = fn(*a, **kw)
            current[name] = current.get(name, 0.0) + time.perf_counter() - t0
            if name == "collect":
                current["num_tokens"] = current.get("num_tokens", 0) + int(out["completion_mask"].sum())
            return out
        return wrapper

    # NB: instance attributes shadow the methods, and GRPOTrainer calls each through self.
    trainer._generate = timed("generate", trainer._generate)
    trainer._calculate_rewards = timed("reward", trainer._calculate_rewards)
    trainer._get_per_token_logps_and_entropies = timed(
        "logprobs", trainer._get_per_token_logps_and_entropies, when=lambda: not torch.is_grad_enabled())
    trainer._generate_and_score_completions = timed("collect", trainer._generate_and_score_completions)

    class StepTimer(TrainerCallback):
        """The wall time from the first optimizer step's start to the last one's end."""
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step % updates_per_step == 0:
                current["start"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if state.global_step % updates_per_step == 0:
                step = time.perf_counter() - current.pop("start")
                record = {k: current.get(k, 0.0) for k in ("generate", "reward", "logprobs", "collect")}
                record["num_tokens"] = current.get("num_tokens", 0)
                record["step"] = step
                # The update: everything of the step outside collecting the rollouts.
                record["train"] = step - record["collect"]
                records.append(record)
                current.clear()

    trainer.add_callback(StepTimer())
    trainer.train()
    # NB: tells compare.py that the training steps are over (it samples the RSS until then).
    open(os.path.join(os.path.dirname(os.path.abspath(result_path)), "trained"), "w").close()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    for record, loss in zip(records, losses):
        record["loss"] = loss
    result = {"side": "trl", "steps": records,
              "versions": {"trl": __import__("trl").__version__, "transformers": transformers.__version__,
                           "torch": torch.__version__},
              "threads": torch.get_num_threads()}
    with open(result_path, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
