#!/usr/bin/env python3
"""Checks that no #include runs from a lower layer of grpo to a higher one,
and that the text-level layers stay torch-free. The layers and what each may
include are docs/ARCHITECTURE.md's table; this file is that table, checked.

Usage: check_layers.py SOURCE_DIR      (exit 1 and one line per violation)
"""
import pathlib
import re
import sys

# What each layer may include besides itself. "root" is include/grpo/*.h and
# src/*.{h,cpp}: the base every layer may use.
ALLOWED = {
    "root": set(),
    "text": {"root"},
    "tokenizers": {"root", "text"},
    "rewards": {"root", "text", "tokenizers"},
    "data": {"root", "text", "tokenizers"},
    "ops": {"root"},
    "models": {"root", "ops"},
    "io": {"root", "ops", "models", "tokenizers"},
    "rollout": {"root", "text", "ops", "models", "tokenizers", "rewards", "data"},
    "config": {"root", "ops", "models", "rollout"},
    "train": {"root", "text", "ops", "models", "tokenizers", "rewards", "data", "io", "rollout", "config"},
}
# Layers whose code must not pull in LibTorch (text level only).
TORCH_FREE = {"root", "text", "tokenizers", "rewards", "data"}
TORCH_HEADER = re.compile(r"^(torch|ATen|c10|caffe2)/")
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')


def layer_of(rel: pathlib.PurePosixPath) -> str:
    """The layer of a file given by its path in the source tree."""
    parts = rel.parts
    if parts[0] == "kernels":
        return "ops"
    if parts[0] == "include":
        parts = parts[2:]  # include/grpo/...
    elif parts[0] == "src":
        parts = parts[1:]
    return parts[0] if len(parts) > 1 else "root"


def target_layer(name: str, root: pathlib.Path) -> str | None:
    """The layer of an included header, or None when it is not grpo's own."""
    if name.startswith("grpo/"):
        return layer_of(pathlib.PurePosixPath("include", *name.split("/")))
    for base in ("src", "kernels"):
        if (root / base / name).exists():
            return layer_of(pathlib.PurePosixPath(base, *name.split("/")))
    return None


def main() -> int:
    root = pathlib.Path(sys.argv[1]).resolve()
    files = [p for d in ("include/grpo", "src", "kernels") for p in (root / d).rglob("*")
             if p.suffix in {".h", ".cpp", ".cu", ".cuh"}]
    problems = []
    for path in sorted(files):
        rel = pathlib.PurePosixPath(path.relative_to(root).as_posix())
        if rel.name == "pch.h":  # the precompiled header is a build device, not a dependency
            continue
        if rel == pathlib.PurePosixPath("include/grpo/grpo.h"):  # the umbrella: everything, on purpose
            continue
        if "sentencepiece_module" in rel.parts:  # a separate module, linked only to SentencePiece
            continue
        layer = layer_of(rel)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            name = m.group(1)
            if layer in TORCH_FREE and TORCH_HEADER.match(name):
                problems.append(f"{rel}:{number}: the {layer} layer is torch-free but includes <{name}>")
            target = target_layer(name, root)
            if target is None or target == layer:
                continue
            if target not in ALLOWED[layer]:
                problems.append(f"{rel}:{number}: {layer} may not include {name} ({target} is not below it)")
    for p in problems:
        print(p)
    print(f"{len(files)} files checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
