#!/usr/bin/env bash
# Runs one libFuzzer target for a while from its seeds and says how it went.
# Usage: run_target.sh FUZZ_EXECUTABLE SEED_DIR OUT_DIR SECONDS [libFuzzer flags...]
# Inputs that reach new code are kept in OUT_DIR/corpus/<target> (and used as
# seeds again next time); a crashing input goes to OUT_DIR/findings/<target>-*
# and the script fails, with libFuzzer's report. The last line is
# "<target>: <executions> executions in <seconds> s, <n> inputs kept, no crash"
# (fewer seconds than asked when a -runs=N flag ends it first).
set -euo pipefail
exe=$1 seeds=$2 out=$3 seconds=$4
shift 4
name=$(basename "$exe")
name=${name#fuzz_}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/corpus/$name" "$out/findings"
# The tokens each kind of input is made of, for the mutations.
case $name in
  tokenize|templates|rewards) set -- -dict="$here/dict/text.dict" "$@" ;;
  safetensors|tokenizer_model) ;;
  *) set -- -dict="$here/dict/json.dict" "$@" ;;
esac
log="$out/$name.log"
# NB: leaks are reported at exit only (per-input leak checks would report the
# targets' and LibTorch's one-time caches); suppressions say whose each is.
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=1:allocator_may_return_null=1
export LSAN_OPTIONS=suppressions=$here/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
start=$SECONDS
"$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -detect_leaks=0 -print_final_stats=1 \
  -artifact_prefix="$out/findings/$name-" "$@" "$out/corpus/$name" "$seeds" >"$log" 2>&1 || status=$?
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
kept=$(find "$out/corpus/$name" -type f | wc -l)
if [ "$status" -ne 0 ]; then
  tail -n 80 "$log"
  echo "$name: FAILED (status $status) after ${execs:-?} executions; the input is in $out/findings/, the log $log"
  exit 1
fi
echo "$name: ${execs:-?} executions in $((SECONDS - start)) s, $kept inputs kept, no crash"
