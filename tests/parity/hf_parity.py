#!/usr/bin/env python3
"""The transformers side of the parity suite (tests/parity/test_hf_parity.cpp).

  hf_parity.py generate OUT CASE...   one folder OUT/<case> per case: model/ (a tiny random
                                      model built and saved by transformers, from a fixed seed),
                                      case.json, and expected.safetensors: transformers' outputs
  hf_parity.py check-export CASE_DIR  transformers loads the folders our export_pretrained wrote
                                      into CASE_DIR and must give the recorded outputs

Every reference output comes from transformers itself with attn_implementation="eager", on
the CPU: float32 and bfloat16 logits of one unpadded row and of a left-padded batch (position
ids from the attention mask, as generate() makes them), and a greedy continuation of 32
tokens of a left-padded batch of prompts by generate() (its KV cache, no EOS) with the logits
of each step.
Exit status 77 (the suite is skipped) when transformers cannot be imported.
"""
import copy
import hashlib
import json
import os
import shutil
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77
NEW_TOKENS = 32  # greedy continuation length
PAD_ID = 0  # written at the left of shorter rows; the mask says which positions are real

# Shared by most cases: hidden 64, 4 query heads of 16, 2 key/value heads (GQA), 2 layers.
BASE = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=64, rms_norm_eps=1e-6,
            tie_word_embeddings=False, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})


def rope(rope_type="default", theta=10000.0, **params):
    return {"rope_type": rope_type, "rope_theta": theta, **params}


# name -> what the case is for, the transformers config class, its arguments over BASE, and
# options: seq (the logits' sequence length), vocab_used (ids drawn below it), from_fixture
# (a real checkpoint instead of a random model), legacy_of (the same weights as another case,
# config.json in the pre-5 form). Every case compares the same things with the same
# tolerances (test_hf_parity.cpp): float32 logits within 1e-4 (max abs), bfloat16 logits
# within 2x transformers' own bfloat16 error on the same inputs, the logits of each of the
# 32 cached decoding steps within 1e-4, the 32 greedy tokens identical; and transformers
# reads our exported float32 / bfloat16 folders to its own logits within 1e-5.
CASES = {
    "llama_untied": dict(
        about="plain Llama: separate lm_head, GQA 4:2, default RoPE",
        cls="LlamaConfig", config={}),
    "llama_tied": dict(
        about="Llama with tie_word_embeddings (no lm_head.weight), 4 key/value heads (no GQA)",
        cls="LlamaConfig", config=dict(tie_word_embeddings=True, num_key_value_heads=4)),
    "llama_rope_linear": dict(
        about="rope_type linear, factor 2: positions divided by 2",
        cls="LlamaConfig", config=dict(rope_parameters=rope("linear", factor=2.0))),
    "llama_rope_dynamic": dict(
        about="rope_type dynamic (NTK), factor 2, max_position_embeddings 32: logits of 48 positions and "
              "prompts + 32 greedy tokens run past 32, where transformers recomputes the frequencies "
              "from the longest position of the batch at each forward",
        cls="LlamaConfig", config=dict(max_position_embeddings=32, rope_parameters=rope("dynamic", factor=2.0)),
        seq=48),
    "llama_rope_yarn": dict(
        about="rope_type yarn, factor 2 over 32 original positions (attention factor 1 + 0.1 ln 2)",
        cls="LlamaConfig",
        config=dict(rope_parameters=rope("yarn", factor=2.0, original_max_position_embeddings=32))),
    "llama_rope_llama3": dict(
        about="rope_type llama3 (Llama 3.1), theta 500000, factor 8, low/high frequency factors 1/4 over "
              "64 original positions: head_dim 16 has frequencies in all three bands",
        cls="LlamaConfig",
        config=dict(max_position_embeddings=128, rope_parameters=rope(
            "llama3", 500000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
            original_max_position_embeddings=64))),
    "llama_rope_llama3_legacy_config": dict(
        about="llama_rope_llama3's weights with config.json in the pre-5 form real Llama 3.1 checkpoints "
              "have: rope_scaling without rope_theta, rope_theta at the top level",
        legacy_of="llama_rope_llama3"),
    "llama_attention_bias": dict(
        about="Llama with attention_bias: biases on q/k/v AND o_proj",
        cls="LlamaConfig", config=dict(attention_bias=True)),
    "qwen2_bias_padded_vocab": dict(
        about="Qwen2: q/k/v biases (no o_proj bias), theta 1e6, config vocab 160 of which the tokenizer "
              "uses ids < 150 (the inputs); the padded rows take part in the argmax as in transformers",
        cls="Qwen2Config", config=dict(vocab_size=160, rope_parameters=rope(theta=1000000.0)), vocab_used=150),
    "qwen3": dict(
        about="Qwen3: per-head q/k RMSNorm, head_dim 32 with hidden 64 and 4 heads, no biases, tied, theta 1e6",
        cls="Qwen3Config",
        config=dict(head_dim=32, tie_word_embeddings=True, attention_bias=False,
                    rope_parameters=rope(theta=1000000.0))),
    "mistral_sliding_window": dict(
        about="Mistral with sliding_window 8, less than the 24 positions of the logits and the prompts + "
              "32 greedy tokens",
        cls="MistralConfig", config=dict(sliding_window=8)),
    "mistral_no_sliding_window": dict(
        about="Mistral with sliding_window null (full causal attention)",
        cls="MistralConfig", config=dict(sliding_window=None)),
    "smollm2_shaped": dict(
        about="SmolLM2-135M's shape at small size: Llama, tied, hidden 48, 3 query heads of 16 over 1 "
              "key/value head (GQA 3:1), theta 100000, rms_norm_eps 1e-5",
        cls="LlamaConfig",
        config=dict(hidden_size=48, num_attention_heads=3, num_key_value_heads=1, head_dim=16,
                    tie_word_embeddings=True, rms_norm_eps=1e-5, rope_parameters=rope(theta=100000.0))),
    "stories260K": dict(
        about="the real stories260K checkpoint (tests/fixtures/models/stories260K), as it is",
        from_fixture="models/stories260K"),
}


