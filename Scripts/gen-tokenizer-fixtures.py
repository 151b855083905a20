#!/usr/bin/env python3
"""Generates the tokenizer fixtures under Tests/Fixtures/tokenizers/ with Hugging Face `tokenizers`.

Each layout real checkpoints ship (Llama 3, Qwen2, Llama 2 / SentencePiece, Metaspace, Digits, added
tokens with lstrip/rstrip/single_word, Split behaviours, subword prefixes) is trained on a small
corpus, saved as <name>/tokenizer.json, and run on a list of tricky strings; the ids and decoded
strings it produces go to <name>/cases.json. Component-level files (pretokenize.json,
normalize.json, decode.json) record what single pre-tokenizers, normalizers and decoders produce.
The Swift tests must reproduce every value exactly.

If Tests/Fixtures/tokenizers/synthetic/tokenizer.json exists (written by the Swift
`SyntheticTokenizer`, see SyntheticTokenizerTests), Python loads it and records its cases too, which
proves the synthesized file is valid for `tokenizers`.

Training with `limit_alphabet` breaks frequency ties in hash order, so a rerun may produce different
(but again self-consistent) files: each tokenizer.json is always written together with its cases.json.

Run from the repository root:  python3 Scripts/gen-tokenizer-fixtures.py
"""

import json
import os
import sys

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers")
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")

LLAMA3_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
O200K_PATTERN = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
DEEPSEEK_PATTERNS = [
    r"\p{N}{1,3}",
    r"[一-龥\u3040-ゟ゠-ヿ]+",
    r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
]
# Patterns exercising the rest of the regex engine against Oniguruma.
ENGINE_PATTERNS = [
    r"a+?b|a+",
    r"\s++|\S+",
    r"(?<=-)\w+|-",
    r"(?<!\d)\d{2,}?",
    r"(?>ab|a)c|\w",
    r"\bword\b|\w+|\W",
    r"(?i:straße|été|ΣΟΦΊΑ)|.",
    r"^\w+|\w+$|.",
    r"[^\S\n]+|\n|\S+",
    r"[\p{Lu}][\p{Ll}]*|[\p{P}\p{S}]|\p{Zs}|\p{Nd}+|\p{Cf}|\p{Lo}{2}|.",
    r"(a|b)*c|\p{M}+|.",
    r"[\x41-\x5A\u00e9\x{1F600}-\x{1F64F}]+|.",
    r"x*",
    r"\h+|\H",
    r"(?i)[a-z]+|(?-i:[A-Z]+)|.",
    r"[^\p{L}\p{N}\s]+|\p{^L}|\P{N}",
]

TRICKY = [
    "",
    " ",
    "a",
    "Hello, world!",
    "DON'T WON'T I'M YOU'LL SHE'S WE'VE THEY'D",
    "don't it's we're they've I'm you'll he'd",
    "'s 'S 'Ll 'lL a'sdf",
    "  leading spaces and   multiple   gaps",
    "trailing spaces   ",
    "new\nline\n\nparagraph\r\nwindows\rold mac\t\ttabs",
    "\n\n\n",
    "Numbers: 3.14159, 2026-11-22, 1e-5, 1234567890 and 70B-scale.",
    "٣٤٥ ١٢ Arabic-Indic digits, ² superscript, ½ fraction, Ⅻ roman",
    "Unicode: café, naïve, Straße, Ωmega, Привет мир, Ελληνικά",
    "CJK 東京 日本語のテキスト 中文English混合 한국어",
    "emoji 🚀🔥👍🏽 family 👨‍👩‍👧 flags 🇯🇵",
    "combining e\u0301 a\u0308 n\u0303 precomposed \u00e9 \u00e4 \u00f1",
    "ＦＵＬＬＷＩＤＴＨ ＡＢＣ １２３ ﬁ ligature ℌ",
    "İstanbul ΣΊΣΥΦΟΣ ΟΔΟΣ",
    "nbsp\u00a0thin\u2009ideographic\u3000space",
    "vertical\x0btab form\x0cfeed next\x85line",
    "zero\u200bwidth joiner\u200d mark\u200e",
    "def f(x):\n    return x ** 2  # square\n",
    "if (a && b) { return a->c[0] != nullptr; }",
    "<|begin_of_text|>special<|end_of_text|> <s> </s> <unk> <|im_start|>user\nhi<|im_end|>",
    "<mask> masked  <mask>  [SEP]  trailing [SEP]x <|both|> mid <|both|>",
    "a word, words, sword, <word> word_ word",
    "HELLO WORLD and hello world and Hello World",
    "<long> <longer> <longest>",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!???... ---___ ~~~",
    "math ∑∫√ ≤ ≥ ≠ ∞",
    "price $100.00 €50 £3 ¥1000",
    "email me@example.com url https://example.org/path?q=1&r=2",
    "unreachable token test: unreachable",
    "x-y--z 1-2 a.b,c!d?",
    "\u00ad soft\u00adhyphen \ufeff bom",
    "Ǆ ǅ ǆ titlecase",
    "mixed\ttabs and\u2028line\u2029separators",
]

