#!/usr/bin/env bash
# The model benchmarks (bench_model), one benchmark per process so that each
# peak memory figure is that benchmark's own. Usage, from the repository root:
#   bash bench/model.sh [build-dir] [cpu|cuda] > out.txt
# On the GPU machine: bash bench/model.sh build-gpu cuda
# GRPO_BENCH_MIN_TIME: seconds each repetition runs at least (default 2).
set -euo pipefail
build=${1:-build}
device=${2:-cpu}
bin=$build/bench/bench_model
[ -x "$bin" ] || { echo "no $bin: build the bench_model target first" >&2; exit 1; }
export GRPO_BENCH_DEVICE=$device
for name in $("$bin" --benchmark_list_tests); do
  "$bin" --benchmark_filter="^${name}\$" --benchmark_min_time="${GRPO_BENCH_MIN_TIME:-2}" --benchmark_repetitions=3 \
         --benchmark_report_aggregates_only=true 2>/dev/null | grep -E "_(median|mean)" || true
done
