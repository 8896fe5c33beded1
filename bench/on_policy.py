"""The cost and the effect of the exactly-on-policy options, measured with `grpo train`.

For each model, one GRPO config (μ 2, two mini-batches, so that the old log-probs
need a pass of their own) run four ways, each in its own process, alternating:
  default            the fast kernels; old log-probs recomputed
  default+sampler    the fast kernels; the sampler's log-probs taken as the old ones
  exact              model.batch_invariant; old log-probs recomputed
  exact+sampler      model.batch_invariant; the sampler's log-probs as the old ones
and reports seconds per phase (generate, logprobs, train, step) from metrics.jsonl,
the logged |trainer - sampler| log-prob difference, and the final loss.

Usage: python bench/on_policy.py --grpo build/tools/grpo --models DIR[,DIR] --prompts FILE
       [--steps 4] [--reps 2] [--threads 2] [--work out/on_policy]
The model folders are Hugging Face folders (bench/compare_trl/make_models.py makes them).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

VARIANTS = {
    "default": {},
    "default+sampler": {"grpo": {"old_logprobs": "sampler"}},
    "exact": {"model": {"batch_invariant": True}},
    "exact+sampler": {"model": {"batch_invariant": True}, "grpo": {"old_logprobs": "sampler"}},
}


def merge(base, extra):
    out = json.loads(json.dumps(base))
    for key, value in extra.items():
        if isinstance(value, dict):
            out[key] = merge(out.get(key, {}), value)
        else:
            out[key] = value
    return out


def config(model, prompts, out, steps, threads):
    return {
        "seed": 0, "output_dir": out, "threads": threads,
        "model": {"init_from": model, "dtype": "float32", "device": "cpu"},
        "data": {"train": prompts, "prompt_key": "prompt", "template": "{prompt}", "shuffle": False},
        "sampling": {"max_new_tokens": 64, "temperature": 1.0},
        "rewards": {"rewards": [{"name": "regex", "pattern": "^ *[a-mA-M]", "weight": 1.0}]},
        "loss": {"loss_type": "dapo", "beta": 0.0},
        "optimizer": {"lr": 1e-5, "schedule": "constant", "warmup_steps": 0},
        "grpo": {"steps": steps, "prompts_per_step": 4, "group_size": 4, "num_iterations": 2,
                 "mini_batches": 2, "micro_batch_size": 8},
        "eval": {"accuracy_reward": ""},
        "checkpoint": {"resume": False},
        "logging": {"console": False},
    }


def run(grpo, cfg, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    subprocess.run([grpo, "train", "-c", path], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(cfg["output_dir"], "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grpo", default="build/tools/grpo")
    ap.add_argument("--models", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="out/on_policy")
    a = ap.parse_args()
    rows = []
    for model in a.models.split(","):
        name = os.path.basename(model.rstrip("/"))
        results = {v: [] for v in VARIANTS}
        for rep in range(a.reps):
            for variant, extra in VARIANTS.items():
                out = os.path.abspath(os.path.join(a.work, name, f"{variant}-{rep}"))
                cfg = merge(config(os.path.abspath(model), os.path.abspath(a.prompts), out, a.steps, a.threads), extra)
                metrics = run(a.grpo, cfg, out + ".json")
                results[variant].append(metrics[1:])  # NB: the first step warms up
        for variant, reps in results.items():
            steps = [m for r in reps for m in r]
            phase = lambda k: statistics.median(m[k] for m in steps)
            diff = max(m.get("sampling/sampling_logp_difference/max", float("nan")) for m in steps)
            rows.append((name, variant, phase("seconds/generate"), phase("seconds/logprobs"), phase("seconds/train"),
                         phase("seconds/step"), diff, reps[0][-1]["loss"]))
    print("| model | variant | generate s | old log-probs s | update s | step s | max |trainer - sampler| | last loss (run 1) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.3f} | {r[5]:.3f} | {r[6]:.3g} | {r[7]:.6g} |")


if __name__ == "__main__":
    sys.exit(main())
