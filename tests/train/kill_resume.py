"""`grpo train` killed with SIGKILL at random moments, and resumed each time,
ends exactly where an uninterrupted run ends.

1. A reference run of STEPS steps of the tiny config (checkpoint.save_every 2,
   checkpoint.resume on, the final weights exported to final/) runs straight
   through in its own folder.
2. The same run in another folder is killed with SIGKILL 10 times (KINDS) and
   restarted with resume on after each kill, then left to finish. The kill
   moments come from a seeded generator (reproducible), in three kinds:
   - "checkpoint": the folder is polled for a `checkpoint-*.tmp-<pid>` folder of
     the running process, and the process is killed 0 to 6 ms after one
     appears, so the kill lands inside a checkpoint write (at least one must:
     its temporary folder is still there after the kill);
   - "step": after 1 to 4 more steps in metrics.jsonl, plus a random part of a
     step (inside a step, the metrics append, a checkpoint or the plot);
   - "start": 0.05 to 0.8 times the reference run's time to its first step
     after the start (loading, resuming, the rewrite of metrics.jsonl, the
     first eval).
3. Compared with the reference:
   - byte for byte: final/ (every file), and of the last checkpoint model.pt,
     reference.pt, model.json and tokenizer.json, and plot.svg;
   - optimizer.pt by content: each parameter's AdamW state (step, exp_avg,
     exp_avg_sq, byte for byte) in parameter order, and the options. Its bytes
     differ between two straight runs too: LibTorch's C++ optimizer archive keys
     the state by the parameters' TensorImpl addresses, which changes its pickle,
     its generated code and the order of its tensor records, and it holds a
     random `.data/serialization_id`;
   - trainer_state.json and report.json without "seconds" (training time, wall
     clock), report.json also without "pretrained_dir", and the checkpoint's
     config.json without "output_dir" (the runs' folders differ);
   - metrics.jsonl line by line, each record without its wall-clock fields
     "seconds/*" (seconds/generate, seconds/reward, seconds/logprobs,
     seconds/train, seconds/step) and "tokens_per_second" (tokens over
     seconds/step): these measure time, not training, and differ between any
     two runs. Everything else, key order included, must be equal, and there
     must be exactly one line per step, steps 1..STEPS in order.
   - The folder must hold the same entries as the reference's, with no
     temporary `*.tmp-*` / `*.old-*` folder or `*.tmp.*` file left anywhere,
     and no incomplete checkpoint folder (one without model.pt or
     trainer_state.json, as a prune cut short leaves); no resume may have had
     to pass over a damaged checkpoint.
Usage: kill_resume.py GRPO_EXECUTABLE CLI_FIXTURE_DIR WORK_DIR"""
import collections
import hashlib
import io
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import time
import zipfile

from run_files import leftovers, metrics_records

STEPS = 120
KINDS = ["checkpoint"] * 4 + ["step"] * 4 + ["start"] * 2  # the kills, shuffled by SEED
SEED = 20260412
RUN = [f"grpo.steps={STEPS}", "checkpoint.save_every=2", "checkpoint.keep_last=2", "checkpoint.resume=true",
       "checkpoint.save_pretrained=float32"]
TIMEOUT = 120  # seconds for any one wait


