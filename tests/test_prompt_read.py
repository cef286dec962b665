"""Abortable prompt reading (completion/prompt_read.py) on the real llama.cpp: where a cancelled read stops, and
that the cache it leaves is exact (the next generation equals one from a fresh context, token for token)."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcoder.bench import sample_source
from localcoder.completion.generate import GenerationCancelled, Sampling, generate
from localcoder.completion.prompt_read import READ_BATCH, read_tokens
from localcoder.runtime import LoadOptions, load_model

pytest.importorskip("llama_cpp")

GREEDY = Sampling(temperature=0.0, max_tokens=12)


@pytest.fixture(scope="module")
def prompt(tiny_f32_gguf: Path) -> list[int]:
    model = load_model(tiny_f32_gguf, LoadOptions(ctx=2048))
    ids = model.vocab.tokenize(sample_source(12)[0])[:900]
    model.llm.close()
    return ids


def greedy_tokens(llm, ids: list[int]) -> list[int]:
    """The tokens a greedy generation evaluates after `ids` (what llama-cpp-python's generate fed back)."""
    run = generate(llm, ids, frozenset(), GREEDY, lambda _text: True, cancelled=lambda: False)
    assert run.tokens == GREEDY.max_tokens
    return list(llm.input_ids[len(ids) : llm.n_tokens])


@pytest.fixture(scope="module")
def fresh_answer(tiny_f32_gguf: Path, prompt: list[int]) -> list[int]:
    model = load_model(tiny_f32_gguf, LoadOptions(ctx=2048))
    try:
        return greedy_tokens(model.llm, prompt)
    finally:
        model.llm.close()


def test_a_read_cancelled_between_batches_keeps_exactly_the_batches_read(tiny_f32_gguf, prompt, fresh_answer):
    model = load_model(tiny_f32_gguf, LoadOptions(ctx=2048))
    llm = model.llm
    try:
        with pytest.raises(GenerationCancelled) as stopped:
            read_tokens(llm, prompt, lambda: llm.n_tokens >= 200)
        assert stopped.value.read == llm.n_tokens == 2 * READ_BATCH
        assert list(llm.input_ids[: llm.n_tokens]) == prompt[: llm.n_tokens]
        assert greedy_tokens(llm, prompt) == fresh_answer  # the rest read on top of what the aborted read left
    finally:
        llm.close()


def test_a_read_cancelled_inside_a_batch_counts_none_of_it(tiny_f32_gguf, prompt, fresh_answer):
    """The second question comes from llama.cpp's abort callback while the first batch decodes."""
    model = load_model(tiny_f32_gguf, LoadOptions(ctx=2048))
    llm = model.llm
    asked: list[int] = []

    def cancelled() -> bool:
        asked.append(llm.n_tokens)
        return len(asked) >= 2

    try:
        read_tokens(llm, prompt[:300])
        with pytest.raises(GenerationCancelled) as stopped:
            read_tokens(llm, prompt, cancelled)
        assert asked == [300, 300] and stopped.value.read == 0 and llm.n_tokens == 300
        assert greedy_tokens(llm, prompt) == fresh_answer
    finally:
        llm.close()


def test_an_uncancelled_read_in_batches_equals_one_read_at_once(tiny_f32_gguf, prompt, fresh_answer):
    model = load_model(tiny_f32_gguf, LoadOptions(ctx=2048))
    llm = model.llm
    try:
        assert read_tokens(llm, prompt, lambda: False) == len(prompt)
        assert read_tokens(llm, prompt[:100], lambda: True) == 0  # already cached: nothing read, nothing asked
        assert llm.n_tokens == len(prompt)
        assert greedy_tokens(llm, prompt) == fresh_answer
    finally:
        llm.close()
