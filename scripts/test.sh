#!/usr/bin/env bash
# The test command: installs what is missing (Debian packages), configures,
# builds everything (CUDA kernels too when nvcc is present) and runs every test,
# then the sanitizer build's tests and fuzz targets.
# Usage: scripts/test.sh [build-dir]     (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
jobs=$(nproc 2>/dev/null || echo 2)

bash scripts/bootstrap.sh
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$jobs"
ctest --test-dir "$build" --output-on-failure -j"$jobs"
# The same code under AddressSanitizer and UBSan, and a short run of every
# fuzz target (scripts/sanitize.sh; about 30 minutes on 2 cores).
if [ "${GRPO_SKIP_SANITIZE:-0}" != 1 ]; then
  bash scripts/sanitize.sh --quick
fi
