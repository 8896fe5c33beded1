#!/usr/bin/env bash
# Data parallel: seconds per GRPO step of one process against K processes
# started by torchrun, on the same config (the same global batch: every
# process takes 1/K of each step's groups). Alternates the variants, R
# repetitions each; the first step of each run (warm-up) is left out.
# Usage, from the repository root:
#   bash bench/data_parallel.sh [build-dir] [K] [cpu|cuda] [config] [--set key=value ...]
# CPU (this machine):  bash bench/data_parallel.sh build 2 cpu
#   variants: 1 process × 1 thread, 1 process × K threads, K processes × 1 thread
# GPU machine:         bash bench/data_parallel.sh build 8 cuda configs/gsm8k.json
#   variants: 1 process on cuda:0, K processes on cuda:0..K-1 (NCCL)
set -euo pipefail
build=${1:-build}
K=${2:-2}
device=${3:-cpu}
config=${4:-configs/tinystories.json}
shift $(( $# < 4 ? $# : 4 ))
extra=("$@")
R=${GRPO_BENCH_REPEATS:-2}
steps=${GRPO_BENCH_STEPS:-4}
grpo=$build/tools/grpo
[ -x "$grpo" ] || { echo "no $grpo: build the grpo_cli target first" >&2; exit 1; }
python=${GRPO_PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

common=(--set grpo.steps="$steps" --set data.eval= --set checkpoint.resume=false --set logging.console=false
        --set model.device="$device" "${extra[@]}")
run() {  # name processes threads
  local name=$1 procs=$2 threads=$3 dir="$out/$1-$4"
  if [ "$procs" -eq 1 ]; then
    OMP_NUM_THREADS=$threads "$grpo" train -c "$config" "${common[@]}" --set threads="$threads" \
      --set output_dir="$dir" > /dev/null
  else
    OMP_NUM_THREADS=$threads "$python" -m torch.distributed.run --no-python --standalone --nproc-per-node "$procs" \
      "$grpo" train -c "$config" "${common[@]}" --set threads="$threads" --set output_dir="$dir" > /dev/null 2>&1
  fi
  echo "$name $dir/metrics.jsonl"
}

list=()
for rep in $(seq 1 "$R"); do
  if [ "$device" = cpu ]; then
    list+=($(run "1x1" 1 1 "$rep") $(run "1x$K" 1 "$K" "$rep") $(run "${K}x1" "$K" 1 "$rep"))
  else
    list+=($(run "1gpu" 1 1 "$rep") $(run "${K}gpu" "$K" 1 "$rep"))
  fi
done

"$python" - "$K" "${list[@]}" <<'EOF'
import json, statistics, sys
K = int(sys.argv[1])
runs = {}
for name, path in zip(sys.argv[2::2], sys.argv[3::2]):
    recs = [json.loads(l) for l in open(path) if l.strip()][1:]  # the first step warms up
    runs.setdefault(name, []).append((statistics.mean(r["seconds/step"] for r in recs),
                                      statistics.mean(r["tokens_per_second"] for r in recs)))
base = min(runs)  # "1x1" or "1gpu"
base_s = statistics.mean(s for s, _ in runs[base])
print("| variant | s/step | tokens/s | speed-up vs %s | efficiency |" % base)
print("|---|---|---|---|---|")
for name, vals in runs.items():
    s = statistics.mean(v[0] for v in vals); t = statistics.mean(v[1] for v in vals)
    procs = int(name.split("x")[0]) if "x" in name else int(name.replace("gpu", ""))
    cores = procs * (int(name.split("x")[1]) if "x" in name else 1)
    print("| %s | %.3f | %.0f | %.2f | %.2f |" % (name, s, t, base_s / s, base_s / s / max(cores, 1)))
EOF
