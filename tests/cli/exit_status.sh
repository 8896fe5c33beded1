#!/usr/bin/env bash
# The command line's exit status: 0 for --help, 2 for every usage mistake the
# parser finds (whatever code CLI11 has for it), 1 for a run-time error.
# Usage: exit_status.sh GRPO_CLI CONFIG    (prints PASS, or a FAIL line per case)
set -u
cli=$1 config=$2
failures=0
expect() {
  local want=$1
  shift
  "$cli" "$@" >/dev/null 2>&1
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: grpo $*: exit status $got, expected $want"
    failures=$((failures + 1))
  fi
}
expect 0 --help
expect 0 train --help
expect 2                                              # no subcommand
expect 2 frobnicate                                   # an unknown subcommand
expect 2 train                                        # --config missing
expect 2 train --config "$config" --no-such-option    # an unknown option
expect 2 train --config "$config" extra               # an extra argument
expect 2 train --config /no/such/config.json          # a failed file check
expect 2 sample --config "$config" -p 1+1= -n 0       # a failed range check
expect 2 sample --config "$config" -p 1+1= -t nan
expect 1 train --config "$config" --set grpo.group_size=0   # a bad config: a run-time error
expect 1 config --set no.such.key=1
[ "$failures" -eq 0 ] && echo PASS
