// Writes golden.json: the ids Hugging Face `tokenizers` (the npm package "tokenizers",
// its Rust core) gives for seeded random texts, for each fixture and for variants of
// the trained one (a JSON merge patch over trained/tokenizer.json: other pre-tokenizers,
// normalizers, added-token flags). Run from this folder after make_fixtures.py:
//   npm install tokenizers@0.23.2 && node make_golden.js
"use strict";
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require("tokenizers");

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*" +
  "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*" +
  "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const byteLevel = (prefix, regex) => ({ type: "ByteLevel", add_prefix_space: prefix, trim_offsets: true, use_regex: regex });
const split = (pattern, behavior, invert = false) => ({ type: "Split", pattern, behavior, invert });
const seq = (...p) => ({ type: "Sequence", pretokenizers: p });
const tok = (id, content, flags = {}) => Object.assign(
  { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }, flags);

const trained = JSON.parse(fs.readFileSync("trained/tokenizer.json", "utf8"));
const V = Object.keys(trained.model.vocab).length;  // the trained file's <|endoftext|> is id V
const chatTokens = [tok(V, "<|endoftext|>"), tok(V + 1, "<|im_start|>"), tok(V + 2, "<|im_end|>"),
  tok(V + 3, "<|begin_of_text|>"), tok(V + 4, "<|eot_id|>")];

// name -> [base folder, patch]
const variants = {
  gpt2_tiny: ["gpt2_tiny", {}],
  llama3_tiny: ["llama3_tiny", {}],
  qwen2_tiny: ["qwen2_tiny", {}],
  gpt2: ["trained", { added_tokens: chatTokens }],
  gpt2_prefix_space: ["trained", { added_tokens: chatTokens, pre_tokenizer: byteLevel(true, true) }],
  llama3: ["trained", { added_tokens: chatTokens, pre_tokenizer: seq(split({ Regex: LLAMA3 }, "Isolated"), byteLevel(false, false)),
    model: { ignore_merges: true } }],
  qwen2: ["trained", { added_tokens: chatTokens, normalizer: { type: "NFC" },
    pre_tokenizer: seq(split({ Regex: QWEN2 }, "Isolated"), byteLevel(false, false)) }],
  removed: ["trained", { pre_tokenizer: seq(split({ String: " " }, "Removed"), byteLevel(false, false)) }],
  merged_with_previous: ["trained", { pre_tokenizer: seq(split({ Regex: "\\s+" }, "MergedWithPrevious"), byteLevel(false, false)) }],
  merged_with_next: ["trained", { pre_tokenizer: seq(split({ Regex: "\\s+" }, "MergedWithNext"), byteLevel(false, false)) }],
  contiguous_invert: ["trained", { pre_tokenizer: seq(split({ Regex: "\\p{L}+|[^\\p{L}\\s]+" }, "Contiguous", true), byteLevel(false, false)) }],
  empty_matches: ["trained", { pre_tokenizer: seq(split({ Regex: "e*" }, "Isolated"), byteLevel(false, false)) }],
  digits: ["trained", { pre_tokenizer: seq({ type: "Digits", individual_digits: true }, byteLevel(false, true)) }],
  digit_runs: ["trained", { pre_tokenizer: seq({ type: "Digits", individual_digits: false }, byteLevel(false, true)) }],
  added_flags: ["trained", {
    normalizer: { type: "Sequence", normalizers: [{ type: "NFC" }] },
    added_tokens: [
      tok(V, "<|endoftext|>"),
      tok(V + 1, "<mask>", { lstrip: true }),
      tok(V + 2, "[X]", { rstrip: true }),
      tok(V + 3, "word", { single_word: true, special: false }),
      tok(V + 4, "e\u0301te\u0301", { normalized: true, special: false }),  // matched as NFC "été"
      tok(V + 5, "ab", { normalized: true, special: false }),
      tok(V + 6, "b", { special: false }),  // raw pass first: "ab" never matches
      tok(V + 7, "\u2126", { special: false }),  // OHM SIGN, raw: NFC text has U+03A9 instead
    ] }],
};

// ---------------------------------------------------------------- texts

