"""The accuracy reward against Hugging Face math-verify on MATH-500 and GSM8K.

For every problem: (a) reference answers, which must be judged correct: the gold
answer itself boxed, the dataset's own worked solution (MATH-500: its last
\\boxed{}; GSM8K: its "#### N" line, read with answer_after = "####"), and the
gold rewritten (a fraction as a/b or a decimal, thousands grouped, "x = " put
before it, a list reversed, \\left( \\right), a degree sign or unit dropped); (b)
perturbed answers, which must be judged wrong: a digit of a number changed, a
number times 10, the sign flipped, a fraction inverted, a square root dropped,
tuple elements swapped, an interval's bracket changed, a list shortened, a
choice letter changed. Each case is scored by the reward (through
grpo_reward_probe) and, when it is installed, by math-verify.

Prints the counts, the agreement and every disagreement as Markdown tables;
exits 1 when the reward misjudges any case (math-verify's verdicts never fail
the run: where it is wrong, the table says so).

usage: math_verify_agreement.py PROBE MATH500_JSONL GSM8K_JSONL [--limit N] [--json OUT]
"""
import argparse
import json
import re
import subprocess
import sys
import time

GSM8K_OPTIONS = {"answer_after": "####"}


# ---------------------------------------------------------------- perturbations

NUMBER = re.compile(r"(?<![\d.])\d+")


def first_number(gold):
    """The first digit run not after a decimal point, outside \\text{...}."""
    text_spans = [m.span() for m in re.finditer(r"\\(?:text|mbox|mathrm)\{[^{}]*\}(?:\^\d)?", gold)]
    for m in NUMBER.finditer(gold):
        if not any(a <= m.start() < b for a, b in text_spans):
            return m
    return None


def change_digit(gold):
    """The last digit of the first number, +1 (9 becomes 8)."""
    m = first_number(gold)
    if not m:
        return None
    digits = m.group()
    last = digits[-1]
    new = "8" if last == "9" else str(int(last) + 1)
    return gold[: m.end() - 1] + new + gold[m.end():]


def times_ten(gold):
    m = first_number(gold)
    if not m or int(m.group()) == 0:
        return None
    return gold[: m.end()] + "0" + gold[m.end():]


def flip_sign(gold):
    """A minus added or removed in front of a single value (not a tuple, list or equation)."""
    g = gold.strip()
    if g == "0" or g[0] in "([{" or any(s in g for s in (",", "=", "\\text", "\\mbox", "\\in", "\\begin", "_")):
        return None
    if g.startswith("\\") and not re.match(r"\\(d?frac|sqrt|pi|cot)", g):
        return None
    return g[1:] if g.startswith("-") else "-" + g


FRAC = re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}")


def invert_fraction(gold):
    m = FRAC.search(gold)
    if not m or m.group(1).strip() == m.group(2).strip():
        return None
    return gold[: m.start()] + "\\frac{%s}{%s}" % (m.group(2), m.group(1)) + gold[m.end():]


SQRT = re.compile(r"\\sqrt\{([^{}]*)\}")


def drop_sqrt(gold):
    m = SQRT.search(gold)
    if not m or m.group(1).strip() in ("0", "1"):
        return None
    return gold[: m.start()] + "(" + m.group(1) + ")" + gold[m.end():]


def top_level_items(inner):
    """Splits at commas outside braces and brackets."""
    items, depth, start = [], 0, 0
    for i, c in enumerate(inner):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    return items


def bracketed(gold):
    """(open, items, close) of "(a, b]" or "\\left( a, b \\right)", else None."""
    g = gold.strip().replace("\\left", "").replace("\\right", "")
    if len(g) < 2 or g[0] not in "([" or g[-1] not in ")]" or "\\cup" in g:
        return None
    items = top_level_items(g[1:-1])
    return (g[0], items, g[-1]) if len(items) >= 2 else None


def swap_tuple(gold):
    b = bracketed(gold)
    if not b or b[1][0].strip() == b[1][1].strip():
        return None
    open_, items, close = b
    return open_ + ",".join([items[1], items[0]] + items[2:]) + close


def change_bracket(gold):
    b = bracketed(gold)
    if not b:
        return None
    open_, items, close = b
    return ("[" if open_ == "(" else "(") + ",".join(items) + close


def shorten_list(gold):
    g = gold.strip()
    if g[:1] in "([" or "\\begin" in g:
        return None
    items = top_level_items(g.replace("\\{", "").replace("\\}", ""))
    if len(items) < 2:
        return None
    return ",".join(items[:-1])


def change_choice(gold):
    m = re.fullmatch(r"\\text\{\(([A-E])\)\}", gold.strip())
    if not m:
        return None
    return "\\text{(%s)}" % ("A" if m.group(1) == "E" else chr(ord(m.group(1)) + 1))


