#!/usr/bin/env bash
# Installs what grpo needs to build and test on Debian 12:
#  1. Debian packages: compilers, CMake, Ninja, Eigen, nlohmann_json, spdlog,
#     PCRE2, SentencePiece, ICU, GoogleTest, CLI11, Google Benchmark, clang with
#     its sanitizer and libFuzzer runtimes (`sudo` is used when not root);
#  2. the Python environment pinned in scripts/requirements.txt: LibTorch 2.11
#     (the C++ library inside the torch wheel) and the references the tests
#     check against (transformers, tokenizers, safetensors). It is a virtual
#     environment keyed by the pins and the Python version, shared by every
#     clone on the machine: $GRPO_ENV_ROOT/env-<key> (default root
#     ~/.cache/grpo); `.venv` at the repository root links to it.
# Idempotent: quiet and quick when everything is present.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(
  build-essential cmake ninja-build git pkg-config
  python3 python3-venv
  libeigen3-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libpcre2-dev            # the "regex" reward and tokenizer.json pre-tokenizers
  libgloo-dev             # headers of Gloo, which LibTorch's c10d CPU backend (data parallel) includes
  libsentencepiece-dev    # tokenizer.model files
  libicu-dev              # NFC for tokenizer.json normalizers
  libgtest-dev libgmock-dev libcli11-dev libbenchmark-dev
  clang libclang-rt-14-dev  # scripts/sanitize.sh: AddressSanitizer, UBSan and libFuzzer
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ------------------------------------------------------------ the Python environment
# The first python3 on PATH that can make a virtual environment (Debian's own
# /usr/bin/python3 with python3-venv otherwise).
python=""
for candidate in "$(command -v python3 || true)" /usr/bin/python3; do
  if [ -n "$candidate" ] && "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
    python=$candidate
    break
  fi
done
[ -n "$python" ] || { echo "bootstrap: no python3 with the venv module" >&2; exit 1; }

requirements=$root/scripts/requirements.txt
key=$({ "$python" -c 'import sys; print(sys.version)'; cat "$requirements"; } | sha256sum | cut -c1-16)
env_root=${GRPO_ENV_ROOT:-$HOME/.cache/grpo}
env=$env_root/env-$key
if [ ! -f "$env/.complete" ]; then
  echo "bootstrap: creating the Python environment $env (LibTorch and the test references)"
  rm -rf "$env"
  mkdir -p "$env_root"
  "$python" -m venv "$env"
  "$env/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$requirements"
  # The torch wheel's CUDA libraries come from the machine's CUDA 13 toolkit
  # where it has them; where it does not (no toolkit), from the wheel's own
  # CUDA runtime packages, at the versions the wheel asks for.
  cuda_lib=$("$env/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cuda.so"))' 2>/dev/null || true)
  if [ -z "$cuda_lib" ] || ldd "$cuda_lib" | grep -q "not found"; then
    echo "bootstrap: the CUDA 13 toolkit's libraries are missing; installing the torch wheel's CUDA runtime packages"
    "$env/bin/python" -m pip install -q --disable-pip-version-check \
      "cuda-toolkit[cublas,cudart,cufft,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.2" \
      nvidia-cudnn-cu13==9.19.0.56 nvidia-nccl-cu13==2.28.9
  fi
  # llama.cpp's own converter (convert_hf_to_gguf.py), which the GGUF export is
  # checked against: the llama.cpp source the pinned llama-cpp-python vendors.
  llama=$(grep -E '^llama-cpp-python==' "$requirements" | cut -d= -f3)
  if [ -n "$llama" ]; then
    sdist=$(mktemp -d)
    "$env/bin/python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
      -d "$sdist" "llama-cpp-python==$llama"
    tar -xzf "$sdist"/llama_cpp_python-*.tar.gz -C "$sdist"
    mv "$sdist"/llama_cpp_python-*/vendor/llama.cpp "$env/llama.cpp"
    rm -rf "$sdist"
  fi
  "$env/bin/python" -c 'import torch, transformers, tokenizers, safetensors' ||
    { echo "bootstrap: the Python environment $env does not import" >&2; exit 1; }
  touch "$env/.complete"
fi
if [ "$(readlink "$root/.venv" 2>/dev/null)" != "$env" ]; then
  rm -rf "$root/.venv"
  ln -s "$env" "$root/.venv"
fi
