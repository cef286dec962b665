"""The pure-Python CodeGen2.5 tokenizer and GGUF vocabulary against tiktoken.

tiktoken is built here offline the way CodeGen2.5's tokenization_codegen25.py
builds it (GPT-2 ranks, 38 whitespace ranks, the special tokens), from the
GPT-2 files in ../shared/data/gpt2, and every comparison demands 100% equal ids.
"""

from __future__ import annotations

import json
import random
import sys
import unicodedata
from collections.abc import Callable

import pytest

from convert.vocab.corpus import verification_corpus
from ggufkit.vocab.bpe import WHITE_SPACE, bytes_to_unicode, pretokenize
from ggufkit.vocab.codegen25 import (
    ENDOFTEXT_ID,
    EOM_ID,
    MASK1_ID,
    SEP_ID,
    SPECIAL_TOKENS,
    VOCAB_SIZE,
    WHITESPACE_TOKENS,
    codegen25_tokenizer,
    gguf_vocab,
)
from tests.references import (
    FIM_NAMES,
    GPT2_DIR,
    GPT2_PATTERN,
    assert_same_ids,
    random_whitespace_strings,
    tiktoken_ids,
)


def test_corpus_matches_tiktoken(tiktoken_encoding) -> None:
    corpus = verification_corpus()
    assert 1500 <= len(corpus) <= 3000 and corpus == verification_corpus()
    assert_same_ids(corpus, tiktoken_ids(tiktoken_encoding), codegen25_tokenizer().encode)


def test_stdlib_files_and_lines_match_tiktoken(tiktoken_encoding, stdlib_texts) -> None:
    ours, theirs = codegen25_tokenizer().encode, tiktoken_ids(tiktoken_encoding)
    assert_same_ids(stdlib_texts, theirs, ours)
    lines = sorted({line for text in stdlib_texts for line in text.splitlines(keepends=True)})
    assert_same_ids(lines, theirs, ours)


def test_humaneval_prompts_match_tiktoken(tiktoken_encoding, humaneval_prompts) -> None:
    assert len(humaneval_prompts) == 164
    assert_same_ids(humaneval_prompts, tiktoken_ids(tiktoken_encoding), codegen25_tokenizer().encode)


def test_random_whitespace_strings_match_tiktoken(tiktoken_encoding) -> None:
    assert_same_ids(random_whitespace_strings(), tiktoken_ids(tiktoken_encoding), codegen25_tokenizer().encode)


def test_long_pieces_match_tiktoken(tiktoken_encoding) -> None:
    """Single pre-tokens of up to 600 bytes exercise the heap-based merge loop."""
    rng = random.Random(600)
    alphabets = ["abcdefghijklmnopqrstuvwxyz", "etaoinshr", "0123456789", "+-*/=<>!?", "äöüßéèà", "ab"]
    texts = ["".join(rng.choices(rng.choice(alphabets), k=rng.randint(20, 300))) for _ in range(300)]
    assert_same_ids(texts, tiktoken_ids(tiktoken_encoding), codegen25_tokenizer().encode)


def test_decode_round_trips(stdlib_texts, humaneval_prompts) -> None:
    tok = codegen25_tokenizer()
    texts = verification_corpus() + random_whitespace_strings() + humaneval_prompts
    texts += stdlib_texts[:50]
    for text in texts:
        assert tok.decode(tok.encode(text)) == text, f"round trip failed for {text!r}"


def test_infill_example_from_model_card() -> None:
    ids = codegen25_tokenizer().encode("prefix<mask_1>suffix<|endoftext|><sep><mask_1>")
    assert ids == [40290, 51199, 37333, 844, 50256, 50317, 51199]


def test_special_token_text_and_near_misses() -> None:
    tok = codegen25_tokenizer()
    assert tok.encode("<eom>") == [EOM_ID]
    assert tok.encode("a<<sep>>") == [64, 27, SEP_ID, 29]
    assert all(i < 50257 for i in tok.encode("<mask_0><mask_882>< sep><|endoftext|"))
    assert tok.encode_ordinary("<sep>") == tok.encode("<") + tok.encode("sep>")
    assert tok.token_bytes(MASK1_ID) == b"<mask_1>" and tok.token_bytes(50257) == b" " * 31
    smile = tok.encode("🙂")
    assert len(smile) > 1 and tok.decode(smile[:1]) == "\ufffd"  # part of a UTF-8 sequence


def test_gguf_vocab_layout() -> None:
    vocab = gguf_vocab()
    assert len(vocab.tokens) == len(vocab.token_types) == VOCAB_SIZE
    assert len(set(vocab.tokens)) == VOCAB_SIZE
    control = [i for i, kind in enumerate(vocab.token_types) if kind == 3]
    assert control == [ENDOFTEXT_ID, *range(50295, VOCAB_SIZE)]
    assert set(vocab.token_types) == {1, 3}
    assert vocab.tokens[MASK1_ID] == "<mask_1>" and vocab.tokens[51198] == "<mask_2>"
    assert vocab.tokens[50319] == "<mask_881>" and vocab.tokens[EOM_ID] == "<eom>"
    assert vocab.tokens[SEP_ID] == "<sep>" and vocab.tokens[50313] == "<dummy_0>"
    assert vocab.tokens[50295:50313] == FIM_NAMES
    assert vocab.tokens[50257] == "Ġ" * 31 and vocab.tokens[50286] == "ĠĠ"
    assert vocab.tokens[50287] == "ĉ" * 9 and vocab.tokens[50294] == "ĉĉ"
    assert all(vocab.tokens[i] == text for text, i in SPECIAL_TOKENS.items())
    assert len(SPECIAL_TOKENS) == 1 + VOCAB_SIZE - 50295
    if (GPT2_DIR / "encoder.json").is_file():
        encoder = json.loads((GPT2_DIR / "encoder.json").read_text(encoding="utf-8"))
        assert vocab.tokens[:50257] == sorted(encoder, key=encoder.__getitem__)


