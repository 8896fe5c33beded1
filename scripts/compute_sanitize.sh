#!/usr/bin/env bash
# NVIDIA's compute-sanitizer over the CUDA test suites: memcheck (out-of-bounds
# and misaligned device accesses), racecheck (shared-memory races), initcheck
# (reads of uninitialized device memory) and synccheck (misused barriers).
# Needs a GPU and a build made with CUDA (GRPO_WITH_CUDA, the default where
# the toolkit is found). Without a GPU it says so and does nothing.
# Usage: scripts/compute_sanitize.sh [build-dir, default build] [tool ...]
# GRPO_SANITIZE_FILTER picks the GoogleTest cases (default '*Cuda*').
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ $# -gt 0 ] && shift
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(memcheck racecheck initcheck synccheck)
if ! nvidia-smi -L >/dev/null 2>&1; then
  echo "compute_sanitize: no GPU here (nvidia-smi finds none); nothing run"
  exit 0
fi
sanitizer=$(command -v compute-sanitizer || true)
for dir in "${CUDA_HOME:-}" /usr/local/cuda; do
  [ -z "$sanitizer" ] && [ -n "$dir" ] && [ -x "$dir/bin/compute-sanitizer" ] && sanitizer=$dir/bin/compute-sanitizer
done
[ -n "$sanitizer" ] || { echo "compute_sanitize: compute-sanitizer not found (PATH, \$CUDA_HOME/bin, /usr/local/cuda/bin)" >&2; exit 1; }
tests=$build/tests/grpo_tests
[ -x "$tests" ] || { echo "compute_sanitize: no $tests; build the tests first" >&2; exit 1; }
# NB: LibTorch's caching allocator hands out slices of large blocks, which
# memcheck cannot tell apart; without it every tensor is its own allocation.
export PYTORCH_NO_CUDA_MEMORY_CACHING=1
status=0
for tool in "${tools[@]}"; do
  echo "== compute-sanitizer --tool $tool"
  "$sanitizer" --tool "$tool" --error-exitcode 99 --print-limit 20 \
    "$tests" --gtest_brief=1 --gtest_filter="${GRPO_SANITIZE_FILTER:-*Cuda*}" || { echo "compute_sanitize: $tool FAILED"; status=1; }
done
exit $status
