#!/usr/bin/env python3
"""GRPO steps by Hugging Face TRL's GRPOTrainer and by `grpo train`, side by side: the same
model, prompts, reward and settings, each run in a process of its own, the two sides
alternating run by run. Writes the raw figures (results.json) and a Markdown report
(results.md) with the TRL ÷ grpo ratio of every phase.
Usage: compare.py [--grpo build/tools/grpo] [--out DIR] [--models a,b] [--settings a,b] [--quick]
(README.md beside this file says what each phase measures on each side)"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # NB: no __pycache__ left in the source tree
import make_models  # noqa: E402

# The reward, on both sides: grpo's built-in `regex` (1 when the pattern is found in the
# completion) and the same pattern with Python's re in trl_run.py. It scores about half of
# random completions 1, so the groups' advantages are not all zero.
REWARD_PATTERN = "^ *[a-mA-M]"

# name -> the loss and update settings (the loss is DAPO's: token-level, ε 0.2 / 0.28).
# micro_batches: micro-batches per optimizer update (gradient accumulation).
SETTINGS = {
    "beta0-mu1": dict(about="β 0, μ 1, 1 mini-batch: one update a step, no reference, no old log-probs",
                      beta=0.0, num_iterations=1, mini_batches=1, micro_batches=2),
    "beta0.04-mu2": dict(about="β 0.04, μ 2, 2 mini-batches: four updates a step, reference and old log-probs",
                         beta=0.04, num_iterations=2, mini_batches=2, micro_batches=2),
}
DEFAULT_MODELS = ["stories260K", "qwen2-10m"]

# Other processes busier than this (cores, over a timed run) make the figures invalid.
OTHERS_LIMIT = 0.1

PHASES = [("generate", "generation"), ("reward", "reward"), ("logprobs", "old/ref log-probs (no grad)"),
          ("train", "update (μ passes of forward, backward, AdamW)"), ("step", "whole step")]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--grpo", default=os.path.join(ROOT, "build", "tools", "grpo"), help="the grpo executable")
    p.add_argument("--python", default=sys.executable, help="the Python that runs TRL (default: this one)")
    p.add_argument("--work", default=os.path.join(ROOT, "out", "compare_trl"), help="models, prompts and runs")
    p.add_argument("--out", default=None, help="where results.json and results.md go (default: WORK/results)")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help=f"comma-separated, of {', '.join(make_models.MODELS)} (or 'all')")
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of {', '.join(SETTINGS)}")
    p.add_argument("--reps", type=int, default=3, help="runs of each side per model and setting")
    p.add_argument("--steps", type=int, default=2, help="measured GRPO steps per run")
    p.add_argument("--warmup", type=int, default=1, help="GRPO steps per run before the measured ones")
    p.add_argument("--prompts-per-step", type=int, default=4, help="P")
    p.add_argument("--group-size", type=int, default=4, help="G")
    p.add_argument("--max-new-tokens", type=int, default=64, help="T")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads of each side")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600, help="seconds one run may take")
    p.add_argument("--quick", action="store_true",
                   help="stories260K, both settings, 1 run a side, 1 measured step, P 2, G 4, T 32")
    a = p.parse_args()
    if a.quick:
        a.models, a.reps, a.steps, a.prompts_per_step, a.group_size, a.max_new_tokens = "stories260K", 1, 1, 2, 4, 32
    if a.steps < 1 or a.warmup < 0 or a.reps < 1:
        p.error("--steps and --reps must be >= 1, --warmup >= 0")
    a.models = list(make_models.MODELS) if a.models == "all" else a.models.split(",")
    a.settings = a.settings.split(",")
    for s in a.settings:
        if s not in SETTINGS:
            p.error(f"unknown setting {s!r}; known: {', '.join(SETTINGS)}")
    for m in a.models:
        if m not in make_models.MODELS:
            p.error(f"unknown model {m!r}; known: {', '.join(make_models.MODELS)}")
    a.grpo = os.path.abspath(a.grpo)
    if not os.access(a.grpo, os.X_OK):
        p.error(f"{a.grpo}: no grpo executable there (build it, or give --grpo)")
    a.work = os.path.abspath(a.work)
    a.out = os.path.abspath(a.out or os.path.join(a.work, "results"))
    N = a.prompts_per_step * a.group_size
    for s in a.settings:
        parts = SETTINGS[s]["mini_batches"] * SETTINGS[s]["micro_batches"]
        if N % parts:
            p.error(f"setting {s}: P·G = {N} must divide into {parts} micro-batches")
    return a


# ---------------------------------------------------------------- inputs

def write_prompts(args):
    """The first GSM8K questions of at most 300 characters, one step's worth per GRPO step."""
    count = args.prompts_per_step * (args.warmup + args.steps)
    path = os.path.join(args.work, "prompts.jsonl")
    with open(make_models.GSM8K_TRAIN, encoding="utf-8") as f, open(path, "w", encoding="utf-8") as out:
        written = 0
        for line in f:
            question = json.loads(line)["question"]
            if len(question) <= 300:
                out.write(json.dumps({"prompt": question}) + "\n")
                written += 1
                if written == count:
                    break
    return path


