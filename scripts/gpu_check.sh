#!/usr/bin/env bash
# Everything that needs a GPU, in one bounded run on a machine with one:
# configure and build against that machine's CUDA-enabled LibTorch, the CUDA
# test suites, the CUDA op and model benchmarks, compute-sanitizer over the
# CUDA suites, data parallel on 2+ GPUs, then the rest of the test suite as
# time allows. Every stage has a time limit, and the whole run ends by a
# deadline, so the logs of what ran are always there: eight files in $OUT
# (default /tmp/gpu_check).
#
# Usage, from the repository root on the machine with the GPU:
#   bash scripts/gpu_check.sh [deadline-seconds, default 540]
# Where that machine lacks the dependencies, put their Debian 12 packages in
# .devdeps/debs (apt-get download: libeigen3-dev nlohmann-json3-dev
# libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libgtest-dev libgmock-dev
# googletest libcli11-dev libbenchmark-dev libbenchmark1debian libpcre2-dev
# libpcre2-8-0 libsentencepiece-dev libsentencepiece0 libicu-dev libicu72
# libgloo-dev pkgconf pkgconf-bin libpkgconf3); they are unpacked into
# .devdeps/root and used from there.
set -uo pipefail
cd "$(dirname "$0")/.."
deadline=$((SECONDS + ${1:-540}))
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
build=${GRPO_GPU_BUILD:-build-gpu}
jobs=$(nproc)

left() { echo $((deadline - SECONDS)); }
# stage NAME LIMIT LOG COMMAND...: runs COMMAND for at most LIMIT seconds (less
# when the deadline is nearer), appending to LOG; says how it ended.
stage() {
  local name=$1 limit=$2 log=$3
  shift 3
  local budget
  budget=$(($(left) - 5))
  [ "$budget" -lt "$limit" ] && limit=$budget
  if [ "$limit" -lt 10 ]; then
    echo "== $name: skipped, the deadline is near" | tee -a "$out/$log"
    return 0
  fi
  echo "== $name (at most ${limit}s)" | tee -a "$out/$log"
  local start=$SECONDS status
  timeout --kill-after=5 "$limit" "$@" >> "$out/$log" 2>&1
  status=$?
  echo "== $name: exit $status after $((SECONDS - start))s" | tee -a "$out/$log"
  return $status
}

# The machine, and the carried packages.
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  nvcc --version | tail -2
  command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer
  nproc; free -g | head -2
} > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
prefix_path=$(python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
if [ -d .devdeps/debs ]; then
  mkdir -p .devdeps/root
  for f in .devdeps/debs/*.deb; do dpkg -x "$f" .devdeps/root; done
  root=$PWD/.devdeps/root
  prefix_path="$prefix_path;$root/usr"
  export LD_LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
  # NB: the packages' .pc files say prefix=/usr; the sysroot puts them where
  # they were unpacked. A carried pkgconf serves where the machine has none.
  export PKG_CONFIG_PATH=$root/usr/lib/x86_64-linux-gnu/pkgconfig:$root/usr/share/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$root
  export PATH=$PATH:$root/usr/bin
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
stage configure 120 build.log cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix_path" -DCMAKE_CUDA_ARCHITECTURES=90 -DGRPO_WITH_CUDA=ON \
  -DGRPO_BUILD_EXAMPLES=OFF ${CMAKE_ARGS:-} || { tail -40 "$out/build.log"; exit 1; }
grep -E "CUDA kernels|error" "$out/build.log"
stage "build grpo_tests" 360 build.log cmake --build "$build" -j"$jobs" --target grpo_tests \
  || { grep -E "error|Error" "$out/build.log" | head -40; exit 1; }
tests=$build/tests/grpo_tests

stage "CUDA test suites" 120 cuda_tests.log "$tests" --gtest_filter='*Cuda*'
tail -25 "$out/cuda_tests.log"

stage "build the benchmarks" 120 build.log cmake --build "$build" -j"$jobs" --target bench_ops bench_model
# NB: 0.2 s a repetition did not end in 90 s on an H200 (about 70 s at 0.05);
# stdbuf keeps the lines of a stage cut short.
stage "CUDA op benchmarks" 120 bench_ops_cuda.txt stdbuf -oL "$build/bench/bench_ops" --benchmark_filter=/cuda/ \
  --benchmark_min_time=0.05 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/bench_ops_cuda.json" --benchmark_out_format=json
grep -E "_(median|min) " "$out/bench_ops_cuda.txt" | head -60

stage "model benchmarks" 100 bench_model_cuda.txt env GRPO_BENCH_MIN_TIME=0.5 bash bench/model.sh "$build" cuda
cat "$out/bench_model_cuda.txt"

# compute-sanitizer: our kernels' suites under all four tools, then every
# CUDA suite (LibTorch's kernels among them, in training) under memcheck.
# NB: the parameterized cases are named AllOptions/GrpoLossCudaVsCpu.*
kernels='*GrpoLossCuda*:*GroupAdvantagesCuda*'
for tool in memcheck racecheck initcheck synccheck; do
  stage "$tool, the kernels' suites" 60 sanitize.log env GRPO_SANITIZE_FILTER="$kernels" \
    bash scripts/compute_sanitize.sh "$build" "$tool"
done
stage "memcheck, every CUDA suite" 150 sanitize.log env GRPO_SANITIZE_FILTER='*Cuda*' \
  bash scripts/compute_sanitize.sh "$build" memcheck
grep -E "^== |ERROR SUMMARY|FAILED|PASSED|compute_sanitize" "$out/sanitize.log"

# With 2 or more GPUs: 1 process against one per GPU (NCCL). The log joins
# the model benchmarks' (8 files at most come back).
gpus=$(nvidia-smi --list-gpus | wc -l)
if [ "$gpus" -ge 2 ]; then
  stage "build grpo" 120 build.log cmake --build "$build" -j"$jobs" --target grpo_cli
  stage "data parallel, $gpus GPUs" 240 bench_model_cuda.txt \
    bash bench/data_parallel.sh "$build" "$gpus" cuda configs/tinystories.json
fi

# The rest of the suite, in parallel shards, with whatever time is left.
export GRPO_SHARDS=8 GRPO_TESTS=$tests
stage "the other suites (8 shards)" 600 tests_all.log bash -c '
  dir=/tmp/gpu_check_shards; rm -rf "$dir"; mkdir -p "$dir"; status=0
  for i in $(seq 0 $((GRPO_SHARDS - 1))); do
    GTEST_TOTAL_SHARDS=$GRPO_SHARDS GTEST_SHARD_INDEX=$i OMP_NUM_THREADS=2 \
      "$GRPO_TESTS" --gtest_filter="-*Cuda*" --gtest_brief=1 > "$dir/$i" 2>&1 &
  done
  for job in $(jobs -p); do wait "$job" || status=1; done
  exit $status'
cat /tmp/gpu_check_shards/* >> "$out/tests_all.log" 2>/dev/null
grep -E "PASSED|FAILED|tests ran" "$out/tests_all.log" | head -30
echo "gpu_check: done in ${SECONDS}s"
