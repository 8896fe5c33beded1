"""The models of the TRL comparison, built in a work folder: stories260K as it is, with a
tokenizer.json that transformers can read, and Qwen2- and Qwen3-shaped models that
transformers initializes from a fixed seed, over a byte-level BPE tokenizer trained on
GSM8K. Each model is one folder both trainers load.
Usage: make_models.py WORK_DIR [NAME ...]   (prints the folders as JSON)"""
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STORIES260K = os.path.join(ROOT, "tests", "fixtures", "models", "stories260K")
GSM8K_TRAIN = os.path.join(ROOT, "examples", "gsm8k", "train.jsonl")

SEED = 1234
BPE_VOCAB = 8192  # the trained tokenizer's size, special tokens included; the models' vocab_size
EOS = "<|endoftext|>"
SPECIAL = [EOS, "<|im_start|>", "<|im_end|>"]
# Qwen2's pre-tokenizer split (numbers one digit at a time, as Qwen2's tokenizer.json has it).
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# name -> how the folder is made. "shape": the transformers config keys besides the vocabulary.
MODELS = {
    "stories260K": dict(about="the real stories260K (Llama, 260K parameters, SentencePiece, vocab 512)",
                        source=STORIES260K),
    "qwen2-10m": dict(about="Qwen2-shaped, 10.0M parameters (attention biases, tied embeddings)",
                      architecture="qwen2",
                      shape=dict(hidden_size=256, intermediate_size=768, num_hidden_layers=10,
                                 num_attention_heads=4, num_key_value_heads=2)),
    "qwen3-100m": dict(about="Qwen3-shaped, 100.7M parameters (q/k norms, tied embeddings)",
                       architecture="qwen3",
                       shape=dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=15,
                                  num_attention_heads=12, num_key_value_heads=4, head_dim=64)),
}


# ---------------------------------------------------------------- stories260K's tokenizer
# transformers reads a SentencePiece tokenizer.model only through the sentencepiece and
# protobuf packages; the model's pieces are read here instead (the protobuf wire format of
# sentencepiece_model.proto: ModelProto.pieces = 1 {piece = 1, score = 2, type = 3},
# ModelProto.trainer_spec = 2 {model_type = 3}) and handed to transformers' LlamaTokenizer,
# which builds the same tokenizers pipeline its converter would.

def _varint(buf, i):
    value, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def _fields(buf):
    """(field number, wire type, value) of one protobuf message; value: int, bytes or float bits."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def read_sentencepiece(path):
    """[(piece, score, type)] and the model type (1 unigram, 2 BPE) of a tokenizer.model."""
    with open(path, "rb") as f:
        buf = f.read()
    pieces, model_type = [], 1
    for number, _, value in _fields(buf):
        if number == 1:
            piece, score, kind = "", 0.0, 1
            for n, _, v in _fields(value):
                if n == 1:
                    piece = v.decode("utf-8")
                elif n == 2:
                    score = struct.unpack("<f", v)[0]
                elif n == 3:
                    kind = v
            pieces.append((piece, score, kind))
        elif number == 2:
            for n, _, v in _fields(value):
                if n == 3:
                    model_type = v
    return pieces, model_type


def llama_tokenizer_from_sentencepiece(path):
    from transformers import LlamaTokenizer
    from transformers.tokenization_utils_base import generate_merges

    pieces, model_type = read_sentencepiece(path)
    if model_type != 2:
        raise ValueError(f"{path}: a BPE SentencePiece model is expected, got model type {model_type}")
    vocab = {piece: i for i, (piece, _, _) in enumerate(pieces)}
    scores = {piece: score for piece, score, _ in pieces}
    # NB: as transformers' Llama converter: merges ordered by the merged piece's score.
    merges = generate_merges(vocab, scores)
    return LlamaTokenizer(vocab=vocab, merges=merges, unk_token=pieces[0][0], bos_token=pieces[1][0],
                          eos_token=pieces[2][0], add_bos_token=True, add_eos_token=False, legacy=False)


def make_stories260k(folder):
    os.makedirs(folder, exist_ok=True)
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.model", "LICENSE"):
        shutil.copyfile(os.path.join(STORIES260K, name), os.path.join(folder, name))
    tokenizer = llama_tokenizer_from_sentencepiece(os.path.join(STORIES260K, "tokenizer.model"))
    tokenizer.save_pretrained(folder)
    # NB: grpo reads tokenizer.model (its SentencePiece tokenizer) when a folder has one; TRL reads tokenizer.json.


# ---------------------------------------------------------------- the Qwen-shaped models

def gsm8k_texts():
    with open(GSM8K_TRAIN, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            yield record["question"]
            yield record["answer"]


def train_bpe():
    """A byte-level BPE as Qwen2's (NFC, its split, byte-level), learned on GSM8K; deterministic."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(gsm8k_texts(), trainer=trainer)
    if tokenizer.get_vocab_size() != BPE_VOCAB:
        raise RuntimeError(f"the BPE learned {tokenizer.get_vocab_size()} tokens, not {BPE_VOCAB}")
    return tokenizer


def make_qwen(folder, spec, tokenizer):
    import torch
    import transformers
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, pad_token=EOS,
                                   additional_special_tokens=SPECIAL[1:])
    config_class = {"qwen2": transformers.Qwen2Config, "qwen3": transformers.Qwen3Config}[spec["architecture"]]
    eos_id = tokenizer.token_to_id(EOS)
    config = config_class(vocab_size=BPE_VOCAB, tie_word_embeddings=True, max_position_embeddings=2048,
                          bos_token_id=None, eos_token_id=eos_id, pad_token_id=eos_id, dtype="float32",
                          **spec["shape"])
    torch.manual_seed(SEED)
    model = transformers.AutoModelForCausalLM.from_config(config).float()
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = eos_id
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)


def make(work_dir, names):
    """The folders of `names` under work_dir/models (made when missing), by name."""
    import transformers
    transformers.utils.logging.disable_progress_bar()
    folders = {}
    tokenizer = None
    for name in names:
        if name not in MODELS:
            raise SystemExit(f"make_models.py: unknown model {name!r}; known: {', '.join(MODELS)}")
        spec = MODELS[name]
        folder = os.path.join(work_dir, "models", name)
        folders[name] = folder
        if os.path.exists(os.path.join(folder, "DONE")):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if "source" in spec:
            make_stories260k(folder)
        else:
            tokenizer = tokenizer or train_bpe()
            make_qwen(folder, spec, tokenizer)
        with open(os.path.join(folder, "DONE"), "w") as f:
            f.write(spec["about"] + "\n")
    return folders


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(json.dumps(make(sys.argv[1], sys.argv[2:] or list(MODELS)), indent=2))
