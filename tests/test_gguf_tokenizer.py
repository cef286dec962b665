"""llama.cpp, reading the converted GGUF, tokenizes exactly as CodeGen2.5's tiktoken encoding does."""

from __future__ import annotations

from pathlib import Path

import pytest

from convert.vocab.corpus import verification_corpus
from ggufkit.llamacpp import detokenize, tokenize
from tests.references import assert_same_ids, random_whitespace_strings, tiktoken_ids

llama_cpp = pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def llama_tokenize(tiny_f32_gguf: Path):
    llm = llama_cpp.Llama(model_path=str(tiny_f32_gguf), vocab_only=True, verbose=False)
    return llm


def whitespace_runs() -> list[str]:
    """Runs of 1-40 spaces and tabs alone, as indentation, between words, mixed, with CR/LF."""
    strings = []
    for n in range(1, 41):
        for unit in (" ", "\t"):
            run = unit * n
            strings += [
                run,
                run + "x",
                "x" + run,
                "x" + run + "y",
                "\n" + run + "return x\n",
                run + "\n",
                "a\r\n" + run + "b",
            ]
        strings += [" \t" * n, "\t " * n, " " * n + "\t" * (n % 9), "\r\n" * n, "\r" * n + " " * n]
    return strings


def check(llm, strings: list[str], expected) -> None:
    assert_same_ids(strings, expected, lambda text: tokenize(llm, text))
    for text in strings:
        assert detokenize(llm, tokenize(llm, text)) == text.encode("utf-8"), repr(text[:200])


def test_builtin_corpus(llama_tokenize, tiktoken_encoding) -> None:
    check(llama_tokenize, verification_corpus(), tiktoken_ids(tiktoken_encoding))


def test_whitespace_runs_and_line_endings(llama_tokenize, tiktoken_encoding) -> None:
    strings = whitespace_runs() + random_whitespace_strings()
    assert len(strings) > 3000
    check(llama_tokenize, strings, tiktoken_ids(tiktoken_encoding))


def test_real_source_files_and_their_lines(llama_tokenize, tiktoken_encoding, stdlib_texts) -> None:
    lines = sorted({line for text in stdlib_texts for line in text.splitlines(keepends=True)})
    check(llama_tokenize, stdlib_texts + lines[:20000], tiktoken_ids(tiktoken_encoding))


def test_humaneval_prompts(llama_tokenize, tiktoken_encoding, humaneval_prompts) -> None:
    check(llama_tokenize, humaneval_prompts, tiktoken_ids(tiktoken_encoding))


def test_special_tokens_in_text_are_single_tokens(llama_tokenize) -> None:
    ids = llama_tokenize.tokenize(b"prefix<mask_1>suffix<|endoftext|><sep><mask_1>", add_bos=False, special=True)
    assert ids == [40290, 51199, 37333, 844, 50256, 50317, 51199]
    assert llama_tokenize.tokenize(b"<eom>", add_bos=False, special=True) == [50318]
    assert llama_tokenize.token_eos() == 50256 and llama_tokenize.token_bos() == 50256


def test_llama_cpp_pythons_own_detokenize_mangles_long_pieces(llama_tokenize) -> None:
    """Why ggufkit.llamacpp.detokenize exists: Llama.detokenize uses a 32-byte piece buffer."""
    text = "#" + "-" * 64 + "\n"
    ids = tokenize(llama_tokenize, text)
    assert detokenize(llama_tokenize, ids) == text.encode()
    assert llama_tokenize.detokenize(ids, special=True) != text.encode()


def end_of_generation_ids(llm) -> set[int]:
    vocab = llm._model.vocab
    return {token for token in range(51200) if llama_cpp.llama_vocab_is_eog(vocab, token)}


def test_end_of_generation_tokens(llama_tokenize) -> None:
    """<|endoftext|> and <eom> end generation; llama.cpp adds <fim_pad> and <reponame> by their text."""
    assert end_of_generation_ids(llama_tokenize) == {50256, 50298, 50312, 50318}


def test_eom_ends_generation_only_because_its_key_is_written(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gguf import GGUFWriter

    from convert.pipeline import ConvertOptions, convert

    monkeypatch.setattr(GGUFWriter, "add_eom_token_id", lambda self, token: None)
    out = convert(ConvertOptions(source=str(tiny_checkpoint), output=tmp_path / "no-eom.gguf")).output
    llm = llama_cpp.Llama(model_path=str(out), vocab_only=True, verbose=False)
    assert 50318 not in end_of_generation_ids(llm)
