"""`grpo train` under signals, as a user or a scheduler sends them:
1. SIGTERM during a run that saves no checkpoint of its own (save_every 0): the
   run ends after its step with a checkpoint of that step, report.json, and
   exit status 143; a resume continues from it to the end.
2. SIGINT twice in a row: the second ends the process at once, by the signal.
Usage: signal_stop.py GRPO_EXECUTABLE CLI_FIXTURE_DIR WORK_DIR"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time


def wait_for_lines(path, n, proc, timeout=180):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"FAIL: the run ended (status {proc.returncode}) before {n} steps")
        if os.path.exists(path):
            with open(path) as f:
                if sum(1 for _ in f) >= n:
                    return
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"FAIL: no {n} steps in {path} after {timeout} s")


def start(grpo, fixtures, out, *overrides):
    cmd = [grpo, "train", "--config", os.path.join(fixtures, "tiny.json"), "--set", f"output_dir={out}"]
    for o in overrides:
        cmd += ["--set", o]
    return subprocess.Popen(cmd, cwd=fixtures, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def main():
    grpo, fixtures, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    out = os.path.join(work, "term")
    long_run = ["grpo.steps=100000", "checkpoint.save_every=0", "checkpoint.resume=false"]

    proc = start(grpo, fixtures, out, *long_run)
    wait_for_lines(os.path.join(out, "metrics.jsonl"), 2, proc)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=180)
    if proc.returncode != 128 + signal.SIGTERM:
        sys.exit(f"FAIL: SIGTERM: status {proc.returncode}, expected 143\n{stderr[-2000:]}")
    with open(os.path.join(out, "metrics.jsonl")) as f:
        steps = sum(1 for _ in f)
    checkpoints = sorted(d for d in os.listdir(out) if d.startswith("checkpoint-"))
    if checkpoints != [f"checkpoint-{steps}"]:
        sys.exit(f"FAIL: SIGTERM after {steps} steps left {checkpoints}, expected checkpoint-{steps}")
    report = json.loads(stdout)
    if not report.get("stopped") or report.get("steps") != steps or not os.path.exists(os.path.join(out, "report.json")):
        sys.exit(f"FAIL: the report of the stopped run: {stdout[:500]}")
    if "stopping after the current step" not in stderr:
        sys.exit(f"FAIL: the first signal was not acknowledged on stderr:\n{stderr[-2000:]}")
    print(f"SIGTERM after {steps} steps: status 143, checkpoint-{steps}, report.json")

    proc = start(grpo, fixtures, out, f"grpo.steps={steps + 1}", "checkpoint.resume=true")
    stdout, stderr = proc.communicate(timeout=180)
    if proc.returncode != 0 or f"resumed from {os.path.join(out, f'checkpoint-{steps}')}" not in stderr + stdout:
        sys.exit(f"FAIL: resume after SIGTERM: status {proc.returncode}\n{stderr[-2000:]}")
    if not os.path.isdir(os.path.join(out, f"checkpoint-{steps + 1}")):
        sys.exit("FAIL: the resumed run wrote no checkpoint of its last step")
    print(f"resumed: step {steps + 1}, status 0")

    # NB: steps of 512 rows, so the second signal comes well inside the step the first let finish
    # (two signals sent back to back can merge into one).
    out2 = os.path.join(work, "twice")
    proc = start(grpo, fixtures, out2, *long_run, "grpo.group_size=256")
    wait_for_lines(os.path.join(out2, "metrics.jsonl"), 1, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    if proc.returncode != -signal.SIGINT:
        sys.exit(f"FAIL: a second SIGINT: status {proc.returncode}, expected death by SIGINT ({-signal.SIGINT})")
    print("SIGINT twice: ended at once by the signal")
    print("PASS")


if __name__ == "__main__":
    main()
