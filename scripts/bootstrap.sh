#!/usr/bin/env bash
# Installs what grpo needs to build and test from Debian 12 packages.
# Idempotent: prints nothing and touches nothing when everything is present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build git pkg-config
  libtorch-dev            # LibTorch 1.13 (CPU)
  libopenblas0-pthread    # LibTorch's BLAS: without it Debian falls back to the slow reference BLAS
  python3-torch           # lets the tests load libgrpo.so from Python
  libeigen3-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libpcre2-dev            # the "regex" reward and tokenizer.json pre-tokenizers
  libsentencepiece-dev    # tokenizer.model files
  libicu-dev              # NFC for tokenizer.json normalizers
  libgtest-dev libgmock-dev libcli11-dev libbenchmark-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "bootstrap: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
