#!/usr/bin/env python3
"""Writes the tokenizer.json fixtures of tests/test_hf_tokenizer.cpp (run from this folder).

gpt2_tiny, llama3_tiny, qwen2_tiny: 256 byte symbols plus a few hand-picked merges, so the
tests can work their expected ids out by hand. trained: a 1000-merge vocabulary learned
here (plain BPE, most frequent pair first), for golden ids from Hugging Face
`tokenizers` (make_golden.js) on Debian's licence texts and a few lines of other scripts.
Only the standard library and `regex` are needed.
"""
import collections
import json
import os

import regex

HERE = os.path.dirname(os.path.abspath(__file__))

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")


# The training text: Debian's licence texts, plus a few lines of other scripts written for
# these fixtures so that some non-ASCII merges exist.
LICENSES = "/usr/share/common-licenses"
MULTILINGUAL = """
Le café de la gare est fermé le dimanche. Où est l'hôtel ? Très bien, merci.
Die Straße ist heute naß und grün; Müller über Äpfel und Öl.
El niño comió piña en la mañana. ¿Dónde está la estación?
Быстрая коричневая лиса прыгает через ленивую собаку. Привет, мир!
中文分词测试。我们今天去公园散步，天气很好。你好，世界！
日本語のテキストです。東京は大きい都市です。
한국어 문장입니다. 안녕하세요, 세계!
Γειά σου κόσμε. Η γλώσσα είναι ελληνική.
שלום עולם. مرحبا بالعالم. नमस्ते दुनिया।
Emoji: 😀 🎉 👍🏽 👨‍👩‍👧 ❤️ 🚀 — “quotes” and ‘single’ … done.
Numbers: 3.14159 2024-05-20 1,000,000 0x1F 42nd 7th ½ ² Ⅻ.
"""


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()


def byte_vocab():
    """The 256 byte symbols, ids in code-point order as GPT-2's vocab.json has them."""
    return {c: i for i, c in enumerate(sorted(B2U.values()))}


def spell(text):
    return "".join(B2U[b] for b in text.encode("utf-8"))


def add_merges(vocab, merges, pairs):
    for a, b in pairs:
        for t in (a, b):
            assert t in vocab, t
        vocab.setdefault(a + b, len(vocab))
        merges.append((a, b))


def added(id_, content, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": normalized, "special": special}


def byte_level(add_prefix_space=False, use_regex=True):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True, "use_regex": use_regex}


def split(pattern):
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False}


def write(folder, name, obj):
    os.makedirs(os.path.join(HERE, folder), exist_ok=True)
    with open(os.path.join(HERE, folder, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


def gpt2_tiny():
    vocab = byte_vocab()
    merges = []
    # Ranks in this order (ids 256 + rank); see tests/test_hf_tokenizer.cpp for the derivations.
    add_merges(vocab, merges, [
        ("Ġ", "t"),      # 0
        ("l", "l"),      # 1
        ("e", "ll"),     # 2
        ("h", "e"),      # 3: ranks after "e ll", so "hello" is not stuck at "he" "ll" "o"
        ("h", "ell"),    # 4
        ("hell", "o"),   # 5
        ("Ġ", "hello"),  # 6
        ("Ġt", "he"),    # 7
        ("o", "r"),      # 8
        ("w", "or"),     # 9
        ("Ġ", "wor"),    # 10
        ("l", "d"),      # 11
        ("Ġwor", "ld"),  # 12
        ("'", "s"),      # 13
        ("Ġ", "Ġ"),      # 14
        ("Ċ", "Ċ"),      # 15
        ("1", "2"),      # 16
        ("12", "3"),     # 17
        ("b", "c"),      # 18: ranks before "a b": "abc" -> "a" "bc"
        ("a", "b"),      # 19
        ("Ã", "©"),      # 20: "é" is C3 A9
        ("e", "s"),      # 21
        ("Ġt", "es"),    # 22
        ("Ġtes", "t"),   # 23
    ])
    eot = len(vocab)
    vocab["<|endoftext|>"] = eot  # GPT-2 keeps it in the vocab too
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(eot, "<|endoftext|>", normalized=True)],
        "normalizer": None,
        "pre_tokenizer": byte_level(),
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": [a + " " + b for a, b in merges]},  # the older "a b" form, as GPT-2's file
    }
    write("gpt2_tiny", "tokenizer.json", tok)
    # As GPT-2: no tokenizer_config.json token names here, the model config names EOS by id.
    write("gpt2_tiny", "config.json", {"bos_token_id": eot, "eos_token_id": eot})


