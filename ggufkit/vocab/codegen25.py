"""The CodeGen2.5 vocabulary, rebuilt without tiktoken or the network.

CodeGen2.5 ships no vocabulary file: its tokenization_codegen25.py asks
tiktoken for GPT-2 (downloaded at run time) and appends 38 whitespace tokens
and 905 special tokens. This module rebuilds that layout from the GPT-2 files
carried in ``data/`` and provides two things: a reference tokenizer equal to
tiktoken's (the yardstick for ``convert --verify``) and the token, type and
merge arrays a GGUF "gpt2" tokenizer needs to reproduce it in llama.cpp.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from ggufkit.vocab.bpe import ByteLevelBPE, bytes_to_unicode

VOCAB_SIZE = 51200
ENDOFTEXT_ID = 50256
FIRST_WHITESPACE_ID = 50257
FIRST_SPECIAL_ID = 50295
SEP_ID = 50317
EOM_ID = 50318
MASK1_ID = 51199

# gguf.TokenType values, spelled out so the reference needs no gguf import.
TOKEN_TYPE_NORMAL = 1
TOKEN_TYPE_CONTROL = 3

# Ordinary (mergeable) tokens after GPT-2: longer runs first, so they get
# lower ids and win over shorter runs when tiktoken merges.
WHITESPACE_TOKENS: tuple[str, ...] = (
    *(" " * n for n in range(31, 1, -1)),
    *("\t" * n for n in range(9, 1, -1)),
)

_NAMED_SPECIALS = (
    "<fim_prefix>",
    "<fim_middle>",
    "<fim_suffix>",
    "<fim_pad>",
    "<filename>",
    "<gh_stars>",
    "<issue_start>",
    "<issue_comment>",
    "<issue_closed>",
    "<jupyter_start>",
    "<jupyter_text>",
    "<jupyter_code>",
    "<jupyter_output>",
    "<empty_output>",
    "<commit_before>",
    "<commit_msg>",
    "<commit_after>",
    "<reponame>",
)


def _special_tokens() -> dict[str, int]:
    names = (
        *_NAMED_SPECIALS,
        *(f"<dummy_{n}>" for n in range(4)),
        "<sep>",
        "<eom>",
        *(f"<mask_{n}>" for n in range(881, 0, -1)),
    )
    specials = {"<|endoftext|>": ENDOFTEXT_ID}
    specials.update((name, FIRST_SPECIAL_ID + offset) for offset, name in enumerate(names))
    return specials


SPECIAL_TOKENS: Mapping[str, int] = MappingProxyType(_special_tokens())
_LONGEST_SPECIAL = max(map(len, SPECIAL_TOKENS))


def _data_text(name: str) -> str:
    return resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")


@functools.cache
def gpt2_ranks() -> dict[bytes, int]:
    """GPT-2's mergeable tokens (bytes -> id), from encoder.json."""
    char_to_byte = {char: byte for byte, char in bytes_to_unicode().items()}
    encoder: dict[str, int] = json.loads(_data_text("encoder.json"))
    return {
        bytes(char_to_byte[c] for c in spelled): token_id
        for spelled, token_id in encoder.items()
        if token_id != ENDOFTEXT_ID
    }


@functools.cache
def _gpt2_merges() -> tuple[str, ...]:
    """The 50000 merge lines of vocab.bpe, without its '#version' header."""
    lines = _data_text("vocab.bpe").split("\n")
    return tuple(line for line in lines[1:] if line)


def codegen25_ranks() -> dict[bytes, int]:
    """All mergeable CodeGen2.5 tokens: GPT-2 plus the 38 whitespace runs."""
    ranks = dict(gpt2_ranks())
    for offset, run in enumerate(WHITESPACE_TOKENS):
        ranks[run.encode("ascii")] = FIRST_WHITESPACE_ID + offset
    return ranks