function mulberry32(a) {
  return function () {
    a |= 0; a = (a + 0x6D2B79F5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(20240520);
const pick = (a) => a[Math.floor(rand() * a.length)];

const atoms = [
  "hello", "Hello", "world", "the", "The", "test", "license", "software", "xylophone", "word", "words", "sword", "_word",
  " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\u000b", "\u000c", "\r",
  "'s", "'S", "'ll", "'LL", "'re", "'ve", "'d", "'m", "'t", "\u2019s", "\u017fs", "'",
  "0", "7", "12", "123", "1234", "12345678", "3.14", "\u0663\u0664", "\u00bd", "\u00b2", "\u216b", "x2", "2x",
  "\u00e9", "e\u0301", "caf\u00e9", "cafe\u0301", "\u00e9t\u00e9", "e\u0301te\u0301", "na\u00efve", "Stra\u00dfe", "\ufb01",
  "\u212b", "A\u030a", "\u2126", "\u03a9", "\u1100\u1161", "\u0301", "\u0300\u0301",
  "\u4e2d\u6587", "\u4e2d", "\u65e5\u672c\u8a9e", "\ud55c\uad6d\uc5b4", "\u041f\u0440\u0438\u0432\u0435\u0442", "\u0645\u0631\u062d\u0628\u0627",
  "\u05e9\u05dc\u05d5\u05dd", "\u0928\u092e\u0938\u094d\u0924\u0947",
  "\ud83d\ude00", "\ud83d\udc4d\ud83c\udffd", "\ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67", "\u2764\ufe0f", "\ud83d\ude80",
  ",", ".", "!", "?", "...", "\u2014", "\u201c", "\u201d", "(", ")", "[", "]", "{", "}", "<", ">", "|", "#", "$", "%",
  "&", "*", "+", "=", "_", "-", "/", "\\", "@", "^", "`", "~", ":", ";", "\"", "<mask>", "[X]", "ab", "b",
  "\u00a0", "\u2003", "\u3000", "\u0085", "\u200b", "\u2028", "\u180e", "\ufeff", "\u0000", "\u007f", "\u0080", "\u00ad",
  "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|eot_id|>", "<|im_", "|>", "<|",
  "e", "ee", "eee",
];

function randomCodePoint() {
  const ranges = [[0x20, 0x7e], [0xa0, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x6ff],
    [0x900, 0x97f], [0x1100, 0x11ff], [0x2000, 0x206f], [0x3000, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3],
    [0xff00, 0xffef], [0x1f300, 0x1faff], [0x10000, 0x1007f], [0xe000, 0xe0ff]];
  const [a, b] = pick(ranges);
  return String.fromCodePoint(a + Math.floor(rand() * (b - a + 1)));
}

const texts = [
  "", " ", "Hello world's  test\n\n", "hello", " hello", "abc", "12345", "a<|im_end|>b", "caf\u00e9 cafe\u0301",
  "I'm here, you're there; we'll see. It's 'quoted'.", "  leading and trailing  ", "tab\tseparated\tvalues\n",
  "a".repeat(120), "e".repeat(90), " ".repeat(70) + "x", "\n".repeat(9), "9".repeat(40), "the".repeat(30),
  "word word-word word_ sword words", "<mask> x  <mask>y [X]   z", "\u00e9t\u00e9 e\u0301te\u0301 ab b \u2126 \u03a9",
  "GNU GENERAL PUBLIC LICENSE\n                       Version 3, 29 June 2007\n\n Copyright (C) 2007 Free Software Foundation, Inc.",
];
for (let i = 0; i < 160; ++i) {
  let t = "";
  const n = 1 + Math.floor(rand() * 14);
  for (let k = 0; k < n; ++k) {
    const r = rand();
    t += r < 0.75 ? pick(atoms) : randomCodePoint();
    if (rand() < 0.3) t += " ";
  }
  texts.push(t);
}

// ---------------------------------------------------------------- run

function mergePatch(target, patch) {  // RFC 7386, as nlohmann::json::merge_patch
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  if (target === null || typeof target !== "object" || Array.isArray(target)) target = {};
  const out = Object.assign({}, target);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

(async () => {
  const out = { generator: "make_golden.js", tokenizers: require("tokenizers/package.json").version, variants: [] };
  for (const [name, [base, patch]] of Object.entries(variants)) {
    const json = mergePatch(JSON.parse(fs.readFileSync(path.join(base, "tokenizer.json"), "utf8")), patch);
    const t = Tokenizer.fromString(JSON.stringify(json));
    const cases = [];
    for (const text of texts) {
      const e = await t.encode(text, null, { addSpecialTokens: false });
      const c = { text, ids: Array.from(e.getIds()) };
      const pre = t.getPreTokenizer();
      if (["gpt2", "llama3", "gpt2_tiny", "llama3_tiny"].includes(name)) {
        c.pre_tokens = pre.preTokenizeString(text).map((p) => p[0]);  // byte-level spelled, no added tokens
      }
      cases.push(c);
    }
    out.variants.push({ name, base, patch, cases });
  }
  fs.writeFileSync("golden.json", JSON.stringify(out) + "\n");
  console.log(`golden.json: ${Object.keys(variants).length} variants x ${texts.length} texts`);
})();