def llama3_tiny():
    vocab = byte_vocab()
    merges = []
    add_merges(vocab, merges, [
        ("Ġ", "t"),     # 0 -> 256
        ("h", "e"),     # 1 -> 257
        ("Ġt", "he"),   # 2 -> 258
        ("1", "2"),     # 3 -> 259
        ("12", "3"),    # 4 -> 260
        ("Ċ", "Ċ"),     # 5 -> 261
        ("'", "s"),     # 6 -> 262
        ("Ġ", "x"),     # 7 -> 263
        ("y", "z"),     # 8 -> 264
    ])
    # Whole words with no merge path: only ignore_merges gives them.
    vocab["Ġxyz"] = len(vocab)       # 265: BPE alone gives "Ġx" "yz"
    vocab["ĠĠĠ"] = len(vocab)        # 266
    names = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    first = len(vocab)  # added tokens follow the vocabulary, as `tokenizers` numbers them
    specials = [added(first + k, name) for k, name in enumerate(names)]
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": specials,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [split(LLAMA3_PATTERN),
                                                                 byte_level(use_regex=False)]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [first],
                                                      "tokens": ["<|begin_of_text|>"]}}}]},
        "decoder": byte_level(add_prefix_space=True),
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": [[a, b] for a, b in merges]},
    }
    write("llama3_tiny", "tokenizer.json", tok)
    write("llama3_tiny", "tokenizer_config.json", {
        "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "clean_up_tokenization_spaces": True,
        "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"})
    write("llama3_tiny", "generation_config.json", {"bos_token_id": first, "eos_token_id": [first + 1, first + 4]})


def qwen2_tiny():
    vocab = byte_vocab()
    merges = []
    add_merges(vocab, merges, [
        ("Ã", "©"),      # 0 -> 256: "é"
        ("a", "f"),      # 1 -> 257
        ("c", "af"),     # 2 -> 258
        ("Ġ", "caf"),    # 3 -> 259: ranks before "caf é", so " café" is not stuck at Ġ café
        ("caf", "Ã©"),   # 4 -> 260: "café"
        ("Ġcaf", "Ã©"),  # 5 -> 261: " café"
        ("ä", "¸"),      # 6 -> 262: first two bytes of 中 (E4 B8 AD)
        ("ä¸", "Ń"),     # 7 -> 263: 中
    ])
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(len(vocab), "<|endoftext|>"), added(len(vocab) + 1, "<|im_start|>"),
                         added(len(vocab) + 2, "<|im_end|>")],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [split(QWEN2_PATTERN), byte_level(use_regex=False)]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [[a, b] for a, b in merges]},
    }
    write("qwen2_tiny", "tokenizer.json", tok)
    write("qwen2_tiny", "tokenizer_config.json", {
        "add_prefix_space": False, "bos_token": None, "eos_token": "<|im_end|>",
        "pad_token": {"__type": "AddedToken", "content": "<|endoftext|>", "lstrip": False, "normalized": False,
                      "rstrip": False, "single_word": False, "special": True},
        "errors": "replace", "model_max_length": 32768, "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer", "unk_token": None})


def trained(num_merges=1000):
    corpus = MULTILINGUAL
    for name in sorted(os.listdir(LICENSES)):
        path = os.path.join(LICENSES, name)
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, encoding="utf-8") as f:
                corpus += f.read()
    words = collections.Counter(spell(w) for w in regex.findall(GPT2_PATTERN, corpus))
    vocab = byte_vocab()
    merges = []
    seqs = {w: list(w) for w in words}
    for _ in range(num_merges):
        pairs = collections.Counter()
        for w, n in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))  # most frequent, then smallest: deterministic
        merges.append(best)
        vocab.setdefault(best[0] + best[1], len(vocab))
        for w in words:
            s = seqs[w]
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    # Whole words that no merge path reaches, for ignore_merges.
    for w in ["Ġxylophone", "ĠĠĠĠ", "123", "Ċ", "ĊĊĊ"]:
        vocab.setdefault(w, len(vocab))
    eot = len(vocab)
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(eot, "<|endoftext|>")],
        "normalizer": None,
        "pre_tokenizer": byte_level(),
        "post_processor": None,
        "decoder": byte_level(),
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for a, b in merges]},
    }
    write("trained", "tokenizer.json", tok)
    write("trained", "tokenizer_config.json", {"eos_token": "<|endoftext|>", "bos_token": None})


if __name__ == "__main__":
    gpt2_tiny()
    llama3_tiny()
    qwen2_tiny()
    trained()