class CodeGen25Tokenizer:
    """Reference CodeGen2.5 tokenizer, equal to tiktoken's allowed_special="all".

    Special-token text (``<mask_1>``, ``<sep>``, ``<|endoftext|>``, ...) in
    the input becomes one token, as in CodeGen2.5's own infill prompts; the
    text between is BPE-encoded on its own. No BOS token is added.
    """

    def __init__(self) -> None:
        self._bpe = ByteLevelBPE(codegen25_ranks())
        self._special_bytes = {i: s.encode("utf-8") for s, i in SPECIAL_TOKENS.items()}

    def encode(self, text: str) -> list[int]:
        """Token ids of text, special-token strings included as specials."""
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates: do as tiktoken does, pair what pairs, replace the rest.
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        ids: list[int] = []
        done = 0
        for start, end in _special_spans(text):
            ids.extend(self._bpe.encode_ordinary(text[done:start]))
            ids.append(SPECIAL_TOKENS[text[start:end]])
            done = end
        ids.extend(self._bpe.encode_ordinary(text[done:]))
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of text, special-token strings spelled out as plain text."""
        return self._bpe.encode_ordinary(text)

    def token_bytes(self, token_id: int) -> bytes:
        """Raw bytes of one token; a special token's bytes are its text."""
        special = self._special_bytes.get(token_id)
        if special is not None:
            return special
        return self._bpe.decode_bytes((token_id,))

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Bytes of a token sequence, special tokens as their text."""
        return b"".join(self.token_bytes(i) for i in ids)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of a token sequence; partial UTF-8 becomes U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")


def _special_spans(text: str) -> Iterable[tuple[int, int]]:
    """(start, end) of each special token in text, left to right.

    Every special is ``<`` + text without ``<`` or ``>`` + ``>``, so none is a
    prefix of another and the leftmost match is the only one: checking each
    ``<`` against the next ``>`` close enough to form a special is exact.
    """
    pos = text.find("<")
    while pos != -1:
        close = text.find(">", pos + 1, pos + _LONGEST_SPECIAL)
        if close != -1 and text[pos : close + 1] in SPECIAL_TOKENS:
            yield pos, close + 1
            pos = text.find("<", close + 1)
        else:
            pos = text.find("<", pos + 1)


@functools.cache
def codegen25_tokenizer() -> CodeGen25Tokenizer:
    """The shared reference tokenizer (loading GPT-2's tables takes ~0.2 s)."""
    return CodeGen25Tokenizer()


@dataclass(frozen=True)
class GGUFVocab:
    """Arrays for GGUF's tokenizer.ggml.{tokens,token_type,merges}."""

    tokens: list[str]
    token_types: list[int]
    merges: list[str]


@functools.cache
def _gguf_arrays() -> tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...]]:
    byte_chars = bytes_to_unicode()

    def spell(token: bytes) -> str:
        return "".join(byte_chars[b] for b in token)

    tokens = [""] * VOCAB_SIZE
    types = [TOKEN_TYPE_CONTROL] * VOCAB_SIZE
    for token, token_id in codegen25_ranks().items():
        tokens[token_id] = spell(token)
        types[token_id] = TOKEN_TYPE_NORMAL
    for text, token_id in SPECIAL_TOKENS.items():
        tokens[token_id] = text
    # llama.cpp merges by the merge list, not by token rank, so each
    # whitespace run needs a merge that grows it by one character.
    extra = tuple(f"{spell(run[:-1].encode())} {spell(run[-1].encode())}" for run in WHITESPACE_TOKENS)
    return tuple(tokens), tuple(types), _gpt2_merges() + extra


def gguf_vocab() -> GGUFVocab:
    """CodeGen2.5's vocabulary in GGUF "gpt2" form (fresh lists each call).

    Tokens use the byte-level spelling of encoder.json (space is 'Ġ', tab
    'ĉ'); specials are their literal text. Whitespace runs are NORMAL, not
    USER_DEFINED, because llama.cpp splits user-defined tokens out before the
    regex and would tokenize differently from tiktoken; ``<|endoftext|>`` and
    every id from 50295 up are CONTROL.
    """
    tokens, types, merges = _gguf_arrays()
    return GGUFVocab(tokens=list(tokens), token_types=list(types), merges=list(merges))


def add_to_gguf(writer: Any) -> None:
    """CodeGen2.5's tokenizer keys on a GGUFWriter: the vocabulary, and the ids that begin and end text.

    bos/eos in config.json are ignored on purpose: the instruct config says 1/2, which are ordinary GPT-2
    tokens; pad 0 ("!") must not become padding. Shared by the converter and the bundled tokenizer-only GGUF
    (localcoder/tokenizer_only.py), so both tokenize alike."""
    table = gguf_vocab()
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(table.tokens)
    writer.add_token_types(table.token_types)
    writer.add_token_merges(table.merges)
    writer.add_bos_token_id(ENDOFTEXT_ID)
    writer.add_eos_token_id(ENDOFTEXT_ID)
    writer.add_eom_token_id(EOM_ID)
    writer.add_add_bos_token(False)