def fail(message):
    print(f"hf_parity.py: {message}", file=sys.stderr)
    sys.exit(1)


def import_references():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import safetensors  # noqa: F401
    except ImportError as e:
        print(f"hf_parity.py: skipped, {e} (the suite needs scripts/requirements.txt)", file=sys.stderr)
        return False
    return True


# ------------------------------------------------------------------ tiny random models

def randomize(model, seed):
    """Redraws every parameter from `seed` so that each part of the network matters at a
    1e-4 tolerance: transformers' own init (normal(0, 0.02), zero biases, unit norms) leaves
    attention near uniform (q·k ≈ 0, RoPE then changes nothing measurable), biases zero and
    norm weights all 1. Here matrices and embeddings are normal(0, 1/sqrt(columns))
    (unit-variance outputs, attention scores and logits of order 1, also when the embedding
    is the output projection), biases normal(0, 0.5) and norm weights 1 + normal(0, 0.2)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)


def build_model(name, spec, folder):
    import torch
    import transformers
    args = copy.deepcopy(BASE)
    args.update(copy.deepcopy(spec["config"]))
    config = getattr(transformers, spec["cls"])(**args)
    torch.manual_seed(zlib.crc32(name.encode()))
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    randomize(model, zlib.crc32(name.encode()) + 1)
    model.save_pretrained(folder)


def write_legacy(source_folder, folder):
    """The same weights, config.json as transformers 4 wrote it: rope_scaling (with
    rope_type and "type") and a top-level rope_theta instead of rope_parameters."""
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(os.path.join(source_folder, "model.safetensors"), os.path.join(folder, "model.safetensors"))
    with open(os.path.join(source_folder, "config.json")) as f:
        config = json.load(f)
    params = config.pop("rope_parameters")
    config["rope_theta"] = params.pop("rope_theta")
    config["rope_scaling"] = dict(params, type=params["rope_type"])
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


# ------------------------------------------------------------------ transformers' outputs

def load(folder, dtype):
    import torch
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, dtype=getattr(torch, dtype), attn_implementation="eager")
    model.eval()
    model.generation_config.eos_token_id = None  # 32 tokens, never cut short
    model.generation_config.pad_token_id = PAD_ID
    return model


def fresh_rope(model):
    """Forgets what dynamic RoPE learnt in an earlier call: transformers keeps the frequencies
    of the longest sequence seen so far, so each reference must start from the original ones."""
    rotary = model.model.rotary_emb
    rotary.inv_freq = rotary.original_inv_freq.clone()
    rotary.max_seq_len_cached = rotary.original_max_seq_len


def left_padded(rows):
    """(B, L) ids, left-padded with PAD_ID, and the (B, L) 0/1 mask of real tokens."""
    import torch
    L = max(len(r) for r in rows)
    ids = torch.full((len(rows), L), PAD_ID, dtype=torch.int64)
    mask = torch.zeros((len(rows), L), dtype=torch.int64)
    for b, r in enumerate(rows):
        ids[b, L - len(r):] = torch.tensor(r, dtype=torch.int64)
        mask[b, L - len(r):] = 1
    return ids, mask


def positions(mask):
    """Each real token's index among its row's real tokens, pads 0 (grpo::positions_from_mask)."""
    return (mask.cumsum(-1) - 1).clamp_min(0) * mask


def make_inputs(seed, seq, vocab_used):
    import torch
    g = torch.Generator().manual_seed(seed)

    def draw(n):
        return torch.randint(0, vocab_used, (n,), generator=g).tolist()
    full_ids, full_mask = left_padded([draw(seq)])
    batch_ids, batch_mask = left_padded([draw(seq), draw(seq - 5), draw(seq - 11)])
    prompt_ids, prompt_mask = left_padded([draw(11), draw(7), draw(4)])
    return {"full_ids": full_ids, "full_mask": full_mask, "full_positions": positions(full_mask),
            "batch_ids": batch_ids, "batch_mask": batch_mask, "batch_positions": positions(batch_mask),
            "prompt_ids": prompt_ids, "prompt_mask": prompt_mask}


def logits(model, inputs, which):
    import torch
    fresh_rope(model)
    with torch.no_grad():
        out = model(input_ids=inputs[f"{which}_ids"], attention_mask=inputs[f"{which}_mask"],
                    position_ids=inputs[f"{which}_positions"], use_cache=False)
    return out.logits.float()


def greedy(model, inputs):
    """generate()'s 32 greedy tokens (B, 32) and the logits it chose each from (B, 32, V)."""
    import torch
    fresh_rope(model)
    with torch.no_grad():
        out = model.generate(input_ids=inputs["prompt_ids"], attention_mask=inputs["prompt_mask"],
                             do_sample=False, max_new_tokens=NEW_TOKENS, min_new_tokens=0,
                             output_logits=True, return_dict_in_generate=True)
    Lp = inputs["prompt_ids"].shape[1]
    if out.sequences.shape[1] != Lp + NEW_TOKENS:
        fail(f"generate() gave {out.sequences.shape[1] - Lp} new tokens, expected {NEW_TOKENS}")
    return out.sequences[:, Lp:].contiguous(), torch.stack(out.logits, 1).float().contiguous()