CORPUS_EXTRA = """
Shoal is a distributed multi-node inference runtime. A coordinator and workers exchange tensors over
ZeroMQ with protobuf schemas, running decoder checkpoints split by tensor, pipeline or expert parallelism.
Tensor parallelism splits attention heads across devices; pipeline parallelism splits layers.
The sliding-window scheduler keeps only a window of blocks resident while a background loader reads ahead.
Mixture-of-Experts routing with top-2 gating and inter-layer expert affinity places experts on nodes.
Prefill nodes run the prompt and produce the KV cache; decode nodes run token-by-token generation.
Don't panic. It's fine. We're done. They've left. I'm here. You'll see. He'd know. SHE'S RIGHT.
def forward(self, x):
    h = self.embed(x)
    for layer in self.layers:
        h = layer(h)
    return self.norm(h)
Numbers like 3.14159, 2.71828, 1e-5, 4096 and 151936 appear in configs: {"hidden_size": 4096}.
Unicode words: café, naïve, Straße, façade, coöperate, résumé, Ωmega, Привет, мир, Ελληνικά.
東京 is a city. 日本語 and 中文 text. Emoji: 🚀 🔥.
The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG.
word words sword wordy reword; hello world, Hello World.
"""


def corpus():
    lines = [line for line in CORPUS_EXTRA.strip().split("\n")]
    parity = json.load(open(os.path.join(FIXTURES, "tokenizer", "parity.json")))
    lines += [c["text"] for c in parity]
    for model in ("tiny-llama", "tiny-mixtral"):
        ref = json.load(open(os.path.join(FIXTURES, model, "reference.json")))
        for p in ref["prompts"]:
            lines += [p["text"], p["greedy_text"]]
    # Repeat so merges have frequencies to work with.
    return lines * 3


def component_json(kind, obj):
    """The JSON a tokenizer.json stores for one component."""
    t = Tokenizer(models.BPE())
    setattr(t, kind, obj)
    return json.loads(t.to_str())[kind]


def save(name, tok, cases_texts=TRICKY, config=None, edit=None):
    """Writes <name>/tokenizer.json (after `edit`), reloads it with tokenizers and records cases."""
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    data = json.loads(tok.to_str())
    if edit:
        edit(data)
    path = os.path.join(d, "tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
    if config is not None:
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=1)
    record_cases(name, Tokenizer.from_file(path), cases_texts)


def record_cases(name, tok, texts):
    cases = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=True).ids
        ids_plain = tok.encode(text, add_special_tokens=False).ids
        cases.append({
            "text": text,
            "ids": ids,
            "ids_no_special": ids_plain,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        })
    # Decoding arbitrary id runs (partial UTF-8, lone byte tokens) must match too.
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    runs = [list(range(i, min(i + 7, vocab_size))) for i in range(0, vocab_size, max(1, vocab_size // 40))]
    decode_runs = [{"ids": r, "decoded": tok.decode(r, skip_special_tokens=False),
                    "decoded_skip_special": tok.decode(r, skip_special_tokens=True)} for r in runs]
    with open(os.path.join(OUT, name, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"generated_by": f"tokenizers {tokenizers.__version__}", "cases": cases, "decode_runs": decode_runs},
                  f, ensure_ascii=False, indent=1)


def train(tok, vocab_size, special_tokens=(), **kw):
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens), show_progress=False, **kw)
    tok.train_from_iterator(corpus(), trainer=trainer)
    return tok


def byte_level_alphabet():
    return pre_tokenizers.ByteLevel.alphabet()


def llama3():
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>"]
    train(tok, 700, specials, initial_alphabet=byte_level_alphabet())
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    tok.decoder = decoders.ByteLevel()

    def edit(data):
        # A token reachable only through ignore_merges (whole-word lookup), as Llama 3 vocabularies have.
        vocab = data["model"]["vocab"]
        vocab["Ġunreachable"] = max(max(vocab.values()), max(t["id"] for t in data["added_tokens"])) + 1
    save("llama3", tok, edit=edit)


def qwen2():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    train(tok, 700, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], initial_alphabet=byte_level_alphabet())
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    config = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    save("qwen2", tok, config=config)


