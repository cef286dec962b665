"""Logits and greedy continuations from the real llama.cpp, the way every parity test reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def llama_logits(path: Path, ids: list[int], greedy_tokens: int = 12) -> tuple[np.ndarray, list[int]]:
    """All-position logits of `ids` (f32 KV cache) and the next `greedy_tokens` argmax tokens."""
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(path), n_ctx=256, logits_all=True, type_k=0, type_v=0, n_threads=2, verbose=False
    )
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float32)
    generated = []
    for _ in range(greedy_tokens):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        generated.append(token)
        llm.eval([token])
    return logits, generated
