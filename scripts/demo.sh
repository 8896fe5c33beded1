#!/usr/bin/env bash
# The demo command: installs what is missing (Debian packages), builds the
# library and the arithmetic example into build/, and runs it: a cold-start
# SFT, then GRPO, on multi-digit addition, with held-out accuracy before and
# after GRPO in runs/arithmetic/report.json and a plot in runs/arithmetic/plot.svg.
# Usage: scripts/demo.sh [arithmetic options, e.g. --set grpo.steps=50]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
jobs=$(nproc 2>/dev/null || echo 2)

bash scripts/bootstrap.sh
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$jobs" --target arithmetic
exec "./$build/examples/arithmetic/arithmetic" --config configs/arithmetic.json "$@"
