"""Prompt token ids equal the reference for each format, trimmed or not, and never exceed the window."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from ggufkit.llamacpp import tokenize
from ggufkit.vocab.codegen25 import codegen25_tokenizer
from localcoder.completion.prompts import FORMATS, Vocabulary, build_prompt, detect_format, stop_ids
from localcoder.errors import LocalcoderError

llama_cpp = pytest.importorskip("llama_cpp")

CODEGEN_TAIL = "<|endoftext|><sep><mask_1>"


@pytest.fixture(scope="module")
def codegen_vocab(tiny_f32_gguf: Path) -> Vocabulary:
    """The vocabulary of a converted CodeGen2.5 GGUF, through the real llama.cpp."""
    llm = llama_cpp.Llama(model_path=str(tiny_f32_gguf), vocab_only=True, verbose=False)
    eog = frozenset(t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(llm._model.vocab, t))
    return Vocabulary(lambda text: tokenize(llm, text), dict(llm.metadata), lambda: eog)


def split_points(texts: list[str], count: int) -> list[tuple[str, str]]:
    rng = random.Random(3)
    cases = []
    for text in rng.sample(texts, count):
        cut = rng.randint(0, len(text))
        cases.append((text[:cut], text[cut:]))
    return cases + [("", ""), ("def f():\n    ", ""), ("", "\n    return 1\n"), ("x = '<mask_1>'", " # <eom>\n")]


def test_codegen_infill_ids_equal_tiktoken(codegen_vocab, tiktoken_encoding, humaneval_prompts) -> None:
    fmt = detect_format(codegen_vocab)
    assert fmt.name == "codegen-infill"
    for prefix, suffix in split_points(humaneval_prompts, 60):
        prompt = build_prompt(fmt, codegen_vocab, prefix, suffix, budget=4096)
        reference = tiktoken_encoding.encode(prefix + "<mask_1>" + suffix + CODEGEN_TAIL, allowed_special="all")
        assert prompt.ids == reference, (prefix[-40:], suffix[:40])
    assert stop_ids(fmt, codegen_vocab) == {50318, 50256}


def test_trimmed_prompts_keep_the_cursor_lines_and_fit(codegen_vocab, tiktoken_encoding, humaneval_prompts) -> None:
    fmt = FORMATS["codegen-infill"]
    text = "".join(humaneval_prompts[:12])
    lines = text.splitlines(keepends=True)
    middle = len(lines) // 2
    prefix = "".join(lines[:middle]) + "    value = compute("
    suffix = ")\n" + "".join(lines[middle:])
    for budget in (60, 200, 700):
        prompt = build_prompt(fmt, codegen_vocab, prefix, suffix, budget)
        assert len(prompt.ids) <= budget
        assert prompt.trimmed_prefix_lines > 0 and prompt.trimmed_suffix_lines > 0
        assert prompt.prefix.endswith("    value = compute(") and prompt.suffix.startswith(")\n")
        assert prefix.endswith(prompt.prefix) and suffix.startswith(prompt.suffix)  # whole lines, nearest kept
        reference = tiktoken_encoding.encode(
            prompt.prefix + "<mask_1>" + prompt.suffix + CODEGEN_TAIL, allowed_special="all"
        )
        assert prompt.ids == reference
        # Farthest lines leave first: the kept text is balanced around the cursor within a line.
        kept_above = prompt.prefix.count("\n")
        kept_below = prompt.suffix.count("\n") - 1
        assert abs(kept_above - kept_below) <= 1 or min(middle - kept_above, len(lines) - middle - kept_below) == 0
    with pytest.raises(LocalcoderError):
        build_prompt(fmt, codegen_vocab, "x" * 5000, "", budget=20)


class FakeVocab(Vocabulary):
    """A pure-data vocabulary: for formats whose tokens CodeGen's vocabulary does not have."""

    def __init__(self, metadata: dict[str, str]) -> None:
        tokenizer = codegen25_tokenizer()
        super().__init__(tokenizer.encode, metadata, lambda: frozenset({0, 50256}))