def sentencepiece_like(name, normalizer, pre_tokenizer, decoder, model_kw, legacy_merges, post=True, config=None):
    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    tok = Tokenizer(models.BPE(**model_kw))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    train(tok, 900, ["<unk>", "<s>", "</s>"] + (byte_tokens if model_kw.get("byte_fallback") else []), limit_alphabet=70)
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoder
    if post:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])

    def edit(data):
        # In SentencePiece conversions the <0xNN> tokens live in the vocabulary only.
        data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] not in byte_tokens]
        if legacy_merges:
            data["model"]["merges"] = [" ".join(m) for m in data["model"]["merges"]]
    save(name, tok, config=config, edit=edit)


def llama2():
    sentencepiece_like(
        "llama2",
        normalizer=normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]),
        pre_tokenizer=None,
        decoder=decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]),
        model_kw=dict(unk_token="<unk>", byte_fallback=True, fuse_unk=True),
        legacy_merges=True,
        config={"add_bos_token": True,
                "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
                "eos_token": {"__type": "AddedToken", "content": "</s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
                "unk_token": "<unk>"},
    )


def metaspace():
    sentencepiece_like(
        "metaspace",
        normalizer=normalizers.NFKC(),
        pre_tokenizer=pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
        decoder=decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True),
        model_kw=dict(unk_token="<unk>", fuse_unk=False),
        legacy_merges=False,
    )


def metaspace_nosplit():
    # Mistral/Llama (non-legacy) style: Metaspace without splitting, byte fallback, Llama-2 decoder.
    sentencepiece_like(
        "metaspace-nosplit",
        normalizer=None,
        pre_tokenizer=pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False),
        decoder=decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]),
        model_kw=dict(unk_token="<unk>", byte_fallback=True),
        legacy_merges=False,
    )


def digits():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),
    ])
    train(tok, 500, ["<|endoftext|>"], initial_alphabet=byte_level_alphabet())
    tok.decoder = decoders.ByteLevel()
    save("digits", tok)


def digits_contiguous():
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.Strip(left=True, right=True), normalizers.NFD()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=False)])
    train(tok, 400, ["<unk>"], limit_alphabet=60)
    tok.decoder = None
    save("digits-contiguous", tok)


def specials():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    train(tok, 500, ["<|endoftext|>"], initial_alphabet=byte_level_alphabet())
    tok.add_special_tokens([
        tokenizers.AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True),
        tokenizers.AddedToken("[SEP]", lstrip=False, rstrip=True, normalized=False, special=True),
        tokenizers.AddedToken("<|both|>", lstrip=True, rstrip=True, normalized=False, special=True),
        tokenizers.AddedToken("<long>", normalized=False, special=True),
        tokenizers.AddedToken("<longer>", normalized=False, special=True),
    ])
    tok.add_tokens([
        tokenizers.AddedToken("word", single_word=True, normalized=True),
        tokenizers.AddedToken("Hello World", normalized=True),
        tokenizers.AddedToken("<s>", normalized=False),
    ])
    tok.decoder = decoders.ByteLevel()
    save("specials", tok)


def splits():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("-", behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"\d+"), behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"[.,!?]"), behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"\w+|[^\w\s]+"), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    train(tok, 450, [], initial_alphabet=byte_level_alphabet())
    tok.decoder = decoders.ByteLevel()
    save("splits", tok)


def roberta():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    train(tok, 500, ["<s>", "<pad>", "</s>", "<unk>"], initial_alphabet=byte_level_alphabet())
    tok.add_special_tokens([tokenizers.AddedToken("<mask>", lstrip=True, normalized=False, special=True)])
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")))
    tok.decoder = decoders.ByteLevel()
    save("roberta", tok)

    bert = Tokenizer(models.BPE(unk_token="[UNK]"))
    bert.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()])
    bert.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    train(bert, 400, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], limit_alphabet=60)
    bert.post_processor = processors.BertProcessing(("[SEP]", bert.token_to_id("[SEP]")), ("[CLS]", bert.token_to_id("[CLS]")))
    save("bert-processing", bert)


def subword():
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    train(tok, 500, ["[UNK]"], continuing_subword_prefix="##", end_of_word_suffix="</w>", limit_alphabet=60)
    save("subword", tok)


def synthetic():
    path = os.path.join(OUT, "synthetic", "tokenizer.json")
    if not os.path.exists(path):
        print("note: no synthetic/tokenizer.json yet (the Swift SyntheticTokenizerTests write it)", file=sys.stderr)
        return
    record_cases("synthetic", Tokenizer.from_file(path), TRICKY)


