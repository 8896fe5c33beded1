#!/usr/bin/env python3
"""llama.cpp's side of the GGUF export checks (grpo export --format gguf).

  gguf_parity.py prepare OUT GRPO_CLI REFERENCE CASE...   per case, OUT/<case>/: the model folder (the real
                                                 stories260K, or a tiny random Qwen2 / Qwen3 / Llama
                                                 built by transformers from a fixed seed with the
                                                 qwen2_tiny, llama3_tiny or gpt2_tiny byte-level BPE
                                                 tokenizer),
                                                 our GGUF exports
                                                 grpo-<type>.gguf for f32, f16, bf16 and q8_0, our
                                                 Hugging Face export hf/, and reference.safetensors:
                                                 our ids, logits and greedy tokens (grpo_gguf_reference)
  gguf_parity.py tensors CASE_DIR                 gguf.GGUFReader reads every file: each tensor's
                                                 name, shape, type and value is our weight as llama.cpp
                                                 lays it out (f32 exact; f16 / bf16 / q8_0 equal to
                                                 gguf.quants' own encoding of the weight)
  gguf_parity.py converter CASE_DIR LLAMA_CPP     llama.cpp's convert_hf_to_gguf.py (from the llama.cpp
                                                 source tree LLAMA_CPP) on hf/, per type: its metadata
                                                 keys and values are ours (OURS_ONLY and THEIRS_ONLY
                                                 list the keys one side only writes, with the reason)
                                                 and its tensors are ours byte for byte
  gguf_parity.py llama-cpp CASE_DIR [REPORT]      llama-cpp-python loads each file: its tokenization of
                                                 the prompts is ours, its logits within a tolerance of
                                                 ours (f32: 1e-3), its 32 greedy tokens ours (f32; the
                                                 other types are reported); figures into REPORT (JSON)

Exit status 77 (skipped) when the package a step needs (torch, transformers, safetensors,
gguf, llama_cpp) cannot be imported, or when no llama.cpp source tree is given.
"""
import json
import os
import shutil
import subprocess
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.abspath(os.environ.get("GRPO_TEST_DATA_DIR", os.path.join(HERE, "..", "fixtures")))
SKIP = 77
TYPES = ("f32", "f16", "bf16", "q8_0")
NEW_TOKENS = 32
F32_TOLERANCE = 1e-3  # max |llama.cpp f32 logit - ours|

# case -> the model, and the prompts (text; our tokenizer's ids must be llama.cpp's).
CASES = {
    "stories260K": dict(about="the real stories260K (Llama, SentencePiece, tied, GQA 8:4)",
                        fixture="models/stories260K",
                        prompts=["Once upon a time", "Lily and Ben went to the park. They saw a big dog",
                                 "The little bird"]),
    "qwen2": dict(about="tiny random Qwen2 (q/k/v biases, GQA 4:2, untied, theta 1e6), vocab 272 over the "
                        "qwen2_tiny byte-level BPE tokenizer's 267 (5 unused ids), a ChatML chat template",
                  cls="Qwen2Config",
                  config=dict(vocab_size=272, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                              max_position_embeddings=128, rms_norm_eps=1e-6, tie_word_embeddings=False,
                              rope_theta=1000000.0),
                  prompts=["hello world", "<|im_start|>user\nthe cat sat<|im_end|>\n<|im_start|>assistant\n",
                           "abc 123 def"]),
    "llama3": dict(about="tiny random Llama 3 (GQA 4:2, untied, rope_type llama3: theta 500000, factor 8 over 64 "
                         "original positions, so rope_freqs), vocab 288 over the llama3_tiny BPE tokenizer's 272 "
                         "(ignore_merges, BOS from its TemplateProcessing)",
                   cls="LlamaConfig", tokenizer="llama3_tiny",
                   config=dict(vocab_size=288, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                               max_position_embeddings=128, rms_norm_eps=1e-5, tie_word_embeddings=False,
                               rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0,
                                                    low_freq_factor=1.0, high_freq_factor=4.0,
                                                    original_max_position_embeddings=64)),
                   prompts=["Hello world", "<|start_header_id|>user<|end_header_id|>\n\nhi there<|eot_id|>",
                            "1234567 numbers, and 'quotes' too"]),
    "gpt2": dict(about="tiny random Llama (tied, GQA 4:2) over the gpt2_tiny byte-level BPE tokenizer (GPT-2's "
                       "ByteLevel regex, merges in the \"a b\" form) with GPT-2's tokenizer_config.json, vocab 288 "
                       "over its 281",
                 cls="LlamaConfig", tokenizer="gpt2_tiny",
                 tokenizer_config={"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                                   "unk_token": "<|endoftext|>", "add_prefix_space": False,
                                   "model_max_length": 1024, "tokenizer_class": "GPT2Tokenizer"},
                 config=dict(vocab_size=288, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=128,
                             rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=280, eos_token_id=280),
                 prompts=["hello there, it's a test", "tell me all 42 of them!", " spaces  and\ttabs"]),
    "qwen3": dict(about="tiny random Qwen3 (q/k norms, head_dim 32 over hidden 64 with 4 heads, tied)",
                  cls="Qwen3Config",
                  config=dict(vocab_size=272, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                              max_position_embeddings=128, rms_norm_eps=1e-6, tie_word_embeddings=True,
                              attention_bias=False, rope_theta=1000000.0),
                  prompts=["hello world", "the cat sat on the mat", "x"]),
}

