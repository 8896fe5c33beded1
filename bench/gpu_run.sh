#!/usr/bin/env bash
# On a GPU machine, from the repository root, after the build (for example the
# device build: bash .devdeps/build.sh --no-test, which builds into build-gpu):
# the CUDA test suites, then the model benchmarks on the GPU, logs in $OUT.
#   bash bench/gpu_run.sh [build-dir]
set -uo pipefail
build=${1:-build-gpu}
out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
ctest --test-dir "$build" -R "Cuda|CUDA|cuda" --output-on-failure 2>&1 | tail -30 | tee "$out/ctest_cuda.log"
bash bench/model.sh "$build" cuda 2>&1 | tee "$out/bench_model_cuda.txt"
