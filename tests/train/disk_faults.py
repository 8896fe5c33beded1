"""`grpo train` when its files cannot be written: the run ends with a clear error
on stderr that names what could not be written (no crash, no C++ backtrace,
no `terminate called`) and a non-zero status; the checkpoints it had written
stay intact, no temporary file or folder is left, and a resume once the fault
is gone ends exactly where an uninterrupted run ends (final weights byte for
byte, metrics.jsonl without its wall-clock fields "seconds/*" and
"tokens_per_second", which measure time, not training).

Each case first runs STEPS_BEFORE steps with checkpoints every 2 steps, then
resumes towards STEPS with a fault, then resumes again without it. The learning
rate is constant (optimizer.schedule): a schedule spans grpo.steps, so with one
the first run's steps would not be those of a run of STEPS.
1. disk full in a checkpoint write: the resumed run has RLIMIT_FSIZE below the
   largest checkpoint file (SIGXFSZ ignored, so the write fails with EFBIG, as
   on a full disk), so its first checkpoint cannot be written;
2. disk full in the metrics append: RLIMIT_FSIZE lets metrics.jsonl grow by
   about one and a half lines, so the second step's line is torn and fails;
3. a read-only output folder: `chattr +i` on output_dir (root writes through
   permission bits), so the first checkpoint folder cannot be created. Skipped,
   with a note, where chattr does not work;
4. output_dir below a regular file (`<file>/sub`): a folder no one can create.
Usage: disk_faults.py GRPO_EXECUTABLE CLI_FIXTURE_DIR WORK_DIR"""
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

from run_files import leftovers, metrics_records

STEPS_BEFORE, STEPS = 4, 8
RUN = ["optimizer.schedule=constant", "checkpoint.save_every=2", "checkpoint.keep_last=3", "checkpoint.resume=true", "checkpoint.save_pretrained=float32"]
CRASH_MARKS = ("terminate called", "Exception raised from", "frame #", "what():", "Aborted", "Segmentation fault",
               "Traceback")
TIMEOUT = 120


def run(grpo, fixtures, out, steps, fsize_limit=None):
    cmd = [grpo, "train", "--config", os.path.join(fixtures, "tiny.json"), "--set", f"output_dir={out}",
           "--set", f"grpo.steps={steps}"]
    for o in RUN:
        cmd += ["--set", o]

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # NB: writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))

    return subprocess.run(cmd, cwd=fixtures, capture_output=True, text=True, timeout=TIMEOUT,
                          preexec_fn=limit_file_size if fsize_limit is not None else None)


def checkpoint_hashes(out):
    """{relative path: sha256} of every file in out's checkpoint folders."""
    hashes = {}
    for name in sorted(os.listdir(out)):
        if not name.startswith("checkpoint-") or not os.path.isdir(os.path.join(out, name)):
            continue
        for f in sorted(os.listdir(os.path.join(out, name))):
            with open(os.path.join(out, name, f), "rb") as fh:
                hashes[os.path.join(name, f)] = hashlib.sha256(fh.read()).hexdigest()
    return hashes


def fail(case, message, result=None):
    tail = f"\nstatus {result.returncode}, stderr:\n{result.stderr[-2000:]}" if result is not None else ""
    sys.exit(f"FAIL: {case}: {message}{tail}")


def expect_clear_error(case, result, *needles):
    if result.returncode <= 0:
        fail(case, "expected a non-zero exit status (not death by a signal)", result)
    for mark in CRASH_MARKS:
        if mark in result.stderr:
            fail(case, f"stderr shows a crash ({mark!r}) rather than an error", result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("grpo: ")]
    if not errors:
        fail(case, "no 'grpo: ...' error line on stderr", result)
    for needle in needles:
        if needle not in errors[-1]:
            fail(case, f"the error does not say {needle!r}: {errors[-1]}", result)
    return errors[-1]