# The tokenizer.json Split regexes of Llama 3 and Qwen2, by the name the converter gives
# their real tokenizers (it recognises those by a hash of their ids, which a tiny
# vocabulary cannot have).
SPLIT_REGEXES = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": "llama-bpe",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": "qwen2",
}

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
          "{% endif %}")

# The keys only one side writes, and why. Every other key is written by both, with one value.
OURS_ONLY = {
    "{arch}.vocab_size": "the converter writes it for llama only; llama.cpp reads it when present",
}
THEIRS_ONLY = {
    "tokenizer.ggml.bos_token_id": "the converter takes tokenizer_config.json's bos_token even when nothing "
                                   "adds it (GPT-2's, add_bos_token false); we write the BOS a prompt starts with",
    "tokenizer.ggml.add_sep_token": "the converter reads it off a TemplateProcessing's pair template (false for "
                                    "Llama 3's); it joins two texts, which our tokenizers never encode",
}
# stories260K: without the Python sentencepiece package the converter cannot read tokenizer.model
# (it imports it); its tokenizer.* keys are then not compared here, and llama.cpp's own
# tokenization of the prompts (the llama-cpp step) checks ours.


def fail(message):
    print(f"gguf_parity.py: {message}", file=sys.stderr)
    sys.exit(1)


def need(*modules, case_dir=None):
    import importlib
    if case_dir and not os.path.exists(os.path.join(case_dir, "case.json")):
        if os.path.exists(os.path.join(os.path.dirname(os.path.normpath(case_dir)), "SKIPPED")):
            print("gguf_parity.py: skipped, gguf_parity.py prepare was skipped", file=sys.stderr)
            sys.exit(SKIP)
        fail(f"{case_dir}/case.json is missing: run the gguf_prepare test (gguf_parity.py prepare) first")
    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError as e:
            print(f"gguf_parity.py: skipped, {e} (the check needs scripts/requirements.txt)", file=sys.stderr)
            sys.exit(SKIP)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


# ------------------------------------------------------------------ prepare

def build_random(name, spec, folder):
    import torch
    import transformers
    config = getattr(transformers, spec["cls"])(**spec["config"])
    torch.manual_seed(zlib.crc32(name.encode()))
    model = transformers.AutoModelForCausalLM.from_config(config)
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()) + 1)
    with torch.no_grad():  # every part of the network matters at the tolerance (see hf_parity.py randomize)
        for pname, p in sorted(model.named_parameters()):
            if pname.endswith("norm.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif pname.endswith(".bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
    model.save_pretrained(folder)
    tok = os.path.join(FIXTURES, "tokenizers", spec.get("tokenizer", "qwen2_tiny"))
    shutil.copyfile(os.path.join(tok, "tokenizer.json"), os.path.join(folder, "tokenizer.json"))
    if "tokenizer_config" in spec:
        config = spec["tokenizer_config"]
    else:
        with open(os.path.join(tok, "tokenizer_config.json")) as f:
            config = json.load(f)
    if "tokenizer" not in spec:
        config["chat_template"] = CHATML
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)


