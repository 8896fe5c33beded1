#!/usr/bin/env bash
# On a GPU machine, from the repository root, after the build (for example the
# device build: bash .devdeps/build.sh --no-test, which builds into build-gpu):
# the CUDA test suites, then the model benchmarks on the GPU, logs in $OUT.
#   bash bench/gpu_run.sh [build-dir]
# The build needs Gloo's headers there too: prepare the device dependencies
# with the extra package, bash ../shared/device/prepare.sh libgloo-dev.
# With 2 or more GPUs the data-parallel suite (DataParallelCuda, NCCL) runs
# too, and bench/data_parallel.sh compares 1 process with one per GPU.
set -uo pipefail
build=${1:-build-gpu}
out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
ctest --test-dir "$build" -R "Cuda|CUDA|cuda" --output-on-failure 2>&1 | tail -30 | tee "$out/ctest_cuda.log"
bash bench/model.sh "$build" cuda 2>&1 | tee "$out/bench_model_cuda.txt"
gpus=$(nvidia-smi --list-gpus | wc -l)
if [ "$gpus" -ge 2 ]; then
  bash bench/data_parallel.sh "$build" "$gpus" cuda configs/tinystories.json 2>&1 | tee "$out/bench_data_parallel_cuda.txt"
fi
