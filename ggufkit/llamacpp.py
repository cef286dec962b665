"""The few llama-cpp-python calls localcoder makes, with their sharp edges filed off.

llama-cpp-python's `Llama.detokenize` decodes each token into a 32-byte
buffer and silently mangles longer pieces (GPT-2 has tokens of 32+ dashes),
and drops a leading space after a BOS token, which for CodeGen is also
<|endoftext|>; llama.cpp's own `llama_detokenize` drops spaces next to some
special tokens. `detokenize` here joins each token's exact piece.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ggufkit.errors import UserError


def load_llama(path: Path, **kwargs: Any) -> Any:
    """A llama_cpp.Llama for `path`, quiet, with load failures as one-line errors."""
    try:
        import llama_cpp
    except ImportError:
        raise UserError("llama-cpp-python is not installed") from None
    try:
        return llama_cpp.Llama(model_path=str(path), verbose=False, **kwargs)
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"llama.cpp cannot load {path}: {exc}") from None


def tokenize(llm: Any, text: str) -> list[int]:
    """Token ids of `text`, special-token text parsed as special tokens, no BOS."""
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def token_piece(llm: Any, token: int, special: bool = True) -> bytes:
    """The bytes of one token as llama.cpp's vocabulary holds them, however long."""
    import llama_cpp

    size = 64
    while True:
        buffer = ctypes.create_string_buffer(size)
        written = llama_cpp.llama_token_to_piece(llm._model.vocab, token, buffer, size, 0, special)
        if written >= 0:
            return buffer.raw[:written]
        size = -written


def detokenize(llm: Any, ids: list[int], special: bool = True) -> bytes:
    """The exact bytes of `ids`: each token's piece, concatenated, nothing stripped."""
    return b"".join(token_piece(llm, token, special) for token in ids)


@dataclass
class ContextState:
    """A copy of a context's KV cache (and last logits) and the tokens it holds: one cached token sequence."""

    tokens: list[int]
    data: Any  # a ctypes byte array
    size: int

    @property
    def nbytes(self) -> int:
        return self.size


def save_context(llm: Any) -> ContextState:
    """Copy what the context holds; costs its used KV cells' bytes (about 0.5 MiB a token for a 7B model)."""
    import llama_cpp

    capacity = llama_cpp.llama_state_get_size(llm._ctx.ctx)
    data = (ctypes.c_uint8 * capacity)()
    size = llama_cpp.llama_state_get_data(llm._ctx.ctx, data, capacity)
    return ContextState(list(llm.input_ids[: llm.n_tokens]), data, int(size))


def restore_context(llm: Any, state: ContextState) -> None:
    """Put a saved state back; the next generation re-reads the last token for fresh logits (exact reuse)."""
    import llama_cpp

    if llama_cpp.llama_state_set_data(llm._ctx.ctx, state.data, state.size) != state.size:
        raise UserError("llama.cpp could not restore a cached prompt state")
    llm.input_ids[: len(state.tokens)] = state.tokens
    llm.n_tokens = len(state.tokens)
    llm._requires_eval = True