def test_fim_format_from_gguf_metadata() -> None:
    vocab = FakeVocab(
        {f"tokenizer.ggml.{k}_token_id": str(v) for k, v in (("fim_pre", 1), ("fim_suf", 2), ("fim_mid", 3))}
    )
    vocab.single_token = lambda text: None  # no CodeGen sentinels in this vocabulary
    fmt = detect_format(vocab)
    assert fmt.name == "fim"
    prompt = build_prompt(fmt, vocab, "def f(", "):\n", budget=100)
    tok = codegen25_tokenizer().encode
    assert prompt.ids == [1, *tok("def f("), 2, *tok("):\n"), 3]
    assert stop_ids(fmt, vocab) == {0, 50256}


def test_left_to_right_for_models_without_infill() -> None:
    vocab = FakeVocab({})
    vocab.single_token = lambda text: None
    fmt = detect_format(vocab)
    assert fmt.name == "left-to-right" and not fmt.infill
    prompt = build_prompt(fmt, vocab, "import os\n", "print(1)\n", budget=100)
    assert prompt.ids == codegen25_tokenizer().encode("import os\n")
    assert any("cannot infill" in note for note in prompt.notes)


def test_recorded_format_wins_and_unknown_ones_are_refused() -> None:
    vocab = FakeVocab({"localcoder.prompt_format": "left-to-right"})
    assert detect_format(vocab).name == "left-to-right"
    with pytest.raises(LocalcoderError, match="prompt format"):
        detect_format(FakeVocab({"localcoder.prompt_format": "mystery"}))


def common_prefix(a: list[int], b: list[int]) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


def test_stable_layout_ids_equal_tiktoken(codegen_vocab, tiktoken_encoding, humaneval_prompts) -> None:
    fmt = FORMATS["codegen-infill"]
    for prefix, suffix in split_points(humaneval_prompts, 60):
        prompt = build_prompt(fmt, codegen_vocab, prefix, suffix, budget=4096, stable_lines=8)
        lines = prefix.splitlines(keepends=True)
        complete_lines = len(lines) - (1 if lines and not lines[-1].endswith("\n") else 0)
        anchor = complete_lines - complete_lines % 8
        stable, written = "".join(lines[:anchor]), "".join(lines[anchor:])
        assert (prompt.prefix, prompt.written) == (stable, written)
        reference = tiktoken_encoding.encode(stable + "<mask_1>" + suffix + CODEGEN_TAIL, allowed_special="all")
        assert prompt.ids == reference + tiktoken_encoding.encode(written, allowed_special="all")


def edits(text: str, line: int) -> list[tuple[str, str]]:
    """Cursor states of someone writing at the end of `line` (0-based): typing, then Enter and more typing."""
    lines = text.splitlines(keepends=True)
    before, after = "".join(lines[:line]) + lines[line].rstrip("\n"), "\n" + "".join(lines[line + 1 :])
    typed = ["", " ", " a", " an", " and", " and\n    ", " and\n    x", " and\n    x =", " and\n    x = 1\n"]
    return [(before + extra, after) for extra in typed]


def test_stable_layout_only_appends_while_typing(codegen_vocab, humaneval_prompts) -> None:
    """Typing and Enter inside one block of lines change only the last few prompt tokens; the window holds still."""
    fmt = FORMATS["codegen-infill"]
    text = "".join(humaneval_prompts[:12])
    line = 8 * (text.count("\n") // 16) + 1  # start of a block, room for the edits below
    for budget, trimmed in ((4096, False), (600, True)):
        states = [build_prompt(fmt, codegen_vocab, p, s, budget, stable_lines=8) for p, s in edits(text, line)]
        for old, new in itertools.pairwise(states):
            assert len(new.ids) <= budget
            assert new.prefix == old.prefix and new.suffix == old.suffix
            assert common_prefix(old.ids, new.ids) >= len(old.ids) - 2  # the last token may merge with new text
            assert bool(new.trimmed_prefix_lines or new.trimmed_suffix_lines) == trimmed
        # The cursor split the model card shows re-reads the whole suffix on each of these edits.
        classic = [build_prompt(fmt, codegen_vocab, p, s, budget) for p, s in edits(text, line)]
        assert all(common_prefix(a.ids, b.ids) < len(a.ids) - 100 for a, b in itertools.pairwise(classic[4:]))