def run_settings(args, model_dir, setting, prompts):
    s = SETTINGS[setting]
    N = args.prompts_per_step * args.group_size
    return dict(model=model_dir, prompts=prompts, threads=args.threads, seed=args.seed,
                prompts_per_step=args.prompts_per_step, group_size=args.group_size,
                num_iterations=s["num_iterations"], mini_batches=s["mini_batches"],
                micro_batch_size=N // s["mini_batches"] // s["micro_batches"],
                steps=args.warmup + args.steps, max_new_tokens=args.max_new_tokens, temperature=1.0,
                loss_type="dapo", beta=s["beta"], epsilon_low=0.2, epsilon_high=0.28, lr=args.lr,
                reward_pattern=REWARD_PATTERN)


def grpo_config(spec, output_dir):
    """spec (run_settings) as a grpo config: the same run, nothing evaluated, nothing resumed."""
    # NB: a folder with tokenizer.model (stories260K) gives grpo its SentencePiece tokenizer.
    return {
        "seed": spec["seed"], "output_dir": output_dir, "threads": spec["threads"],
        "model": {"init_from": spec["model"], "dtype": "float32", "device": "cpu"},
        "data": {"train": spec["prompts"], "prompt_key": "prompt", "template": "{prompt}", "shuffle": False},
        "sampling": {"max_new_tokens": spec["max_new_tokens"], "temperature": spec["temperature"],
                     "top_k": 0, "top_p": 1.0},
        "rewards": {"rewards": [{"name": "regex", "pattern": spec["reward_pattern"], "weight": 1.0}]},
        "loss": {"loss_type": spec["loss_type"], "beta": spec["beta"], "epsilon_low": spec["epsilon_low"],
                 "epsilon_high": spec["epsilon_high"], "importance_sampling": "token", "advantage_scale": "group",
                 "advantage_eps": 1e-4},
        "optimizer": {"lr": spec["lr"], "schedule": "constant", "warmup_steps": 0, "weight_decay": 0.0,
                      "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "max_grad_norm": 1.0},
        "grpo": {"steps": spec["steps"], "prompts_per_step": spec["prompts_per_step"],
                 "group_size": spec["group_size"], "num_iterations": spec["num_iterations"],
                 "mini_batches": spec["mini_batches"], "micro_batch_size": spec["micro_batch_size"]},
        "eval": {"accuracy_reward": ""},
        "checkpoint": {"resume": False},
        "logging": {"console": False},
    }


# ---------------------------------------------------------------- one run

def busy_cpu_seconds():
    """CPU seconds the whole machine has spent busy since boot (/proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_child(cmd, log_path, threads, timeout, trained=None):
    """Runs cmd to its end. Returns its exit code, wall seconds, peak RSS (MiB), the peak RSS
    sampled every 50 ms until trained() says the training steps are done (MiB; None without
    psutil or `trained`), and the cores other processes kept busy meanwhile (the machine's
    busy time less the child's own CPU time, over the wall time; None without /proc/stat)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    busy_before = busy_cpu_seconds()
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        sampled = 0 if psutil is not None and trained is not None else None
        # NB: wait4 reports this child's own peak RSS (RUSAGE_CHILDREN would be the largest child so far).
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            if sampled is not None and not trained():
                try:
                    sampled = max(sampled, psutil.Process(proc.pid).memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.05)
    wall = time.perf_counter() - start
    busy_after = busy_cpu_seconds()
    proc.returncode = os.waitstatus_to_exitcode(status)
    others = None
    if busy_before is not None and busy_after is not None:
        others = max(0.0, (busy_after - busy_before - usage.ru_utime - usage.ru_stime) / wall)
    return dict(code=proc.returncode, wall=wall, rss=usage.ru_maxrss / 1024.0, other_cores=others,
                training_rss=None if sampled is None else sampled / 2**20)


def run_trl(args, spec, folder):
    spec = dict(spec, output_dir=os.path.join(folder, "trl_output"))
    spec_path, result_path = os.path.join(folder, "spec.json"), os.path.join(folder, "result.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=1)
    trained_path = os.path.join(folder, "trained")
    if os.path.exists(trained_path):
        os.remove(trained_path)
    c = run_child([args.python, os.path.join(HERE, "trl_run.py"), spec_path, result_path],
                  os.path.join(folder, "log.txt"), args.threads, args.timeout,
                  trained=lambda: os.path.exists(trained_path))
    if c["code"] != 0:
        raise RuntimeError(f"the TRL run failed (exit {c['code']}); see {folder}/log.txt")
    with open(result_path) as f:
        result = json.load(f)
    return dict(steps=result["steps"], wall_seconds=c["wall"], peak_rss_mib=c["rss"],
                training_rss_mib=c["training_rss"], other_cores=c["other_cores"], versions=result["versions"])


def run_grpo(args, spec, folder):
    output_dir = os.path.join(folder, "output")
    shutil.rmtree(output_dir, ignore_errors=True)
    config_path = os.path.join(folder, "config.json")
    with open(config_path, "w") as f:
        json.dump(grpo_config(spec, output_dir), f, indent=1)
    metrics_path = os.path.join(output_dir, "metrics.jsonl")

    def trained():
        # NB: after its last step grpo writes a checkpoint, which takes memory TRL's side does not.
        try:
            with open(metrics_path) as f:
                return sum(1 for _ in f) >= spec["steps"]
        except OSError:
            return False

    c = run_child([args.grpo, "train", "--config", config_path], os.path.join(folder, "log.txt"),
                  args.threads, args.timeout, trained=trained)
    if c["code"] != 0:
        raise RuntimeError(f"the grpo run failed (exit {c['code']}); see {folder}/log.txt")
    steps = []
    with open(metrics_path) as f:
        for line in f:
            m = json.loads(line)
            steps.append(dict(generate=m["seconds/generate"], reward=m["seconds/reward"],
                              logprobs=m["seconds/logprobs"], train=m["seconds/train"], step=m["seconds/step"],
                              collect=m["seconds/step"] - m["seconds/train"], num_tokens=m["num_tokens"],
                              loss=m["loss"]))
    # NB: the checkpoint written at the end of every run is not part of the figures; it only takes disk.
    shutil.rmtree(output_dir, ignore_errors=True)
    return dict(steps=steps, wall_seconds=c["wall"], peak_rss_mib=c["rss"], training_rss_mib=c["training_rss"],
                other_cores=c["other_cores"])


# ---------------------------------------------------------------- checks before timing

def check_reward(args, model_dir, folder):
    """grpo samples completions and scores them with its regex reward; the Python pattern
    trl_run.py uses must score each the same."""
    spec = dict(run_settings(args, model_dir, "beta0-mu1", os.path.join(args.work, "prompts.jsonl")),
                micro_batch_size=0)
    config_path, out = os.path.join(folder, "sample_config.json"), os.path.join(folder, "samples")
    shutil.rmtree(out, ignore_errors=True)
    with open(config_path, "w") as f:
        json.dump(grpo_config(spec, os.path.join(folder, "unused")), f, indent=1)
    cmd = [args.grpo, "sample", "--config", config_path, "--dataset", spec["prompts"], "-n", "8", "--out", out,
           "--set", "rejection.keep=all", "--set", "rejection.dedupe=false",
           "--set", "rejection.accept_truncated=true", "--set", "rejection.limit=4"]
    c = run_child(cmd, os.path.join(folder, "sample_log.txt"), args.threads, args.timeout)
    if c["code"] != 0:
        raise RuntimeError(f"grpo sample failed (exit {c['code']}); see {folder}/sample_log.txt")
    pattern = re.compile(REWARD_PATTERN)
    total = agree = ones = 0
    with open(os.path.join(out, "accepted.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            ours = r["rewards"]["regex"]
            theirs = 1.0 if pattern.search(r["completion"]) else 0.0
            total, agree, ones = total + 1, agree + (ours == theirs), ones + (ours == 1.0)
    if total == 0 or agree != total:
        raise RuntimeError(f"the regex reward: Python agrees with grpo on {agree} of {total} completions ({out})")
    return dict(completions=total, agree=agree, scored_one=ones)


def check_prompt_tokens(args, model_dir, folder, prompts):
    """stories260K: grpo reads tokenizer.model with its own SentencePiece tokenizer, TRL the
    tokenizer.json made from it. llama.cpp, which the project's GGUF tests hold to grpo's
    tokenization, must give the ids transformers gives for every prompt."""
    try:
        import llama_cpp
        from transformers import AutoTokenizer
    except ImportError as e:
        return dict(skipped=f"no {e.name}")
    gguf = os.path.join(folder, "vocab.gguf")
    c = run_child([args.grpo, "export", "--format", "gguf", "--dtype", "f32", "--out", gguf, model_dir],
                  os.path.join(folder, "export_log.txt"), args.threads, args.timeout)
    if c["code"] != 0:
        raise RuntimeError(f"grpo export failed (exit {c['code']}); see {folder}/export_log.txt")
    # NB: llama.cpp writes a context-size note to the process's stderr even when not verbose.
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            vocab = llama_cpp.Llama(gguf, vocab_only=True, verbose=False)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with open(prompts, encoding="utf-8") as f:
        texts = [json.loads(line)["prompt"] for line in f]
    same = sum(tokenizer(t)["input_ids"] == vocab.tokenize(t.encode(), add_bos=True, special=False) for t in texts)
    if same != len(texts):
        raise RuntimeError(f"{model_dir}: transformers and llama.cpp tokenize {len(texts) - same} prompts differently")
    return dict(prompts=len(texts), same=same)


# ---------------------------------------------------------------- summary

def summarize(runs, warmup):
    """Per phase: the median over runs of each run's mean over its measured steps."""
    per_run = []
    for r in runs:
        measured = r["steps"][warmup:]
        row = {k: statistics.fmean(s[k] for s in measured) for k, _ in PHASES}
        row["num_tokens"] = statistics.fmean(s["num_tokens"] for s in measured)
        row["tokens_per_second"] = sum(s["num_tokens"] for s in measured) / sum(s["step"] for s in measured)
        row["peak_rss_mib"] = r["peak_rss_mib"]
        row["training_rss_mib"] = r["training_rss_mib"] if r["training_rss_mib"] is not None else float("nan")
        per_run.append(row)
    keys = [k for k, _ in PHASES] + ["num_tokens", "tokens_per_second", "peak_rss_mib", "training_rss_mib"]
    return {k: dict(median=statistics.median(r[k] for r in per_run), min=min(r[k] for r in per_run),
                    max=max(r[k] for r in per_run)) for k in keys}


def busiest_other(results):
    """The most cores other processes kept busy during one timed run, or None."""
    seen = [r["other_cores"] for c in results["cases"] for runs in c["runs"].values() for r in runs
            if r["other_cores"] is not None]
    return max(seen) if seen else None


def machine():
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            names = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    return dict(cpu=model, logical_cpus=os.cpu_count(), memory_gib=round(mem, 1), os=platform.platform())


def commit():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def fmt(x):
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def markdown(results):
    a = results["args"]
    lines = [
        "## GRPO step: TRL's GRPOTrainer against `grpo train` "
        f"({results['date'][:10]})",
        "",
        f"`{results['command']}` (`bench/compare_trl/compare.py`; its README says how each phase is timed).",
        "",
        "| | |",
        "|---|---|",
        f"| date | {results['date']} |",
        f"| machine | {results['machine']['cpu']}, {results['machine']['logical_cpus']} logical CPUs, "
        f"{results['machine']['memory_gib']} GiB |",
        f"| load average | {results['load_before'][0]:.2f} before the runs, {results['load_after'][0]:.2f} after "
        "(which counts the runs themselves) |",
        "| other processes | " + ("not measured" if busiest_other(results) is None else
                                  f"up to {busiest_other(results):.2f} cores busy during a timed run") + " |",
        f"| commit | {results['commit']} |",
        f"| TRL side | trl {results['versions'].get('trl', '?')}, transformers "
        f"{results['versions'].get('transformers', '?')}, torch {results['versions'].get('torch', '?')}, "
        "transformers `generate` (no vLLM) |",
        f"| grpo side | `{os.path.relpath(a['grpo'], ROOT) if a['grpo'].startswith(ROOT) else a['grpo']}` |",
        f"| run | P {a['prompts_per_step']} prompts × G {a['group_size']} = {a['prompts_per_step'] * a['group_size']} "
        f"completions a step, up to T {a['max_new_tokens']} new tokens, temperature 1, float32, "
        f"{a['threads']} threads a side, loss DAPO (ε 0.2 / 0.28), lr {a['lr']:g} constant, "
        f"reward `regex` {REWARD_PATTERN!r} |",
        f"| repetitions | {a['reps']} run(s) a side, alternating; each run {a['warmup']} warm-up + {a['steps']} "
        "measured steps; medians of the runs' means (fastest–slowest run in parentheses) |",
        "",
        "Seconds per GRPO step; the ratio is TRL ÷ grpo (above 1: grpo is faster). Peak RSS: sampled every "
        "50 ms until the training steps end (in parentheses: the whole process, grpo's final checkpoint "
        "included).",
        "",
    ]
    others = busiest_other(results)
    # NB: the load average lags by minutes (it still counts the checks run just before), so it
    # decides only where other processes could not be measured.
    busy = others > OTHERS_LIMIT if others is not None else \
        results["load_before"][0] > 0.25 * results["machine"]["logical_cpus"]
    if busy:
        lines[-2:-2] = [f"**Other work ran on the machine (load average {results['load_before'][0]:.2f} before the "
                        f"runs, other processes up to {others or 0:.2f} cores during one): these figures are not "
                        "valid measurements.**", ""]
    lines += ["| model | setting | TRL step | grpo step | TRL ÷ grpo | TRL tokens/s | grpo tokens/s "
              "| TRL peak RSS | grpo peak RSS |",
              "|---|---|---|---|---|---|---|---|---|"]
    for c in results["cases"]:
        t, g = c["summary"]["trl"], c["summary"]["grpo"]
        lines.append(f"| {c['model']} | {c['setting']} | {fmt(t['step']['median'])} | {fmt(g['step']['median'])} "
                     f"| **{t['step']['median'] / g['step']['median']:.2f}** "
                     f"| {fmt(t['tokens_per_second']['median'])} | {fmt(g['tokens_per_second']['median'])} "
                     f"| {t['training_rss_mib']['median']:.0f} ({t['peak_rss_mib']['median']:.0f}) MiB "
                     f"| {g['training_rss_mib']['median']:.0f} ({g['peak_rss_mib']['median']:.0f}) MiB |")
    for c in results["cases"]:
        t, g = c["summary"]["trl"], c["summary"]["grpo"]
        lines += ["", f"### {c['model']}, {c['setting']}: {SETTINGS[c['setting']]['about']}", "",
                  f"Completion tokens a step: TRL {t['num_tokens']['median']:.0f}, grpo "
                  f"{g['num_tokens']['median']:.0f}.", "",
                  "| phase | TRL (s) | grpo (s) | TRL ÷ grpo |", "|---|---|---|---|"]
        for key, name in PHASES:
            tv, gv = t[key], g[key]
            # NB: a phase a setting does not run (no old or reference log-probs) takes ~0 s on both sides.
            ratio = f"{tv['median'] / gv['median']:.2f}" if min(tv["median"], gv["median"]) > 1e-5 else "–"
            lines.append(f"| {name} | {fmt(tv['median'])} ({fmt(tv['min'])}–{fmt(tv['max'])}) "
                         f"| {fmt(gv['median'])} ({fmt(gv['min'])}–{fmt(gv['max'])}) | {ratio} |")
    lines += ["", "Checks before timing: "
              + "; ".join(f"{m}: {json.dumps(v)}" for m, v in results["checks"].items()), ""]
    return "\n".join(lines)


def main():
    args = parse_args()
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    results = dict(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                   command="python bench/compare_trl/compare.py " + " ".join(sys.argv[1:]),
                   machine=machine(), commit=commit(), load_before=os.getloadavg(),
                   args=vars(args), cases=[], checks={}, versions={})
    print(f"models: {', '.join(args.models)}; settings: {', '.join(args.settings)}", flush=True)
    folders = make_models.make(args.work, args.models)
    prompts = write_prompts(args)
    for name in args.models:
        folder = os.path.join(args.work, "checks", name)
        os.makedirs(folder, exist_ok=True)
        check = dict(reward=check_reward(args, folders[name], folder))
        if os.path.exists(os.path.join(folders[name], "tokenizer.model")):
            check["prompt_tokens"] = check_prompt_tokens(args, folders[name], folder, prompts)
        results["checks"][name] = check
        print(f"{name}: checks {json.dumps(check)}", flush=True)
    for name in args.models:
        for setting in args.settings:
            spec = run_settings(args, folders[name], setting, prompts)
            runs = {"trl": [], "grpo": []}
            for rep in range(args.reps):
                # NB: the order alternates, so neither side always runs on a machine the other just warmed.
                for side in (("trl", "grpo") if rep % 2 == 0 else ("grpo", "trl")):
                    folder = os.path.join(args.work, "runs", name, setting, f"{side}-{rep}")
                    os.makedirs(folder, exist_ok=True)
                    run = (run_trl if side == "trl" else run_grpo)(args, spec, folder)
                    results["versions"].update(run.pop("versions", {}))
                    runs[side].append(run)
                    steps = run["steps"][args.warmup:]
                    others = run["other_cores"]
                    print(f"{name} {setting} {side} run {rep + 1}: "
                          f"{statistics.fmean(s['step'] for s in steps):.3f} s a step, "
                          f"peak RSS {run['training_rss_mib'] or float('nan'):.0f} MiB in training, "
                          f"{run['peak_rss_mib']:.0f} MiB in all, other processes "
                          + ("?" if others is None else f"{others:.2f}") + " cores", flush=True)
            results["cases"].append(dict(model=name, setting=setting, spec=spec, runs=runs,
                                         summary={side: summarize(r, args.warmup) for side, r in runs.items()}))
    results["load_after"] = os.getloadavg()
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    text = markdown(results)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"wrote {args.out}/results.json and results.md")


if __name__ == "__main__":
    main()
