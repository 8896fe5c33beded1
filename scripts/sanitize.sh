#!/usr/bin/env bash
# The sanitizer run: builds the library, the command line, the test suites and
# the libFuzzer targets with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer (any undefined behaviour fails), then runs the
# tests and fuzzes each target for a while (fuzz/README.md).
# Usage: scripts/sanitize.sh [--quick | --build-only] [build-dir]   (default: build-sanitize)
#   (none)        every test that can run under the sanitizers, each in its own process
#                 (about 20 minutes on 2 cores after the build)
#   --quick       grpo_tests in one process, the command line's cases and the
#                 fuzz targets (what the test command runs; about 10 minutes)
#   --build-only  build, run nothing
# Environment: GRPO_FUZZ_SECONDS (default 20) seconds per fuzz target;
# GRPO_SANITIZE_TARGETS, the targets to build (default all); GRPO_SANITIZE_TESTS,
# a ctest -R regular expression of the tests to run (default all but those
# excluded below).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=full
case ${1:-} in
  --quick) mode=quick; shift ;;
  --build-only) mode=build; shift ;;
esac
build=${1:-build-sanitize}
jobs=$(nproc 2>/dev/null || echo 2)

bash scripts/bootstrap.sh
# NB: OpenMP off: clang's libomp beside LibTorch's libgomp would be two
# runtimes in one process; the CPU loops run on one thread here.
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1" \
  -DGRPO_SANITIZE=ON -DGRPO_BUILD_FUZZ=ON -DGRPO_WITH_CUDA=OFF -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON \
  -DGRPO_BUILD_BENCH=OFF -DGRPO_BUILD_EXAMPLES=OFF -DGRPO_INSTALL=OFF \
  -DGRPO_FUZZ_SECONDS="${GRPO_FUZZ_SECONDS:-20}"
cmake --build "$build" -j"$jobs" ${GRPO_SANITIZE_TARGETS:+--target $GRPO_SANITIZE_TARGETS}
[ "$mode" = build ] && exit 0

here=$(pwd)
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1
export LSAN_OPTIONS=suppressions=$here/fuzz/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if [ "$mode" = quick ]; then
  # NB: every GoogleTest suite in one process (each ctest entry would start
  # LibTorch under the sanitizers again: a second a test), then the command
  # line's cases and the fuzz targets.
  "$build/tests/grpo_tests" --gtest_brief=1
  ctest --test-dir "$build" --output-on-failure -j"$jobs" -R '^cli_|^fuzz_'
  exit 0
fi
# Not run here: python_load_library and trl_loss_parity (Python cannot load
# an instrumented library without preloading the sanitizer runtime), the two consumer builds
# (they build a project of their own, not this code), and the checks that are
# Python only (layers, docs, the tokenizer golden file).
skip='^(python_load_library|trl_loss_parity|install_and_consume|subdirectory_consume|layers|layers_checker_finds_violations|docs_are_true|docs_checker_finds_problems|tokenizer_golden_matches_tokenizers)$'
ctest --test-dir "$build" --output-on-failure -j"$jobs" -E "$skip" ${GRPO_SANITIZE_TESTS:+-R "$GRPO_SANITIZE_TESTS"}
