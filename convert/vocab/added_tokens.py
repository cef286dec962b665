"""Reference tokenizer for CodeGen1 and CodeGen2: added tokens split out first, GPT-2 BPE for the rest.

That is how Hugging Face tokenizers treat a checkpoint's added tokens (the
38 whitespace runs, <|endoftext|>, <mask_N>, <sep>, <eom>): the text is cut
at each added token, longest match at the leftmost position, before any BPE.
`localcoder verify` compares llama.cpp against this for those families.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ggufkit.vocab.bpe import ByteLevelBPE
from ggufkit.vocab.codegen25 import ENDOFTEXT_ID, gpt2_ranks


class AddedTokensTokenizer:
    def __init__(self, added: Mapping[str, int]) -> None:
        self.added = dict(added)
        self.bpe = ByteLevelBPE(gpt2_ranks())
        alternatives = sorted(self.added, key=len, reverse=True)  # longest first at each position
        self.pattern = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        position = 0
        for match in self.pattern.finditer(text) if self.pattern else ():
            ids += self.bpe.encode_ordinary(text[position : match.start()])
            ids.append(self.added[match.group()])
            position = match.end()
        return ids + self.bpe.encode_ordinary(text[position:])


def tokenizer_from_gguf_tokens(tokens: list[str], types: list[int]) -> AddedTokensTokenizer:
    """The reference for a GGUF whose vocabulary is GPT-2 plus added (USER_DEFINED or CONTROL) tokens."""
    user_defined, control = 4, 3
    added = {
        text: index
        for index, (text, kind) in enumerate(zip(tokens, types, strict=True))
        if kind in (user_defined, control)
    }
    added.setdefault("<|endoftext|>", ENDOFTEXT_ID)
    return AddedTokensTokenizer(added)