PERTURBATIONS = [change_digit, times_ten, flip_sign, invert_fraction, drop_sqrt, swap_tuple, change_bracket,
                 shorten_list, change_choice]


# ---------------------------------------------------------------- rewrites

# The same answer written otherwise, which must still be judged correct.

def fraction_as_slash(gold):
    m = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", gold.strip())
    return "%s%s/%s" % m.groups() if m else None


def fraction_as_decimal(gold):
    m = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", gold.strip())
    if not m:
        return None
    num, den = int(m.group(2)), int(m.group(3))
    d = den
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:  # not a terminating decimal
        return None
    return m.group(1) + repr(num / den)


def integer_grouped(gold):
    g = gold.strip()
    if not re.fullmatch(r"-?\d{4,}", g):
        return None
    return "{:,}".format(int(g)).replace(",", "{,}")


def as_equation(gold):
    g = gold.strip()
    if "=" in g or "," in g or "\\text" in g or "\\in" in g or g[:1] in "([\\{" and not g.startswith("\\frac"):
        return None
    return "x = " + g


def list_reversed(gold):
    g = gold.strip()
    if g[:1] in "([" or "\\begin" in g or "=" in g or re.search(r"\d,(\\!)?\s*\d{3}\b", g):
        return None  # a tuple, a matrix, an equation or thousands groups: no list
    items = top_level_items(g)
    if len(items) < 2:
        return None
    return ", ".join(item.strip() for item in reversed(items))


def sized_brackets(gold):
    b = bracketed(gold)
    if not b or "\\left" in gold:
        return None
    open_, items, close = b
    return "\\left%s %s \\right%s" % (open_, ", ".join(i.strip() for i in items), close)


def degrees_dropped(gold):
    g = gold.strip()
    return g[: -len("^\\circ")] if g.endswith("^\\circ") else None


def unit_dropped(gold):
    m = re.fullmatch(r"(.*?)\s*\\(?:text|mbox)\{\s*[a-z ]+\}(\^\d)?", gold.strip())
    return m.group(1) if m and re.search(r"\d", m.group(1)) else None


REWRITES = [fraction_as_slash, fraction_as_decimal, integer_grouped, as_equation, list_reversed, sized_brackets,
            degrees_dropped, unit_dropped]


# ---------------------------------------------------------------- cases

def last_boxed(text):
    """The inside of the last \\boxed{...} with balanced braces."""
    at = text.rfind("\\boxed")
    while at >= 0:
        i = text.find("{", at)
        depth, j = 0, i
        while 0 <= j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return text[i + 1: j]
            j += 1
        at = text.rfind("\\boxed", 0, at)
    return None


def math500_cases(path, limit):
    cases = []
    with open(path, encoding="utf-8") as f:
        items = [json.loads(line) for line in f if line.strip()]
    for item in items[:limit]:
        gold, uid = item["answer"], item["unique_id"]
        cases.append(dict(set="MATH-500", id=uid, kind="gold boxed", want=True, gold=gold,
                          completion="The final answer is $\\boxed{%s}$." % gold))
        if last_boxed(item["solution"]) is not None:
            cases.append(dict(set="MATH-500", id=uid, kind="solution", want=True, gold=gold,
                              completion=item["solution"]))
        for rewrite in REWRITES:
            same = rewrite(gold)
            if same is not None and same.strip() != gold.strip():
                cases.append(dict(set="MATH-500", id=uid, kind=rewrite.__name__, want=True, gold=gold,
                                  completion="The final answer is $\\boxed{%s}$." % same))
        seen = {gold.strip()}
        for perturb in PERTURBATIONS:
            wrong = perturb(gold)
            if wrong is None or wrong.strip() in seen:
                continue
            seen.add(wrong.strip())
            cases.append(dict(set="MATH-500", id=uid, kind=perturb.__name__, want=False, gold=gold,
                              completion="The final answer is $\\boxed{%s}$." % wrong))
    return cases


def gsm8k_cases(path, limit):
    cases = []
    with open(path, encoding="utf-8") as f:
        items = [json.loads(line) for line in f if line.strip()]
    for n, item in enumerate(items[:limit]):
        solution = item["answer"]
        at = solution.rfind("####")
        gold_text = solution[at + 4:].strip()
        value = int(gold_text.replace(",", ""))
        body = solution[:at]
        common = dict(set="GSM8K", id="test/%d" % n, gold=solution, options=GSM8K_OPTIONS)
        cases.append(dict(common, kind="solution", want=True, completion=solution))
        cases.append(dict(common, kind="gold boxed", want=True, completion="So the answer is \\boxed{%s}." % gold_text))
        wrongs = {"plus_one": value + 1, "minus_one": value - 1, "times_ten": value * 10}
        if value != 0:
            wrongs["flip_sign"] = -value
        for kind, wrong in wrongs.items():
            cases.append(dict(common, kind=kind, want=False, completion="%s#### %d" % (body, wrong)))
        cases.append(dict(common, kind="plus_one_grouped", want=False, completion="%s#### %s" % (body, f"{value + 1:,}")))
    return cases


