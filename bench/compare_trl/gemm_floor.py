"""The matrix products of one GRPO step, timed alone: a floor under any implementation's
step on this machine. Runs every projection of the step's shapes (decode: P·G rows a token;
update: forward and backward over the step's tokens, the output projection over the
completion tokens) with LibTorch's own GEMMs and nothing between them: no norms, rotary,
attention, softmax, sampling or optimizer. What a trainer spends beyond this is overhead
or other work.

Usage: gemm_floor.py [--model qwen2-10m] [--prompt-tokens 51] [--threads 2]
Prints JSON: the floors in seconds and the GEMM rates they ran at."""
import argparse
import json
import time

import torch

# hidden, intermediate, layers, query heads, key/value heads, head dim, vocabulary (make_models.py)
SHAPES = {
    "qwen2-10m": dict(H=256, I=768, L=10, NH=4, KV=2, D=64, V=8192),
    "qwen3-100m": dict(H=768, I=2048, L=15, NH=12, KV=4, D=64, V=8192),
}


def layer_weights(s):
    H, I, NH, KV, D = s["H"], s["I"], s["NH"], s["KV"], s["D"]
    shapes = dict(q=(NH * D, H), k=(KV * D, H), v=(KV * D, H), o=(H, NH * D), gate=(I, H), up=(I, H), down=(H, I))
    return [{n: torch.randn(*shape) * 0.02 for n, shape in shapes.items()} for _ in range(s["L"])]


def layer_products(x, w):
    """The seven projections of one decoder layer on x (M, H), chained so each has an input and a gradient."""
    q, k, v = x @ w["q"].t(), x @ w["k"].t(), x @ w["v"].t()
    # NB: k and v reach the result through a zero term, so the backward still runs their products.
    h = x + q @ w["o"].t() + 0 * (k.sum() + v.sum())
    return h + (x @ w["gate"].t() * (x @ w["up"].t())) @ w["down"].t()


def timed(fn, reps):
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2-10m", choices=sorted(SHAPES))
    ap.add_argument("--prompts", type=int, default=4, help="P prompts a step")
    ap.add_argument("--group-size", type=int, default=4, help="G completions a prompt")
    ap.add_argument("--prompt-tokens", type=int, default=51, help="mean prompt length in tokens")
    ap.add_argument("--new-tokens", type=int, default=64, help="completion length")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    s = SHAPES[args.model]
    layers = layer_weights(s)
    head = torch.randn(s["V"], s["H"]) * 0.02
    N, T = args.prompts * args.group_size, args.new_tokens

    def decode():
        with torch.no_grad():
            x = torch.randn(N, s["H"])
            for _ in range(T):
                h = x
                for w in layers:
                    h = layer_products(h, w)
                (h @ head.t()).sum()

    def update(tokens):
        # Forward and backward of every projection; the output projection over the completion tokens.
        for w in layers:
            for p in w.values():
                p.requires_grad_(True)
        head.requires_grad_(True)
        x = torch.randn(tokens, s["H"], requires_grad=True)
        h = x
        for w in layers:
            h = layer_products(h, w)
        (h[-N * T:] @ head.t()).sum().backward()

    shared = args.prompts * args.prompt_tokens + N * T      # each group's prompt once
    every_row = N * (args.prompt_tokens + T)                # every row through its prompt
    gen = timed(decode, args.reps)
    upd_shared = timed(lambda: update(shared), args.reps)
    upd_rows = timed(lambda: update(every_row), args.reps)
    per_token = 2 * sum(p.numel() for w in layers for p in w.values())
    flops_gen = T * N * (per_token + 2 * head.numel())
    flops_shared = 3 * (shared * per_token + N * T * 2 * head.numel())
    flops_rows = 3 * (every_row * per_token + N * T * 2 * head.numel())
    print(json.dumps({
        "model": args.model, "threads": args.threads, "rows": N, "new_tokens": T,
        "generation_s": round(gen, 4), "generation_gflops_per_s": round(flops_gen / gen / 1e9, 1),
        "update_prompt_once_s": round(upd_shared, 4), "update_prompt_once_gflops_per_s": round(flops_shared / upd_shared / 1e9, 1),
        "update_every_row_s": round(upd_rows, 4), "update_every_row_gflops_per_s": round(flops_rows / upd_rows / 1e9, 1),
        "tokens": {"prompt_once": shared, "every_row": every_row},
    }, indent=1))


if __name__ == "__main__":
    main()