def test_gguf_merges() -> None:
    vocab = gguf_vocab()
    assert len(vocab.merges) == 50038
    known = set(vocab.tokens)
    for merge in vocab.merges:
        left, right = merge.split(" ")
        assert left in known and right in known and left + right in known, merge
    assert vocab.merges[50000] == "Ġ" * 30 + " Ġ" and vocab.merges[50029] == "Ġ Ġ"
    assert vocab.merges[50030] == "ĉ" * 8 + " ĉ" and vocab.merges[-1] == "ĉ ĉ"
    if (GPT2_DIR / "vocab.bpe").is_file():
        lines = (GPT2_DIR / "vocab.bpe").read_text(encoding="utf-8").splitlines()
        assert vocab.merges[:50000] == lines[1:]


def merge_list_encoder(merges: list[str], tokens: list[str]) -> Callable[[str], list[int]]:
    """Encode as llama.cpp's "gpt2" tokenizer does: merge-list ranks, no whole-piece lookup."""
    rank = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
    token_id = {t: i for i, t in enumerate(tokens)}
    byte_chars = bytes_to_unicode()
    cache: dict[str, list[int]] = {}

    def encode_piece(piece: str) -> list[int]:
        symbols = [byte_chars[b] for b in piece.encode("utf-8")]
        while len(symbols) > 1:
            pairs = [(rank.get(pair, sys.maxsize), i) for i, pair in enumerate(zip(symbols, symbols[1:], strict=False))]
            best, i = min(pairs)
            if best == sys.maxsize:
                break
            symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
        return [token_id[s] for s in symbols]

    def encode(text: str) -> list[int]:
        ids: list[int] = []
        for piece in pretokenize(text):
            if piece not in cache:
                cache[piece] = encode_piece(piece)
            ids += cache[piece]
        return ids

    return encode


def test_gguf_merges_reproduce_tiktoken(tiktoken_encoding, humaneval_prompts) -> None:
    """The GGUF arrays, applied the llama.cpp way, give tiktoken's ids."""
    vocab = gguf_vocab()
    texts = [
        t
        for t in verification_corpus() + random_whitespace_strings() + humaneval_prompts
        if not any(s in t for s in SPECIAL_TOKENS)
    ]
    assert_same_ids(texts, tiktoken_encoding.encode_ordinary, merge_list_encoder(vocab.merges, vocab.tokens))
    # Without the 38 extra merges most indented code comes out differently.
    crippled = merge_list_encoder(vocab.merges[:50000], vocab.tokens)
    differing = [t for t in humaneval_prompts if crippled(t) != tiktoken_encoding.encode_ordinary(t)]
    assert len(differing) > len(humaneval_prompts) // 2


def test_bytes_to_unicode_and_white_space() -> None:
    mapping = bytes_to_unicode()
    assert len(set(mapping.values())) == 256
    assert mapping[ord(" ")] == "Ġ" and mapping[ord("\t")] == "ĉ" and mapping[ord("\n")] == "Ċ"
    assert mapping[ord("A")] == "A" and mapping[0xAD] == "Ń" and mapping[0xFF] == "ÿ"
    assert len(WHITE_SPACE) == 25 and "\x1c" not in WHITE_SPACE and "\x1c".isspace()
    assert WHITESPACE_TOKENS[0] == " " * 31 and WHITESPACE_TOKENS[-1] == "\t\t"


def test_pretokenize_known_splits() -> None:
    assert pretokenize("") == []
    assert pretokenize("  x") == [" ", " x"]
    assert pretokenize("x  ") == ["x", "  "]
    assert pretokenize("\n    return") == ["\n   ", " return"]
    assert pretokenize("\t\tif") == ["\t", "\t", "if"]
    assert pretokenize("don't DON'T") == ["don", "'t", " DON", "'", "T"]
    assert pretokenize("?'s 12ab") == ["?'", "s", " 12", "ab"]


def random_unicode_strings(count: int) -> list[str]:
    """Strings of characters assigned in this Python's Unicode database.

    Unassigned code points are left out: their class depends on the Unicode
    version of each engine (Python 3.11 ships 14.0, regex a newer one).
    """
    rng = random.Random(1414)
    ascii_heavy = list(" \t\n\r'sltdmrev aZ09._(<") + ["'ll", "'re", "'ve", "  ", "\t\t"]
    odd = sorted(WHITE_SPACE) + ["\x1c", "\x1f", "\u200b", "\u180e", "\u0301", "²", "Ⅻ"]

    def any_char() -> str:
        while True:
            char = chr(rng.randrange(0x110000 if rng.random() < 0.3 else 0x3000))
            if unicodedata.category(char) not in ("Cn", "Cs"):
                return char

    def unit() -> str:
        pick = rng.random()
        return rng.choice(ascii_heavy) if pick < 0.5 else rng.choice(odd) if pick < 0.7 else any_char()

    return ["".join(unit() for _ in range(rng.randint(0, 30))) for _ in range(count)]


def test_pretokenize_matches_regex_package() -> None:
    regex = pytest.importorskip("regex")
    pattern = regex.compile(GPT2_PATTERN)
    texts = random_unicode_strings(3000) + verification_corpus() + random_whitespace_strings(1000)
    for text in texts:
        assert pretokenize(text) == pattern.findall(text), f"first differing string: {text!r}"