def prepare(out, cli, reference, names):
    if sorted(names) != sorted(CASES):
        fail(f"the case lists differ: CMakeLists.txt {sorted(names)}, CASES {sorted(CASES)}")
    os.makedirs(out, exist_ok=True)
    skipped = os.path.join(out, "SKIPPED")
    if os.path.exists(skipped):
        os.remove(skipped)
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import safetensors  # noqa: F401
    except ImportError as e:
        for name in CASES:  # files of an earlier run must not stand in for this one
            shutil.rmtree(os.path.join(out, name), ignore_errors=True)
        with open(skipped, "w") as f:
            f.write(f"{e} ({sys.executable})\n")
        print(f"gguf_parity.py: skipped, {e}", file=sys.stderr)
        sys.exit(SKIP)
    for name, spec in CASES.items():
        case = os.path.join(out, name)
        shutil.rmtree(case, ignore_errors=True)
        os.makedirs(case)
        model = os.path.join(case, "model")
        if "fixture" in spec:
            shutil.copytree(os.path.join(FIXTURES, spec["fixture"]), model)
        else:
            build_random(name, spec, model)
        for t in TYPES:
            run([cli, "export", "--format", "gguf", "--dtype", t, "--name", name,
                 "--out", os.path.join(case, f"grpo-{t}.gguf"), model])
        run([cli, "export", "--out", os.path.join(case, "hf"), model])
        with open(os.path.join(case, "prompts.json"), "w") as f:
            json.dump(spec["prompts"], f)
        run([reference, model, os.path.join(case, "prompts.json"), os.path.join(case, "reference.safetensors"),
             str(NEW_TOKENS)])
        with open(os.path.join(case, "case.json"), "w") as f:
            json.dump({"name": name, "about": spec["about"]}, f, indent=2)
        print(f"{name}: prepared ({spec['about']})")


# ------------------------------------------------------------------ tensors (gguf package)

