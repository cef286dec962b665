"""Logits from the real llama.cpp, and the argmax rule every parity test applies to them."""

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


def top2_margins(logits: np.ndarray) -> np.ndarray:
    """Per position, how far the largest logit stands above the second largest."""
    top2 = np.partition(logits, -2, axis=-1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def assert_argmax_agrees(reference: np.ndarray, ours: np.ndarray, bound: float, min_fraction: float = 0.75) -> int:
    """Teacher-forced argmax parity, checked only where the bound decides it.

    `reference` and `ours` are the logits of the same token sequence (the prompt and the
    reference's own greedy continuation, so every generated position is covered). When every
    logit of ours is within `bound` of the reference's, a position whose reference top-1/top-2
    margin exceeds 2 x bound must have the same argmax; below that margin rounding alone may
    flip it, and a free-running greedy comparison then diverges for good (as one did when
    transformers 5.24 changed CodeGen's attention arithmetic). So: equal argmax at every
    decisive position, and at least `min_fraction` of positions decisive, so the check cannot
    pass vacuously. Returns the number of positions checked.
    """
    decisive = top2_margins(reference) > 2 * bound
    assert decisive.mean() >= min_fraction, (
        f"only {int(decisive.sum())} of {decisive.size} positions have a top-1/top-2 margin above {2 * bound:.3g}"
    )
    differing = np.flatnonzero(decisive & (ours.argmax(-1) != reference.argmax(-1)))
    assert differing.size == 0, f"argmax differs at decisive positions {differing.tolist()}"
    return int(decisive.sum())
