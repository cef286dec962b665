"""Read prompt tokens into the KV cache so that a request nobody waits for any more stops mid-prompt.

llama-cpp-python's `Llama.eval` reads a whole prompt in one call (512-token batches, nothing asked between
them), so an abandoned request used to read all of a new file before its cancellation was noticed. Here the
prompt goes in READ_BATCH-token batches with `cancelled()` asked before each, and while a batch runs,
llama.cpp's abort callback asks it too (at most every POLL_S), so a cancellation stops inside a batch; the
aborted batch's tokens are read again by whoever needs them.

What was read stays exact: llama-cpp-python records a batch's tokens (`input_ids`, `n_tokens`) only after its
decode returns, and an aborted decode raises before that, so the KV cells of a half-read batch are never
counted as cached; the next `eval` removes them (`kv_cache_seq_rm` from `n_tokens`). Every batch that
finished counts for the next request sharing the prefix.

Why 128 and the callback: on the bench model (hidden 512, 8 layers, Q4_K_M, 1 thread) a 3,000-token prompt
reads at 1,290 tokens/s in 512-token batches, 1,370 in 128, 1,310 in 64 and 1,100 in 32 (BENCHMARKS.md):
batches small enough to stop within ~40 ms by themselves (about 50 tokens here, 1 or 2 for a 7B model on a
CPU) cost 15% or more. The abort callback, asked between graph nodes (about 40 times a 128-token batch),
costs nothing measurable and stops a read within a node, whatever the model's size. 128 keeps full speed;
a smaller batch would only lose less of the aborted batch's work.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Callable
from typing import Any

from localcoder.completion.prompt_cache import common_prefix

READ_BATCH = 128
POLL_S = 0.002  # how often the abort callback asks `cancelled()` while a batch decodes (a select() call)


class GenerationCancelled(Exception):
    """The caller stopped a generation midway (its HTTP client disconnected, a newer request superseded it).

    `read` is how many prompt tokens it had read into the cache by then (they stay cached)."""

    def __init__(self, read: int = 0) -> None:
        super().__init__(f"cancelled after reading {read} prompt tokens")
        self.read = read


def read_tokens(llm: Any, ids: list[int], cancelled: Callable[[], bool] | None = None) -> int:
    """Make `ids` the cached sequence's prefix, reading what it lacks; returns how many tokens were read.

    A cached sequence that already starts with all of `ids` is left as it is (it may hold more). Raises
    GenerationCancelled when `cancelled()` says yes, with the cache holding exactly the batches read."""
    held = common_prefix(llm.input_ids[: llm.n_tokens], ids)
    if held == len(ids):
        return 0
    llm.n_tokens = held
    if cancelled is None:
        llm.eval(ids[held:])
        return len(ids) - held
    with _abort_callback(llm, cancelled) as aborted:
        for start in range(held, len(ids), READ_BATCH):
            if cancelled():
                raise GenerationCancelled(start - held)
            try:
                llm.eval(ids[start : start + READ_BATCH])
            except RuntimeError:
                if aborted():
                    raise GenerationCancelled(llm.n_tokens - held) from None
                raise
    return len(ids) - held


class _abort_callback:  # noqa: N801 (used as a context manager)
    """llama.cpp asks the callback between graph nodes; it says abort once `cancelled()` does."""

    def __init__(self, llm: Any, cancelled: Callable[[], bool]) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        self._ctx = llm._ctx.ctx
        self._cancelled = cancelled
        self._said_yes = False
        self._next_poll = 0.0
        self._callback = llama_cpp.ggml_abort_callback(self._poll)  # kept alive while llama.cpp holds it

    def _poll(self, _data: Any) -> bool:
        if self._said_yes:
            return True
        now = time.monotonic()
        if now < self._next_poll:
            return False
        self._next_poll = now + POLL_S
        try:
            self._said_yes = bool(self._cancelled())
        except Exception:  # an exception cannot cross into C; a broken check means "go on"
            return False
        return self._said_yes

    def __enter__(self) -> Callable[[], bool]:
        # llama.cpp reports an aborted decode as an error on stderr ("decode: removing memory module entries");
        # here it is the expected way to stop, and a real failure still raises.
        self._logger = logging.getLogger("llama-cpp-python")
        self._level = self._logger.level
        self._logger.setLevel(logging.CRITICAL)
        self._llama_cpp.llama_set_abort_callback(self._ctx, self._callback, None)
        return lambda: self._said_yes

    def __exit__(self, *_exc: object) -> None:
        self._logger.setLevel(self._level)
        none = ctypes.cast(None, self._llama_cpp.ggml_abort_callback)
        self._llama_cpp.llama_set_abort_callback(self._ctx, none, None)