def expected_tensors(case_dir):
    """Our weights (the float32 Hugging Face export) under llama.cpp's names, q/k rows
    permuted for the llama architecture as convert_hf_to_gguf.py's LlamaModel.permute does."""
    from safetensors.numpy import load_file
    with open(os.path.join(case_dir, "hf", "config.json")) as f:
        config = json.load(f)
    weights = load_file(os.path.join(case_dir, "hf", "model.safetensors"))
    llama = config["model_type"] in ("llama", "mistral")
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    layer_names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                   "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
                   "self_attn.k_norm": "attn_k_norm", "post_attention_layernorm": "ffn_norm",
                   "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    out = {}
    for name, w in weights.items():
        if name == "model.embed_tokens.weight":
            new = "token_embd.weight"
        elif name == "model.norm.weight":
            new = "output_norm.weight"
        elif name == "lm_head.weight":
            new = "output.weight"
        else:
            parts = name.split(".")
            stem, leaf = ".".join(parts[3:-1]), parts[-1]
            new = f"blk.{parts[2]}.{layer_names[stem]}.{leaf}"
            if llama and stem in ("self_attn.q_proj", "self_attn.k_proj"):
                n = heads if stem == "self_attn.q_proj" else kv_heads
                w = w.reshape(n, 2, w.shape[0] // n // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
        out[new] = w.astype("float32")
    rope = config.get("rope_scaling") or {}
    if rope.get("rope_type") == "llama3":
        out["rope_freqs.weight"] = llama3_rope_factors(config, rope)
    return out


def llama3_rope_factors(config, rope):
    """llama.cpp's rope_freqs for rope_type llama3: each rotary frequency's divisor, as
    transformers' _compute_llama3_parameters scales the frequencies (float32)."""
    import numpy as np
    D = config["head_dim"]
    inv_freq = (1.0 / np.float32(config["rope_theta"]) ** (np.arange(0, D, 2, dtype=np.float32) / np.float32(D)))
    wavelen = 2 * np.pi / inv_freq.astype(np.float64)
    old, low, high, factor = (rope["original_max_position_embeddings"], rope["low_freq_factor"],
                              rope["high_freq_factor"], rope["factor"])
    smooth = (old / wavelen - low) / (high - low)
    divisor = np.where(wavelen > old / low, factor,
                       np.where(wavelen < old / high, 1.0, 1 / ((1 - smooth) / factor + smooth)))
    return divisor.astype(np.float32)


def stored_type(name, w, t):
    """The converter's rule: 1-D tensors and norms f32; q8_0 needs rows of whole blocks, else f16."""
    from gguf import GGMLQuantizationType as Q
    if w.ndim <= 1 or name.endswith("_norm.weight"):
        return Q.F32
    if t == "q8_0" and w.shape[-1] % 32 != 0:
        return Q.F16
    return {"f32": Q.F32, "f16": Q.F16, "bf16": Q.BF16, "q8_0": Q.Q8_0}[t]


def check_tensors(case_dir):
    need("numpy", "safetensors", "gguf", case_dir=case_dir)
    import numpy as np
    import gguf
    expected = expected_tensors(case_dir)
    problems = []
    for t in TYPES:
        reader = gguf.GGUFReader(os.path.join(case_dir, f"grpo-{t}.gguf"))
        got = {r.name: r for r in reader.tensors}
        if sorted(got) != sorted(expected):
            problems.append(f"{t}: tensor names differ: ours {sorted(got)} expected {sorted(expected)}")
            continue
        for name, w in expected.items():
            r = got[name]
            qtype = stored_type(name, w, t)
            if r.tensor_type != qtype:
                problems.append(f"{t}: {name} stored as {r.tensor_type.name}, expected {qtype.name}")
                continue
            if list(reversed([int(d) for d in r.shape])) != list(w.shape):
                problems.append(f"{t}: {name} has GGML shape {list(r.shape)}, expected {list(reversed(w.shape))}")
                continue
            want = gguf.quants.quantize(w, qtype)
            data = np.asarray(r.data)
            if name == "rope_freqs.weight":  # computed, not a weight: to float32 rounding
                if not np.allclose(data, w, rtol=1e-6, atol=0):
                    problems.append(f"{t}: rope_freqs {data.tolist()}, expected {w.tolist()}")
                continue
            if data.tobytes() != np.ascontiguousarray(want).tobytes():
                deq = gguf.quants.dequantize(data, qtype).reshape(w.shape)
                problems.append(f"{t}: {name} differs from gguf.quants' {qtype.name} of our weight "
                                f"(max |dequantized - weight| {np.abs(deq - w).max():.3g})")
        print(f"{os.path.basename(case_dir)} {t}: {len(got)} tensors checked")
    if problems:
        fail(f"{case_dir}:\n" + "\n".join(problems))


# ------------------------------------------------------------------ converter

def convert(hf_dir, out_file, outtype, name, llama_cpp):
    """Runs llama.cpp's convert_hf_to_gguf.py in this process. Two things are patched, each
    only where the converter could not go on: a byte-level BPE tokenizer it has no hash
    for gets the pre-tokenizer its tokenizer.json regex names (SPLIT_REGEXES, GPT-2's),
    and without the sentencepiece package a SentencePiece vocabulary is left out."""
    sys.path.insert(0, llama_cpp)
    sys.argv = ["convert_hf_to_gguf.py", hf_dir, "--outtype", outtype, "--outfile", out_file,
                "--model-name", name]
    import importlib
    converter = importlib.import_module("convert_hf_to_gguf")
    from conversion.base import TextModel
    original = TextModel.get_vocab_base_pre

    def vocab_base_pre(self, tokenizer):
        try:
            return original(self, tokenizer)
        except NotImplementedError:
            with open(os.path.join(hf_dir, "tokenizer.json")) as f:
                pre = json.load(f)["pre_tokenizer"]
            if pre["type"] == "ByteLevel" and pre.get("use_regex", True):
                return "gpt-2"  # ByteLevel's own regex is GPT-2's
            regex = pre["pretokenizers"][0]["pattern"]["Regex"]
            if regex in SPLIT_REGEXES:
                return SPLIT_REGEXES[regex]
            raise
    TextModel.get_vocab_base_pre = vocab_base_pre
    try:
        import sentencepiece  # noqa: F401
    except ImportError:

        def set_vocab_sentencepiece(self, *args, **kwargs):
            if not os.path.exists(os.path.join(hf_dir, "tokenizer.model")):
                raise FileNotFoundError("tokenizer.model")  # what it raises with the package installed
            with open(os.path.join(os.path.dirname(out_file), "NO_SENTENCEPIECE"), "w") as f:
                f.write("the converter's tokenizer.* keys are missing: no sentencepiece package\n")
        TextModel._set_vocab_sentencepiece = set_vocab_sentencepiece
    converter.main()


def fields(path):
    import gguf
    reader = gguf.GGUFReader(path)
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        value = field.contents()
        out[key] = (tuple(int(t) for t in field.types), value)
    return out, {r.name: r for r in reader.tensors}


def check_converter(case_dir, llama_cpp):
    if not llama_cpp or not os.path.exists(os.path.join(llama_cpp, "convert_hf_to_gguf.py")):
        print("gguf_parity.py: skipped, no llama.cpp source tree with convert_hf_to_gguf.py given "
              "(GRPO_LLAMA_CPP_SOURCE)", file=sys.stderr)
        sys.exit(SKIP)
    need("numpy", "torch", "transformers", "gguf", case_dir=case_dir)
    import numpy as np
    name = os.path.basename(os.path.normpath(case_dir))
    problems, report = [], []
    for t in TYPES:
        conv_dir = os.path.join(case_dir, "converter")
        os.makedirs(conv_dir, exist_ok=True)
        conv = os.path.join(conv_dir, f"{t}.gguf")
        run([sys.executable, os.path.abspath(__file__), "convert", os.path.join(case_dir, "hf"), conv, t, name,
             llama_cpp])
        theirs, their_tensors = fields(conv)
        ours, our_tensors = fields(os.path.join(case_dir, f"grpo-{t}.gguf"))
        arch = ours["general.architecture"][1]
        no_sp = os.path.exists(os.path.join(conv_dir, "NO_SENTENCEPIECE"))
        for key, value in sorted(theirs.items()):
            if key in THEIRS_ONLY and key not in ours:
                continue
            if key not in ours:
                problems.append(f"{t}: the converter writes {key} = {str(value[1])[:80]}, we do not")
            elif ours[key] != value:
                problems.append(f"{t}: {key}: ours {str(ours[key])[:120]}, the converter's {str(value)[:120]}")
        allowed = {k.format(arch=arch) for k in OURS_ONLY}
        for key in sorted(set(ours) - set(theirs)):
            if key in allowed or (no_sp and key.startswith("tokenizer.")):
                continue
            problems.append(f"{t}: we write {key}, the converter does not")
        if sorted(their_tensors) != sorted(our_tensors):
            problems.append(f"{t}: tensor names: ours {sorted(our_tensors)}, the converter's {sorted(their_tensors)}")
        else:
            for tname, r in their_tensors.items():
                o = our_tensors[tname]
                if (r.tensor_type != o.tensor_type or list(r.shape) != list(o.shape)
                        or np.asarray(r.data).tobytes() != np.asarray(o.data).tobytes()):
                    problems.append(f"{t}: tensor {tname}: ours {o.tensor_type.name} {list(o.shape)}, the "
                                    f"converter's {r.tensor_type.name} {list(r.shape)}, data "
                                    f"{'equal' if np.asarray(r.data).tobytes() == np.asarray(o.data).tobytes() else 'differs'}")
        report.append(f"{t}: {len(theirs)} converter keys, {len(their_tensors)} tensors"
                      + (" (tokenizer keys not compared: no sentencepiece package)" if no_sp else ""))
    print(f"{name}: " + "; ".join(report))
    if problems:
        fail(f"{case_dir}: ours against llama.cpp's converter:\n" + "\n".join(problems))


# ------------------------------------------------------------------ llama.cpp itself

def check_llama_cpp(case_dir, report_path=None):
    need("numpy", "safetensors", "llama_cpp", case_dir=case_dir)
    import numpy as np
    from llama_cpp import Llama
    from safetensors.numpy import load_file
    ref = load_file(os.path.join(case_dir, "reference.safetensors"))
    with open(os.path.join(case_dir, "prompts.json")) as f:
        prompts = json.load(f)
    name = os.path.basename(os.path.normpath(case_dir))
    problems, figures = [], {}
    for t in TYPES:
        path = os.path.join(case_dir, f"grpo-{t}.gguf")
        # NB: float32 K/V cache (llama.cpp stores f16 by default), so the f32 file is compared as f32.
        llm = Llama(model_path=path, n_ctx=0, logits_all=True, verbose=False, n_threads=2, type_k=0, type_v=0)
        worst, greedy_same = 0.0, 0
        for k, prompt in enumerate(prompts):
            ids = ref[f"ids_{k}"].tolist()
            theirs = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
            if theirs != ids:
                problems.append(f"{t}: llama.cpp tokenizes {prompt!r} as {theirs}, we as {ids}")
                continue
            llm.reset()
            llm.eval(ids)
            logits = np.array(llm.scores[:len(ids)], dtype=np.float32)
            diff = float(np.abs(logits - ref[f"logits_{k}"]).max())
            worst = max(worst, diff)
            llm.reset()
            seq, greedy = list(ids), []
            llm.eval(seq)
            for _ in range(NEW_TOKENS):
                nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
                greedy.append(nxt)
                llm.eval([nxt])
            ours = ref[f"greedy_{k}"].tolist()
            same = greedy == ours
            greedy_same += same
            if t == "f32" and not same:
                problems.append(f"f32: greedy tokens of {prompt!r} differ:\n  llama.cpp {greedy}\n  ours      {ours}")
        if t == "f32" and not worst <= F32_TOLERANCE:
            problems.append(f"f32: logits differ by {worst:.3g} > {F32_TOLERANCE}")
        size = os.path.getsize(path)
        figures[t] = {"max_abs_logit_diff": worst, "greedy_identical": f"{greedy_same}/{len(prompts)}",
                      "file_bytes": size}
        print(f"{name} {t}: max |llama.cpp - ours| logit {worst:.3g}, greedy {NEW_TOKENS} tokens identical "
              f"on {greedy_same}/{len(prompts)} prompts, {size} bytes")
        del llm
    scale = max(float(np.abs(ref[f"logits_{k}"]).max()) for k in range(len(prompts)))
    figures["max_abs_logit"] = scale
    if report_path:
        with open(report_path, "w") as f:
            json.dump({name: figures}, f, indent=2)
    if problems:
        fail(f"{case_dir}: llama.cpp on our GGUF files:\n" + "\n".join(problems))


def main(argv):
    if len(argv) >= 5 and argv[1] == "prepare":
        prepare(argv[2], argv[3], argv[4], argv[5:])
    elif len(argv) == 3 and argv[1] == "tensors":
        check_tensors(argv[2])
    elif len(argv) == 4 and argv[1] == "converter":
        check_converter(argv[2], argv[3])
    elif len(argv) in (3, 4) and argv[1] == "llama-cpp":
        check_llama_cpp(argv[2], argv[3] if len(argv) == 4 else None)
    elif len(argv) == 7 and argv[1] == "convert":
        convert(*argv[2:])
    else:
        fail("usage: gguf_parity.py prepare OUT GRPO_CLI REFERENCE CASE... | tensors CASE_DIR | "
             "converter CASE_DIR LLAMA_CPP | llama-cpp CASE_DIR [REPORT]")


if __name__ == "__main__":
    main(sys.argv)
