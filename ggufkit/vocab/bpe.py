"""Byte-level BPE as GPT-2 and tiktoken do it, in plain Python.

This is the reference the converter checks llama.cpp against, so it has to
agree with tiktoken bit for bit while depending on nothing but the standard
library: the pre-tokenizer is a hand-written scanner for the GPT-2 regex, and
merging follows tiktoken's rule (merge the adjacent pair whose concatenation
has the lowest rank), not the merge-list rule that llama.cpp uses.
"""

from __future__ import annotations

import heapq
import re
import unicodedata
from collections.abc import Iterable, Mapping

# The Unicode White_Space property, which is what `\s` means in the regex
# engines tiktoken and llama.cpp use. str.isspace() is not the same set: it
# also accepts U+001C..U+001F, which GPT-2's regex treats as punctuation.
WHITE_SPACE: frozenset[str] = frozenset(
    chr(code)
    for code in (
        *range(0x09, 0x0E),
        0x20,
        0x85,
        0xA0,
        0x1680,
        *range(0x2000, 0x200B),
        0x2028,
        0x2029,
        0x202F,
        0x205F,
        0x3000,
    )
)

# Apostrophe suffixes the GPT-2 regex splits off, in its alternation order.
_CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")

# One class letter per character lets the scanner find the end of a run with
# one C-level match instead of a Python loop over characters.
_LETTER, _NUMBER, _SPACE, _OTHER = "L", "N", "s", "O"
_RUN = {cls: re.compile(re.escape(cls) + "+") for cls in (_LETTER, _NUMBER, _SPACE, _OTHER)}


class _ClassTable(dict[int, str]):
    """str.translate table: code point -> class letter, filled on first use."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if char in WHITE_SPACE:
            cls = _SPACE
        else:
            major = unicodedata.category(char)[0]
            cls = _LETTER if major == "L" else _NUMBER if major == "N" else _OTHER
        self[code] = cls
        return cls


_CLASS_TABLE = _ClassTable()


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> character map used to spell tokens as text.

    Printable Latin-1 bytes stand for themselves; the 68 others (controls,
    space, NBSP, soft hyphen) are moved, in byte order, to U+0100 onwards so
    that every token is a visible string. GGUF "gpt2" vocabularies use it.
    """
    printable = {*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)}
    mapping: dict[int, str] = {}
    shifted = 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + shifted)
            shifted += 1
    return mapping


def pretokenize(text: str) -> list[str]:
    """Split text exactly as the GPT-2 regex does under a backtracking engine.

    The pattern is ``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+|
    ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``. Python's re has no \\p{L}, hence
    the scanner. Its subtle branch is ``\\s+(?!\\S)``: a whitespace run
    followed by a non-space gives back its last character, so that a final
    space can start the next word (``"  x"`` -> ``" ", " x"``).
    """
    classes = text.translate(_CLASS_TABLE)
    pieces: list[str] = []
    size = len(text)
    pos = 0
    while pos < size:
        char = text[pos]
        if char == "'":
            suffix = next((s for s in _CONTRACTIONS if text.startswith(s, pos + 1)), None)
            if suffix is not None:
                end = pos + 1 + len(suffix)
                pieces.append(text[pos:end])
                pos = end
                continue
        # " ?X+": a single U+0020 may lead a run of letters, numbers or others.
        start = pos + 1 if char == " " and pos + 1 < size and classes[pos + 1] != _SPACE else pos
        cls = classes[start]
        end = _RUN[cls].match(classes, start).end()  # type: ignore[union-attr]
        if cls == _SPACE and end < size and end - pos > 1:
            end -= 1  # \s+(?!\S) backs off one; a lone space falls to \s+
        pieces.append(text[pos:end])
        pos = end
    return pieces


class ByteLevelBPE:
    """tiktoken-style BPE over a rank table (token bytes -> id).

    A pre-token that is itself a token is taken whole. Otherwise its bytes
    are merged pairwise, each time joining the adjacent pair whose
    concatenation has the lowest rank (leftmost on ties), until no adjacent
    concatenation is a token. Results are cached per pre-token because code
    repeats the same identifiers and indentation endlessly.
    """

    _CACHE_LIMIT = 200_000

    def __init__(self, ranks: Mapping[bytes, int]) -> None:
        self._ranks = dict(ranks)
        self._bytes_of = {rank: token for token, rank in self._ranks.items()}
        self._cache: dict[str, tuple[int, ...]] = {}

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode text with no special-token handling."""
        ids: list[int] = []
        cache = self._cache
        for piece in pretokenize(text):
            piece_ids = cache.get(piece)
            if piece_ids is None:
                if len(cache) >= self._CACHE_LIMIT:
                    cache.clear()
                piece_ids = cache[piece] = tuple(self.encode_piece(piece.encode("utf-8")))
            ids.extend(piece_ids)
        return ids

    def encode_piece(self, data: bytes) -> list[int]:
        """Encode one pre-token's bytes; a heap keeps long pieces O(n log n)."""
        ranks = self._ranks
        whole = ranks.get(data)
        if whole is not None:
            return [whole]
        size = len(data)
        # Symbols are byte spans named by their start; end[s] == -1 marks a
        # start that was absorbed into the symbol on its left.
        end = list(range(1, size + 1))
        prev = list(range(-1, size - 1))
        heap = [(rank, s, s + 1, s + 2) for s in range(size - 1) if (rank := ranks.get(data[s : s + 2])) is not None]
        heapq.heapify(heap)
        while heap:
            _, left, mid, right = heapq.heappop(heap)
            if end[left] != mid or end[mid] != right:
                continue  # stale: one side has merged since this was pushed
            end[left] = right
            end[mid] = -1
            if right < size:
                prev[right] = left
                after = end[right]
                if (rank := ranks.get(data[left:after])) is not None:
                    heapq.heappush(heap, (rank, left, right, after))
            before = prev[left]
            if before >= 0 and (rank := ranks.get(data[before:right])) is not None:
                heapq.heappush(heap, (rank, before, left, right))
        ids = []
        start = 0
        while start < size:
            ids.append(ranks[data[start : end[start]]])
            start = end[start]
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Concatenate the bytes of ids; KeyError for ids outside the table."""
        bytes_of = self._bytes_of
        return b"".join(bytes_of[i] for i in ids)