def reference_outputs(folder, inputs):
    f32, bf16 = load(folder, "float32"), load(folder, "bfloat16")
    out = {}
    for which in ("full", "batch"):
        out[f"{which}_logits_f32"] = logits(f32, inputs, which)
        out[f"{which}_logits_bf16"] = logits(bf16, inputs, which)
    out["greedy_f32"], out["greedy_logits_f32"] = greedy(f32, inputs)
    return out


def max_diff(a, b, mask):
    """max |a - b| over the real positions (mask (B, T)) of (B, T, V) logits."""
    return (a - b).abs().amax(-1)[mask.bool()].max().item()


# ------------------------------------------------------------------ generate

def stamp(fixtures):
    """What the outputs depend on: this file, the library versions and the fixture checkpoints."""
    import torch
    import transformers
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    h.update(f"{torch.__version__} {transformers.__version__}".encode())
    for spec in CASES.values():
        if "from_fixture" in spec:
            for leaf in ("config.json", "model.safetensors"):
                with open(os.path.join(fixtures, spec["from_fixture"], leaf), "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def generate_case(name, out_dir, fixtures):
    import torch
    from safetensors.torch import save_file
    spec = CASES[name]
    case_dir = os.path.join(out_dir, name)
    shutil.rmtree(case_dir, ignore_errors=True)
    os.makedirs(case_dir)
    model_dir = os.path.join(case_dir, "model")
    if "from_fixture" in spec:
        model_dir = os.path.join(fixtures, spec["from_fixture"])
    elif "legacy_of" in spec:
        write_legacy(os.path.join(out_dir, spec["legacy_of"], "model"), model_dir)
    else:
        build_model(name, spec, model_dir)
    with open(os.path.join(model_dir, "config.json")) as f:
        vocab = json.load(f)["vocab_size"]
    seed = zlib.crc32(spec.get("legacy_of", name).encode()) + 2
    inputs = make_inputs(seed, spec.get("seq", 24), spec.get("vocab_used", vocab))
    out = reference_outputs(model_dir, inputs)
    if "legacy_of" in spec:
        # transformers itself must read both forms as one model, or the case means nothing.
        with torch.no_grad():
            from safetensors.torch import load_file
            other = load_file(os.path.join(out_dir, spec["legacy_of"], "expected.safetensors"))
        for key, value in out.items():
            if not torch.equal(value, other[key]):
                fail(f"{name}: transformers reads the legacy config differently from {spec['legacy_of']} ({key})")
    save_file({k: v.contiguous() for k, v in {**inputs, **out}.items()}, os.path.join(case_dir, "expected.safetensors"))
    bf16_err = max(max_diff(out[f"{w}_logits_bf16"], out[f"{w}_logits_f32"], inputs[f"{w}_mask"])
                   for w in ("full", "batch"))
    scale = max(out[f"{w}_logits_f32"].abs().max().item() for w in ("full", "batch"))
    case = {"name": name, "about": spec["about"], "model_dir": model_dir, "pad_id": PAD_ID,
            "new_tokens": NEW_TOKENS, "vocab_size": vocab,
            # transformers' own bfloat16 error against its float32 logits, and the logits' size
            "transformers_bf16_max_abs_error": bf16_err, "max_abs_logit": scale}
    with open(os.path.join(case_dir, "case.json"), "w") as f:
        json.dump(case, f, indent=2)
    print(f"{name}: |logits| <= {scale:.3g}, transformers bf16 vs f32 max |diff| {bf16_err:.3g}, "
          f"greedy row 0 {out['greedy_f32'][0].tolist()[:8]}...")


def generate(out_dir, names, fixtures):
    unknown = [n for n in names if n not in CASES]
    missing = [n for n in CASES if n not in names]
    if unknown or missing:
        fail(f"the case lists differ: unknown here {unknown}, not asked for {missing} "
             "(tests/parity/CMakeLists.txt and CASES must name the same cases)")
    os.makedirs(out_dir, exist_ok=True)
    if os.path.exists(os.path.join(out_dir, "SKIPPED")):
        os.remove(os.path.join(out_dir, "SKIPPED"))
    if not import_references():
        for name in names:  # outputs of an earlier run must not stand in for this one
            shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)
        with open(os.path.join(out_dir, "SKIPPED"), "w") as f:
            f.write("transformers, torch or safetensors cannot be imported by " + sys.executable + "\n")
        sys.exit(SKIP)
    import torch
    torch.set_num_threads(1)  # tiny models: threads cost more than they give
    key = stamp(fixtures)
    stamp_path = os.path.join(out_dir, "stamp")
    if os.path.exists(stamp_path) and open(stamp_path).read() == key and \
            all(os.path.exists(os.path.join(out_dir, n, "case.json")) for n in names):
        print("hf_parity.py: outputs up to date")
        return
    if os.path.exists(stamp_path):
        os.remove(stamp_path)
    # Legacy cases copy another case's model: those come first.
    for name in sorted(names, key=lambda n: "legacy_of" in CASES[n]):
        generate_case(name, out_dir, fixtures)
    with open(stamp_path, "w") as f:
        f.write(key)


