#!/usr/bin/env python3
"""Checks that the README and docs/ARCHITECTURE.md stay true to the code: the
examples the README shows are the example files, word for word, and every
header or source path the two documents name exists.

Usage: check_docs.py SOURCE_DIR      (exit 1 and one line per problem)
"""
import pathlib
import re
import sys

# Examples the README shows whole (examples/<name>/main.cpp).
SHOWN_EXAMPLES = ["trainer_api", "sample_group", "custom_reward"]
PATH = re.compile(r"(?<![\w/.])((?:include|src|kernels|tests|examples|bench|tools|docs|configs|scripts)/[\w./-]+"
                  r"(?:\{[\w.,]*\}[\w.]*)?|grpo/[\w/]+\.h)")


def expand(path: str) -> list:
    """a/b{,_cpu}.cpp -> a/b.cpp, a/b_cpu.cpp (the brace notation of the docs)."""
    m = re.match(r"(.*)\{([^}]*)\}(.*)", path)
    if not m:
        return [path]
    return [m.group(1) + alt + m.group(3) for alt in m.group(2).split(",")]


def main() -> int:
    root = pathlib.Path(sys.argv[1]).resolve()
    problems = []
    readme = (root / "README.md").read_text(encoding="utf-8")
    blocks = [b.strip() for b in re.findall(r"```cpp\n(.*?)```", readme, re.S)]
    for name in SHOWN_EXAMPLES:
        text = (root / "examples" / name / "main.cpp").read_text(encoding="utf-8").strip()
        if text not in blocks:
            problems.append(f"README.md: no code block equals examples/{name}/main.cpp")
    for doc in ("README.md", "docs/ARCHITECTURE.md"):
        for number, line in enumerate((root / doc).read_text(encoding="utf-8").splitlines(), 1):
            for found in PATH.findall(line):
                for path in expand(found.rstrip(".,:;)")):
                    if "<" in path or "*" in path:
                        continue
                    target = root / "include" / path if path.startswith("grpo/") else root / path
                    if not target.exists():
                        problems.append(f"{doc}:{number}: {path} does not exist")
    for p in problems:
        print(p)
    print(f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