def component_files():
    texts = TRICKY + ["aaab aab ab b", "a-bc--d -e", "1234 12 123456", "word sword word_ wordy", "straße STRASSE été ÉTÉ σοφία",
                      "line one\nline two\n", "  \t\n x", "ab abc ac", "Ab CDe f G", "e\u0301\u0302 x\u20dd"]

    pre = []

    def add_pre(p):
        j = component_json("pre_tokenizer", p)
        pre.append({"pre_tokenizer": j, "cases": [{"text": t, "pieces": [s for s, _ in p.pre_tokenize_str(t)]} for t in texts]})

    for pattern in [LLAMA3_PATTERN, QWEN2_PATTERN, O200K_PATTERN] + DEEPSEEK_PATTERNS + ENGINE_PATTERNS:
        try:
            Regex(pattern)
        except Exception:
            continue
        add_pre(pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False))
    for behavior in ["removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous"]:
        for invert in [False, True]:
            add_pre(pre_tokenizers.Split(Regex(r"\s+|-"), behavior=behavior, invert=invert))
            add_pre(pre_tokenizers.Split("-", behavior=behavior, invert=invert))
    add_pre(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True))
    add_pre(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    add_pre(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=False))
    for scheme in ["first", "always", "never"]:
        for split in [True, False]:
            add_pre(pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme, split=split))
    add_pre(pre_tokenizers.Digits(individual_digits=True))
    add_pre(pre_tokenizers.Digits(individual_digits=False))
    add_pre(pre_tokenizers.WhitespaceSplit())
    add_pre(pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(prepend_scheme="always")]))

    norm = []

    def add_norm(n):
        norm.append({"normalizer": component_json("normalizer", n), "cases": [{"text": t, "normalized": n.normalize_str(t)} for t in texts]})

    for n in [normalizers.NFC(), normalizers.NFD(), normalizers.NFKC(), normalizers.NFKD(), normalizers.Lowercase(),
              normalizers.Prepend("▁"), normalizers.Replace(" ", "▁"), normalizers.Replace(Regex(r"\s+"), " "),
              normalizers.Replace(Regex(r"a*"), "-"), normalizers.Replace(Regex(r"(l)(e)"), "$2$1"),
              normalizers.Strip(left=True, right=False), normalizers.Strip(left=False, right=True), normalizers.StripAccents(),
              normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()]),
              normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])]:
        add_norm(n)

    dec = []
    token_lists = [
        ["▁Hello", "▁world", "!"],
        ["▁", "▁Hey", "▁▁", "friend"],
        ["<0xE6>", "<0x9D>", "<0xB1>", "▁x", "<0xE6>", "<0x9D>", "y", "<0x61>", "<0xZZ>", "<0x+F>", "<0x0A>"],
        ["ĠHello", "Ġworld", "Ċ", "<|special|>", "Ã©", "ðŁ", "ļ", "Ģ", "é"],
        ["  spaced  ", "  ", "x  "],
        ["le", "test", "lele"],
        [],
        [""],
    ]
    for d in [decoders.ByteLevel(), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0), decoders.Strip(" ", 0, 2),
              decoders.Strip("▁", 2, 1), decoders.Replace("▁", " "), decoders.Replace(Regex(r"(l)(e)"), "$2$1"),
              decoders.Metaspace(prepend_scheme="always"), decoders.Metaspace(prepend_scheme="first"), decoders.Metaspace(prepend_scheme="never"),
              decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])]:
        cases = []
        for ts in token_lists:
            try:
                cases.append({"tokens": ts, "decoded": d.decode(ts)})
            except BaseException:  # tokenizers panics on some inputs (Strip with stop on ""): nothing to compare
                pass
        dec.append({"decoder": component_json("decoder", d), "cases": cases})

    for name, data in [("pretokenize.json", pre), ("normalize.json", norm), ("decode.json", dec)]:
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            json.dump({"generated_by": f"tokenizers {tokenizers.__version__}", "components": data}, f, ensure_ascii=False, indent=1)


def main():
    os.makedirs(OUT, exist_ok=True)
    llama3()
    qwen2()
    llama2()
    metaspace()
    metaspace_nosplit()
    digits()
    digits_contiguous()
    specials()
    splits()
    subword()
    roberta()
    synthetic()
    component_files()
    print(f"wrote fixtures to {OUT} with tokenizers {tokenizers.__version__}")


if __name__ == "__main__":
    main()