# ------------------------------------------------------------------ check-export

def check_export(case_dir):
    """transformers loads the folders test_hf_parity.cpp exported: float32 must give the
    recorded float32 logits within 1e-5 (the same weights, so in practice 0) and the same 32
    greedy tokens; bfloat16 the recorded bfloat16 logits within 1e-5 (the same rounding of
    the same weights)."""
    if not import_references():
        sys.exit(SKIP)
    from safetensors.torch import load_file
    expected = load_file(os.path.join(case_dir, "expected.safetensors"))
    inputs = {k: v for k, v in expected.items() if not ("logits" in k or "greedy" in k)}
    problems = []
    for dtype, sub in (("float32", "f32"), ("bfloat16", "bf16")):
        folder = os.path.join(case_dir, f"exported_{sub}")
        if not os.path.exists(os.path.join(folder, "config.json")):
            fail(f"{folder}/config.json is missing: test_hf_parity.cpp writes it")
        model = load(folder, dtype)
        for which in ("full", "batch"):
            got = logits(model, inputs, which)
            diff = max_diff(got, expected[f"{which}_logits_{sub}"], inputs[f"{which}_mask"])
            print(f"{os.path.basename(case_dir)} exported {dtype} {which} logits: max |diff| {diff:.3g}")
            if not diff <= 1e-5:
                problems.append(f"{dtype} {which} logits differ by {diff:.3g} > 1e-5")
        if dtype == "float32":
            got, _ = greedy(model, inputs)
            if not torch_equal(got, expected["greedy_f32"]):
                problems.append(f"greedy tokens differ:\n  got      {got.tolist()}\n  expected "
                                f"{expected['greedy_f32'].tolist()}")
    if problems:
        fail(f"{case_dir}: transformers on our exported folders:\n" + "\n".join(problems))


def torch_equal(a, b):
    import torch
    return torch.equal(a, b)


def main(argv):
    if len(argv) >= 3 and argv[1] == "generate":
        fixtures = os.environ.get("GRPO_TEST_DATA_DIR", os.path.join(HERE, "..", "fixtures"))
        generate(argv[2], argv[3:], os.path.abspath(fixtures))
    elif len(argv) == 3 and argv[1] == "check-export":
        check_export(argv[2])
    else:
        fail("usage: hf_parity.py generate OUT CASE... | hf_parity.py check-export CASE_DIR")


if __name__ == "__main__":
    main(sys.argv)
