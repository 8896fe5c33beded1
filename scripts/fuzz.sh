#!/usr/bin/env bash
# A fuzzing campaign: builds the libFuzzer targets (scripts/sanitize.sh
# --build-only) and runs each for SECONDS, two at a time, keeping the inputs
# that reach new code between campaigns in <build>/fuzz/corpus. Prints one
# line per target (executions, inputs kept, crash or not); a crashing input is
# left in <build>/fuzz/findings/ and the script fails.
# Usage: scripts/fuzz.sh [SECONDS per target, default 600] [target ...]
# (the targets are listed in fuzz/CMakeLists.txt; GRPO_SANITIZE_BUILD names
# the build folder, default build-sanitize; GRPO_FUZZ_RUNS=N ends a target
# after N executions, if that comes before SECONDS)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
[ $# -gt 0 ] && shift
build=${GRPO_SANITIZE_BUILD:-build-sanitize}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  read -r -a targets <<<"$(sed -n 's/^set(_grpo_fuzz_targets //p' fuzz/CMakeLists.txt) \
$(sed -n 's/^    \([a-z_ ]*\))$/\1/p' fuzz/CMakeLists.txt)"
fi
GRPO_SANITIZE_TARGETS="${targets[*]/#/fuzz_}" bash scripts/sanitize.sh --build-only "$build"
printf '%s\n' "${targets[@]}" |
  xargs -P 2 -I{} fuzz/run_target.sh "$build/fuzz/fuzz_{}" "fuzz/corpus/{}" "$build/fuzz" "$seconds" \
    ${GRPO_FUZZ_RUNS:+-runs=$GRPO_FUZZ_RUNS} |
  grep -E ': ([0-9?]+ executions|FAILED)'