def recover_and_compare(case, grpo, fixtures, out, ref, before):
    """Checks the earlier checkpoints and the leftovers, resumes without the fault and compares with `ref`."""
    if checkpoint_hashes(out) != before:
        fail(case, f"the checkpoints changed: {sorted(before)} before, {sorted(checkpoint_hashes(out))} after")
    if leftovers(out):
        fail(case, f"temporary files or folders were left: {leftovers(out)}")
    r = run(grpo, fixtures, out, STEPS)
    last = os.path.join(out, f"checkpoint-{STEPS_BEFORE}")
    if r.returncode != 0 or f"resumed from {last}" not in r.stderr:
        fail(case, f"the resume without the fault did not continue from {last}", r)
    for rel in ("final/model.safetensors", f"checkpoint-{STEPS}/model.pt"):
        with open(os.path.join(ref, rel), "rb") as a, open(os.path.join(out, rel), "rb") as b:
            if a.read() != b.read():
                fail(case, f"{rel} differs from the uninterrupted run's")
    got, want = metrics_records(os.path.join(out, "metrics.jsonl")), metrics_records(os.path.join(ref, "metrics.jsonl"))
    if got != want:
        fail(case, f"metrics.jsonl ({len(got)} lines) differs from the uninterrupted run's ({len(want)} lines)")
    if leftovers(out):
        fail(case, f"temporary files or folders were left after the resume: {leftovers(out)}")


def start_case(case, grpo, fixtures, out):
    r = run(grpo, fixtures, out, STEPS_BEFORE)
    if r.returncode != 0:
        fail(case, f"the first {STEPS_BEFORE} steps", r)
    return checkpoint_hashes(out)


def chattr(flag, path):
    try:
        return subprocess.run(["chattr", flag, path], capture_output=True, text=True)
    except FileNotFoundError:
        return None


def main():
    grpo, fixtures, work = (os.path.abspath(a) for a in sys.argv[1:4])
    if os.path.exists(work):
        subprocess.run(["chattr", "-R", "-i", work], capture_output=True)  # NB: a case 3 that was itself killed
        shutil.rmtree(work)
    os.makedirs(work)
    t0 = time.time()
    ref = os.path.join(work, "straight")
    r = run(grpo, fixtures, ref, STEPS)
    if r.returncode != 0:
        fail("the uninterrupted run", "failed", r)

    case = "disk full in a checkpoint write"
    out = os.path.join(work, "full_checkpoint")
    before = start_case(case, grpo, fixtures, out)
    largest = max(os.path.getsize(os.path.join(out, p)) for p in before)
    limit = largest // 2
    if os.path.getsize(os.path.join(out, "metrics.jsonl")) * 2 > limit:
        fail(case, f"the limit {limit} leaves metrics.jsonl no room; the test needs larger checkpoint files")
    r = run(grpo, fixtures, out, STEPS, fsize_limit=limit)
    error = expect_clear_error(case, r, os.path.join(out, "checkpoint-6"), "File too large")
    recover_and_compare(case, grpo, fixtures, out, ref, before)
    print(f"{case} (files limited to {limit} bytes): {error}")

    case = "disk full in the metrics append"
    out = os.path.join(work, "full_metrics")
    before = start_case(case, grpo, fixtures, out)
    metrics = os.path.join(out, "metrics.jsonl")
    size = os.path.getsize(metrics)
    limit = size + size * 3 // (2 * STEPS_BEFORE)  # NB: the next line fits, the one after is cut
    r = run(grpo, fixtures, out, STEPS, fsize_limit=limit)
    error = expect_clear_error(case, r, metrics, "File too large")
    with open(metrics, "rb") as f:
        text = f.read()
    if len(text) != limit or text.endswith(b"\n"):
        fail(case, f"expected metrics.jsonl cut at {limit} bytes mid-line, found {len(text)} bytes")
    recover_and_compare(case, grpo, fixtures, out, ref, before)
    print(f"{case} (files limited to {limit} bytes): {error}; the torn line was dropped on resume")

    case = "a read-only output folder (chattr +i)"
    out = os.path.join(work, "immutable")
    before = start_case(case, grpo, fixtures, out)
    c = chattr("+i", out)
    if c is None or c.returncode != 0:
        print(f"SKIP {case}: chattr +i does not work here ({'no chattr' if c is None else c.stderr.strip()})")
    else:
        try:
            r = run(grpo, fixtures, out, STEPS)
        finally:
            chattr("-i", out)
        error = expect_clear_error(case, r, os.path.join(out, "checkpoint-6"), "Operation not permitted")
        recover_and_compare(case, grpo, fixtures, out, ref, before)
        print(f"{case}: {error}")

    case = "output_dir below a regular file"
    blocker = os.path.join(work, "a_file")
    with open(blocker, "w") as f:
        f.write("not a folder\n")
    out = os.path.join(blocker, "sub")
    r = run(grpo, fixtures, out, STEPS)
    error = expect_clear_error(case, r, out)
    with open(blocker) as f:
        if f.read() != "not a folder\n":
            fail(case, f"{blocker} was changed")
    print(f"{case}: {error}")

    print(f"{time.time() - t0:.1f} s in all")
    print("PASS")


if __name__ == "__main__":
    main()