# ---------------------------------------------------------------- scoring

def score_ours(probe, cases):
    lines = "".join(json.dumps(dict(completion=c["completion"], answer=c["gold"], options=c.get("options", {}))) + "\n"
                    for c in cases)
    done = subprocess.run([probe], input=lines, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        sys.exit("grpo_reward_probe failed: " + done.stderr[-2000:])
    scores = [float(s) for s in done.stdout.split()]
    assert len(scores) == len(cases), (len(scores), len(cases))
    return [s == 1.0 for s in scores]


def score_math_verify(cases):
    try:
        from math_verify import parse, verify
    except ImportError:
        return None
    out = []
    for c in cases:
        gold = c["gold"]
        if c["set"] == "MATH-500":
            gold = "$" + gold + "$"
        else:
            gold = gold[gold.rfind("####") + 4:].strip()
        try:
            out.append(bool(verify(parse(gold), parse(c["completion"]))))
        except Exception:  # math-verify raising is a "wrong" verdict
            out.append(False)
    return out


def pct(n, d):
    return "%.1f%%" % (100.0 * n / d) if d else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("probe")
    ap.add_argument("math500")
    ap.add_argument("gsm8k")
    ap.add_argument("--limit", type=int, default=None, help="problems per dataset (default: all)")
    ap.add_argument("--json", help="write every case with both verdicts here")
    args = ap.parse_args()

    cases = math500_cases(args.math500, args.limit) + gsm8k_cases(args.gsm8k, args.limit)
    t0 = time.time()
    ours = score_ours(args.probe, cases)
    t_ours = time.time() - t0
    t0 = time.time()
    mv = score_math_verify(cases)
    t_mv = time.time() - t0

    print("| set | cases | kind | ours right | math-verify right | agreement |")
    print("|---|---|---|---|---|---|")
    for name in ("MATH-500", "GSM8K"):
        for want, label in ((True, "(a) reference"), (False, "(b) perturbed")):
            idx = [i for i, c in enumerate(cases) if c["set"] == name and c["want"] == want]
            right = sum(ours[i] == want for i in idx)
            mv_right = sum(mv[i] == want for i in idx) if mv else None
            agree = sum(mv[i] == ours[i] for i in idx) if mv else None
            print("| %s | %d | %s | %d (%s) | %s | %s |" % (
                name, len(idx), label, right, pct(right, len(idx)),
                "-" if mv is None else "%d (%s)" % (mv_right, pct(mv_right, len(idx))),
                "-" if mv is None else "%d (%s)" % (agree, pct(agree, len(idx)))))
    n = len(cases)
    print("\n%d cases; the reward: %.2f s (probe), math-verify: %s" % (
        n, t_ours, "not installed" if mv is None else "%.1f s" % t_mv))
    if mv is not None:
        agree = sum(a == b for a, b in zip(ours, mv))
        print("agreement over all cases: %d of %d (%s)" % (agree, n, pct(agree, n)))

    misjudged = [i for i, c in enumerate(cases) if ours[i] != c["want"]]
    if misjudged:
        print("\nThe reward misjudges %d cases:" % len(misjudged))
        for i in misjudged:
            c = cases[i]
            print("  %s %s %s: gold %r, completion %r" % (c["set"], c["id"], c["kind"], c["gold"][-80:],
                                                         c["completion"][-120:]))
    if mv is not None:
        print("\n| set | problem | case | gold | answer | right | ours | math-verify |")
        print("|---|---|---|---|---|---|---|---|")
        for i, c in enumerate(cases):
            if ours[i] != mv[i]:
                gold = c["gold"] if c["set"] == "MATH-500" else c["gold"][c["gold"].rfind("####") + 4:].strip()
                answer = last_boxed(c["completion"]) if "\\boxed" in c["completion"][-200:] else \
                    c["completion"][c["completion"].rfind("####"):]
                cell = lambda s: "`" + str(s).replace("|", "\\|").replace("\n", " ")[:70] + "`"
                print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    c["set"], c["id"], c["kind"], cell(gold), cell(answer), "yes" if c["want"] else "no",
                    "yes" if ours[i] else "no", "yes" if mv[i] else "no"))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            for i, c in enumerate(cases):
                f.write(json.dumps(dict(c, ours=ours[i], math_verify=None if mv is None else mv[i])) + "\n")
    return 1 if misjudged else 0


if __name__ == "__main__":
    sys.exit(main())