def start(grpo, fixtures, out):
    cmd = [grpo, "train", "--config", os.path.join(fixtures, "tiny.json"), "--set", f"output_dir={out}"]
    for o in RUN:
        cmd += ["--set", o]
    return subprocess.Popen(cmd, cwd=fixtures, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_at(proc, out, kind, rng, first_step):
    """Waits for the moment of `kind`, then SIGKILLs `proc`. Returns a description,
    or None when the process ended by itself first. `first_step`: the seconds a
    run takes from its start to its first step."""
    deadline = time.time() + TIMEOUT
    metrics = os.path.join(out, "metrics.jsonl")
    if kind == "start":
        delay = rng.uniform(0.05, 0.8) * first_step
        time.sleep(delay)
        what = f"{delay:.2f} s after the start"
    elif kind == "step":
        # NB: before a resumed run rewrites metrics.jsonl it still holds the killed run's lines, so
        # the target is past them: only the new process's steps reach it.
        more, part = rng.randint(1, 4), rng.uniform(0.0, 0.02)
        target = count_lines(metrics) + more
        while count_lines(metrics) < target:
            if proc.poll() is not None:
                return None
            if time.time() > deadline:
                sys.exit(f"FAIL: no {target} lines in {metrics} after {TIMEOUT} s")
            time.sleep(0.001)
        time.sleep(part)
        what = f"{part * 1000:.0f} ms after step {target}"
    else:
        skip = rng.randint(0, 1)
        suffix = f".tmp-{proc.pid}"
        seen = set()
        while True:
            if proc.poll() is not None:
                return None
            if time.time() > deadline:
                sys.exit(f"FAIL: no checkpoint write seen in {out} after {TIMEOUT} s")
            try:
                names = os.listdir(out)
            except FileNotFoundError:
                names = []
            new = [n for n in names if n.startswith("checkpoint-") and n.endswith(suffix) and n not in seen]
            if new and len(seen) >= skip:
                part = rng.uniform(0.0, 0.006)
                time.sleep(part)
                what = f"{part * 1000:.1f} ms into writing {new[0]}"
                break
            seen.update(new)
            time.sleep(0.0002)
    if proc.poll() is not None:
        return None
    proc.kill()
    proc.wait()
    return what


# ---------------------------------------------------------------- comparisons

class _Obj:
    def __setstate__(self, state):
        self.state = state


class _Unpickler(pickle.Unpickler):
    """The pickle of a LibTorch archive without torch: tensors become
    ("tensor", storage type, sha256 of its bytes, offset, size, stride)."""

    def __init__(self, f, records):
        super().__init__(f)
        self.records = records

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda storage, offset, size, stride, *rest: ("tensor",) + storage + (offset, tuple(size), tuple(stride))
        if module == "torch" and name.endswith("Storage"):
            return name
        return type(name, (_Obj,), {})

    def persistent_load(self, pid):  # ("storage", type, key, location, numel)
        return (pid[1], hashlib.sha256(self.records[str(pid[2])]).hexdigest())


def _plain(x):
    if isinstance(x, _Obj):
        return _plain(x.state)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def optimizer_content(path):
    """The AdamW state of each parameter in parameter order, and each group's options."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        prefix = names[0].split("/")[0]
        records = {n.split("/data/", 1)[1]: z.read(n) for n in names if "/data/" in n}
        root = _plain(_Unpickler(io.BytesIO(z.read(prefix + "/data.pkl")), records).load())
    state = root["state"]
    groups = []
    for key in sorted(k for k in root["param_groups"] if k != "param_groups/size"):
        g = root["param_groups"][key]
        params = sorted((k for k in g if k.startswith("params/") and k != "params/size"), key=lambda k: int(k[7:]))
        groups.append({"options": g["options"], "state": [state.get(g[p]) for p in params]})
    return {"pytorch_version": root.get("pytorch_version"), "groups": groups, "tensors": len(records)}


def json_without(path, *keys):
    with open(path) as f:
        j = json.load(f, object_pairs_hook=collections.OrderedDict)
    for k in keys:
        j.pop(k, None)
    return j


def compare(ref, got, problems):
    def same_bytes(rel):
        a, b = os.path.join(ref, rel), os.path.join(got, rel)
        if not os.path.exists(b):
            problems.append(f"{rel}: missing")
        elif open(a, "rb").read() != open(b, "rb").read():
            problems.append(f"{rel}: the bytes differ from the uninterrupted run's")

    left = set(leftovers(ref)) | set(leftovers(got))  # NB: reported on their own
    ref_entries = sorted(n for n in os.listdir(ref) if n not in left)
    got_entries = sorted(n for n in os.listdir(got) if n not in left)
    if ref_entries != got_entries:
        problems.append(f"the folder holds {got_entries}, the uninterrupted run's {ref_entries}")
    for name in sorted(os.listdir(os.path.join(ref, "final"))):
        same_bytes(os.path.join("final", name))
    last = f"checkpoint-{STEPS}"
    for name in sorted(os.listdir(os.path.join(ref, last))):
        rel = os.path.join(last, name)
        if name == "optimizer.pt":
            if os.path.exists(os.path.join(got, rel)) and \
                    optimizer_content(os.path.join(ref, rel)) != optimizer_content(os.path.join(got, rel)):
                problems.append(f"{rel}: the optimizer state differs from the uninterrupted run's")
        elif name == "trainer_state.json":
            if os.path.exists(os.path.join(got, rel)) and \
                    json_without(os.path.join(ref, rel), "seconds") != json_without(os.path.join(got, rel), "seconds"):
                problems.append(f"{rel}: differs from the uninterrupted run's (\"seconds\" aside)")
        elif name == "config.json":
            if os.path.exists(os.path.join(got, rel)) and \
                    json_without(os.path.join(ref, rel), "output_dir") != json_without(os.path.join(got, rel), "output_dir"):
                problems.append(f"{rel}: differs from the uninterrupted run's (\"output_dir\" aside)")
        else:
            same_bytes(rel)
    same_bytes("plot.svg")
    if json_without(os.path.join(ref, "report.json"), "seconds", "pretrained_dir") != \
            json_without(os.path.join(got, "report.json"), "seconds", "pretrained_dir"):
        problems.append("report.json: differs from the uninterrupted run's (\"seconds\" and \"pretrained_dir\" aside)")

    ref_m, got_m = metrics_records(os.path.join(ref, "metrics.jsonl")), metrics_records(os.path.join(got, "metrics.jsonl"))
    steps = [dict(r).get("step") for r in got_m]
    if steps != list(range(1, STEPS + 1)):
        repeated = sorted({s for s in steps if steps.count(s) > 1})
        missing = sorted(set(range(1, STEPS + 1)) - set(steps))
        problems.append(f"metrics.jsonl: {len(got_m)} lines, expected one for each step 1..{STEPS} in order "
                        f"(repeated {repeated}, missing {missing})")
    for i, (a, b) in enumerate(zip(ref_m, got_m)):
        if a != b:
            diff = [k for k, v in a if (k, v) not in b] + [k for k, v in b if (k, v) not in a]
            problems.append(f"metrics.jsonl line {i + 1}: differs from the uninterrupted run's in {sorted(set(diff))}")
            break


def main():
    grpo, fixtures, work = (os.path.abspath(a) for a in sys.argv[1:4])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    ref, out = os.path.join(work, "straight"), os.path.join(work, "killed")
    t0 = time.time()

    proc = start(grpo, fixtures, ref)
    while count_lines(os.path.join(ref, "metrics.jsonl")) == 0 and proc.poll() is None and time.time() < t0 + TIMEOUT:
        time.sleep(0.001)
    first_step = time.time() - t0  # NB: "start" kills land within 0.8 times this, on any machine
    _, stderr = proc.communicate(timeout=TIMEOUT)
    if proc.returncode != 0:
        sys.exit(f"FAIL: the uninterrupted run: status {proc.returncode}\n{stderr.decode(errors='replace')[-2000:]}")
    print(f"uninterrupted run: {STEPS} steps in {time.time() - t0:.1f} s, the first after {first_step:.2f} s")

    rng = random.Random(SEED)
    kinds = list(KINDS)
    rng.shuffle(kinds)
    problems = []
    kills = inside_writes = 0
    proc = None
    for kind in kinds:
        proc = start(grpo, fixtures, out)
        what = kill_at(proc, out, kind, rng, first_step)
        if what is None:
            break  # NB: the run finished first: the rest of the schedule has no run to kill
        kills += 1
        stderr = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        torn = [n for n in leftovers(out) if n.endswith(f"-{proc.pid}")]
        inside_writes += bool(torn)
        print(f"kill {kills} ({kind}): {what}; left {torn or 'no temporary folder'}; "
              f"{count_lines(os.path.join(out, 'metrics.jsonl'))} metric lines")
        if "cannot be resumed from" in stderr:
            problems.append(f"after kill {kills - 1}, a checkpoint could not be resumed from:\n{stderr[-1500:]}")
        proc = None
    if proc is None:
        proc = start(grpo, fixtures, out)
    _, stderr = proc.communicate(timeout=TIMEOUT)
    stderr = stderr.decode(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"FAIL: the last resume: status {proc.returncode}\n{stderr[-2000:]}")
    if "cannot be resumed from" in stderr:
        problems.append(f"the last resume passed over a damaged checkpoint:\n{stderr[-1500:]}")
    print(f"{kills} kills ({inside_writes} inside a checkpoint write), then finished; {time.time() - t0:.1f} s in all")
    if kills < 6:
        problems.append(f"only {kills} kills before the run finished; the schedule needs a longer run")
    if inside_writes == 0:
        problems.append("no kill landed inside a checkpoint write")

    for name, folder in (("the uninterrupted run", ref), ("the killed and resumed run", out)):
        left = leftovers(folder)
        if left:
            problems.append(f"{name} left temporary files or folders: {left}")
        partial = [n for n in sorted(os.listdir(folder)) if n.startswith("checkpoint-") and n not in left and
                   not all(os.path.exists(os.path.join(folder, n, f)) for f in ("model.pt", "trainer_state.json"))]
        if partial:
            problems.append(f"{name} left incomplete checkpoint folders (a prune cut short?): "
                            + ", ".join(f"{n} holding {sorted(os.listdir(os.path.join(folder, n)))}" for n in partial))
    compare(ref, out, problems)
    if problems:
        sys.exit("FAIL:\n- " + "\n- ".join(problems))
    print("final/, the last checkpoint, report.json, plot.svg and metrics.jsonl equal the uninterrupted run's")
    print("PASS")


if __name__ == "__main__":
    main()
