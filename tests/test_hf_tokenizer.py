"""CodeGen1/CodeGen2 vocabularies read from Hugging Face tokenizer files tokenize in llama.cpp as in transformers.

The tokenizer directories are built here, with transformers, from the GPT-2
files in ../shared/data/gpt2. What the real repos hold is partly assumed:

- CodeGen1 (verified against transformers' CodeGen tests and published
  tokenizer configs): GPT-2's vocab.json and merges.txt unchanged, and
  added_tokens.json with 38 non-special tokens, runs of 31..2 spaces then
  9..2 tabs at ids 50257..50294; `<|endoftext|>` (50256) is bos, eos and unk.
- CodeGen2 (assumed): the same files plus tokenizer.json, whose added tokens
  are the CodeGen1 whitespace runs followed by the special tokens `<sep>`,
  `<eom>` and `<mask_300>` down to `<mask_1>`. The real ids are never used by
  the converter, which reads them from the files; only the kinds of entries
  (special and non-special added tokens, unused rows up to config.json's
  vocab_size of 51200) matter here.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from convert.errors import ConvertError
from convert.vocab.corpus import verification_corpus
from convert.vocab.hf_tokenizer import (
    TOKEN_TYPE_UNUSED,
    TOKEN_TYPE_USER_DEFINED,
    CheckpointVocab,
    read_checkpoint_vocab,
)
from ggufkit.llamacpp import detokenize, tokenize
from ggufkit.vocab.bpe import bytes_to_unicode
from ggufkit.vocab.codegen25 import TOKEN_TYPE_NORMAL, GGUFVocab
from tests.codegen1 import WHITESPACE_TOKENS, write_tokenizer
from tests.references import assert_same_ids, random_whitespace_strings

transformers = pytest.importorskip("transformers")
llama_cpp = pytest.importorskip("llama_cpp")
gguf = pytest.importorskip("gguf")

VOCAB_SIZE = 51200
WHITESPACE_RUNS = WHITESPACE_TOKENS
MASKS = [f"<mask_{n}>" for n in range(300, 0, -1)]
CODEGEN2_SPECIALS = ["<sep>", "<eom>", *MASKS]
LAYOUTS = ("codegen1", "codegen2")


def save_codegen1(directory: Path) -> Path:
    """The files a CodeGen1 repo ships: GPT-2 vocab.json/merges.txt plus the whitespace runs as added tokens
    (tests/codegen1.write_tokenizer, the same files the tiny CodeGen checkpoints carry), and its tokenizer config."""
    directory.mkdir()
    write_tokenizer(directory, infill_tokens=False)
    roles = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    config = {"add_prefix_space": False, "model_max_length": 2048, "tokenizer_class": "CodeGenTokenizer", **roles}
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return directory


def save_codegen2(directory: Path, codegen1: Path) -> Path:
    """CodeGen1's tokenizer plus infill specials, saved by transformers (tokenizer.json) beside GPT-2's files."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(codegen1)
    assert tokenizer.add_special_tokens({"additional_special_tokens": CODEGEN2_SPECIALS}) == len(CODEGEN2_SPECIALS)
    tokenizer.save_pretrained(directory)
    assert (directory / "tokenizer.json").is_file()
    for name in ("vocab.json", "merges.txt"):
        if not (directory / name).exists():
            shutil.copy(codegen1 / name, directory / name)
    return directory


def write_vocab_gguf(vocab: CheckpointVocab, path: Path) -> Path:
    """A tokenizer-only GGUF; llama.cpp's vocab_only load reads no phi2 hyperparameters."""
    writer = gguf.GGUFWriter(str(path), "phi2")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(vocab.vocab.tokens)
    writer.add_token_types(vocab.vocab.token_types)
    writer.add_token_merges(vocab.vocab.merges)
    writer.add_bos_token_id(vocab.bos_id)
    writer.add_eos_token_id(vocab.eos_id)
    if vocab.eom_id is not None:
        writer.add_eom_token_id(vocab.eom_id)
    writer.add_add_bos_token(False)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


class Pair:
    """One tokenizer layout: its directory, transformers' tokenizer, our vocabulary and llama.cpp on its GGUF."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.hf = transformers.AutoTokenizer.from_pretrained(directory)
        self.vocab = read_checkpoint_vocab(directory, VOCAB_SIZE)
        gguf_path = write_vocab_gguf(self.vocab, directory.parent / f"{directory.name}.gguf")
        self.llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)

    def hf_ids(self, text: str) -> list[int]:
        return self.hf(text, add_special_tokens=False)["input_ids"]

    def check(self, strings: list[str], round_trip: bool = True) -> None:
        """Equal ids for every string, and (round_trip) llama.cpp's pieces give the text back byte for byte."""
        # One batch call lets the Rust tokenizer use every core; the stdlib files are 5 MB of text.
        expected = dict(zip(strings, self.hf(strings, add_special_tokens=False)["input_ids"], strict=True))
        ours = {text: tokenize(self.llm, text) for text in strings}
        assert_same_ids(strings, expected.__getitem__, ours.__getitem__)
        for text, ids in ours.items() if round_trip else ():
            assert detokenize(self.llm, ids) == text.encode("utf-8"), repr(text[:200])


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pair]:
    root = tmp_path_factory.mktemp("hf_tokenizers")
    codegen1 = save_codegen1(root / "codegen1")
    codegen2 = save_codegen2(root / "codegen2", codegen1)
    return {"codegen1": Pair(codegen1), "codegen2": Pair(codegen2)}


@pytest.fixture(params=LAYOUTS)
def pair(request: pytest.FixtureRequest, layouts: dict[str, Pair]) -> Pair:
    return layouts[request.param]


def whitespace_runs() -> list[str]:
    """Runs of 1-40 spaces or tabs alone, as indentation, between words, at line ends and mixed."""
    strings = []
    for n in range(1, 41):
        for unit in (" ", "\t"):
            run = unit * n
            strings += [run, run + "x", "x" + run, "x" + run + "y", "\n" + run + "return x\n", run + "\n"]
            strings += ["a\r\n" + run + "b", run + "<sep>" + run, "<mask_1>" + run + "<eom>"]
        strings += [" \t" * n, "\t " * n, " " * n + "\t" * (n % 9), "\t" * (n % 9) + " " * n, "\r" * n + " " * n]
    return strings


def test_builtin_corpus(pair: Pair) -> None:
    pair.check(verification_corpus())


def test_whitespace_runs_and_random_whitespace(pair: Pair) -> None:
    strings = whitespace_runs() + random_whitespace_strings()
    assert len(strings) > 3000
    pair.check(strings)


def test_stdlib_files_and_lines(pair: Pair, stdlib_texts: list[str]) -> None:
    lines = sorted({line for text in stdlib_texts for line in text.splitlines(keepends=True)})
    # Decoding only joins per-token pieces, which the lines and other corpora check; 5 MB of it costs ~4 s.
    pair.check(stdlib_texts, round_trip=False)
    pair.check(lines[:5000])


def test_humaneval_prompts(pair: Pair, humaneval_prompts: list[str]) -> None:
    pair.check(humaneval_prompts)


def test_transformers_decodes_llama_cpp_ids_to_the_text(pair: Pair) -> None:
    for text in verification_corpus() + whitespace_runs():
        assert pair.hf.decode(tokenize(pair.llm, text), clean_up_tokenization_spaces=False) == text, repr(text)


def test_whitespace_runs_as_merged_normal_tokens_would_tokenize_differently(layouts: dict[str, Pair]) -> None:
    """Why added whitespace runs are USER_DEFINED here, unlike CodeGen2.5's NORMAL tokens with extra merges.

    transformers splits added tokens out before BPE ("\\n", "    ", "return");
    merges reproduce tiktoken's regex-first split instead ("\\n", "   ", " return").
    """
    pair = layouts["codegen1"]
    byte_chars = bytes_to_unicode()

    def spell(text: str) -> str:
        return "".join(byte_chars[b] for b in text.encode("utf-8"))

    table = pair.vocab.vocab
    tokens, types = list(table.tokens), list(table.token_types)
    for offset, run in enumerate(WHITESPACE_RUNS):
        tokens[50257 + offset], types[50257 + offset] = spell(run), TOKEN_TYPE_NORMAL
    merges = table.merges + [f"{spell(run[:-1])} {spell(run[-1])}" for run in WHITESPACE_RUNS]
    merged = replace(pair.vocab, vocab=GGUFVocab(tokens=tokens, token_types=types, merges=merges))
    path = write_vocab_gguf(merged, pair.directory.parent / "merged-whitespace.gguf")
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    text = "\n    return x\n"
    assert pair.hf_ids(text) == tokenize(pair.llm, text) == [198, 50284, 7783, 2124, 198]
    assert tokenize(llm, text) == [198, 50285, 1441, 2124, 198]
    strings = whitespace_runs()
    differ = sum(
        tokenize(llm, text) != ids
        for text, ids in zip(strings, pair.hf(strings, add_special_tokens=False)["input_ids"], strict=True)
    )
    assert differ > len(strings) // 3


def test_special_token_text_is_split_out_like_transformers(pair: Pair) -> None:
    strings = [
        "prefix<mask_1>suffix<|endoftext|><sep><mask_1>",
        "def f(x):\n    <mask_1>\n<|endoftext|><sep><mask_1>    return x<eom>",
        "<mask_10><mask_100><mask_300><mask_301><mask_0><sep ><eom<|endoftext|>>",
        "<|endoftext|><|endoftext|>  <|endoftext|>\t\t<sep>",
    ]
    pair.check(strings)
    infill = pair.hf_ids(strings[0])
    if pair.vocab.has_infill:
        ids = pair.vocab.special_ids
        assert infill == [40290, ids["<mask_1>"], 37333, 844, 50256, ids["<sep>"], ids["<mask_1>"]]
    else:
        assert 50256 in infill and len(infill) > 7  # CodeGen1 spells <mask_1> and <sep> as plain text


def test_codegen1_ids_types_and_padding(layouts: dict[str, Pair]) -> None:
    pair = layouts["codegen1"]
    vocab, table = pair.vocab, pair.vocab.vocab
    assert len(pair.hf) == 50295 and pair.hf.convert_tokens_to_ids("    ") == 50284
    assert (vocab.eos_id, vocab.bos_id, vocab.eom_id, vocab.has_infill) == (50256, 50256, None, False)
    assert vocab.special_ids == {"<|endoftext|>": 50256}
    assert table.tokens[50257:50295] == WHITESPACE_RUNS  # raw text: llama.cpp matches user tokens unspelled
    assert set(table.token_types[50257:50295]) == {TOKEN_TYPE_USER_DEFINED}
    assert len(table.merges) == 50000 and table.tokens[220] == "Ġ" and table.tokens[50256] == "<|endoftext|>"
    assert_padding(pair, first=50295)


def test_codegen2_ids_types_and_padding(layouts: dict[str, Pair]) -> None:
    pair = layouts["codegen2"]
    vocab, hf = pair.vocab, pair.hf
    expected = {text: hf.convert_tokens_to_ids(text) for text in ["<|endoftext|>", *CODEGEN2_SPECIALS]}
    assert vocab.special_ids == expected
    assert vocab.has_infill and vocab.eom_id == expected["<eom>"] == 50296
    assert expected["<mask_1>"] == 50596 and len(hf) == 50597
    assert (vocab.eos_id, vocab.bos_id) == (50256, 50256)
    assert pair.llm.token_eos() == 50256 and pair.llm.token_bos() == 50256
    assert llama_cpp.llama_vocab_is_eog(pair.llm._model.vocab, vocab.eom_id)
    assert set(vocab.vocab.token_types[50295:50597]) == {3}  # CONTROL
    assert_padding(pair, first=50597)


def assert_padding(pair: Pair, first: int) -> None:
    """Rows past the tokenizer are UNUSED placeholders that no text produces."""
    table = pair.vocab.vocab
    assert (
        len(table.tokens)
        == len(table.token_types)
        == VOCAB_SIZE
        == llama_cpp.llama_vocab_n_tokens(pair.llm._model.vocab)
    )
    assert table.tokens[first:] == [f"<|unused_{i}|>" for i in range(first, VOCAB_SIZE)]
    assert set(table.token_types[first:]) == {TOKEN_TYPE_UNUSED}
    text = "".join(table.tokens[first : first + 20])
    assert all(i < first for i in tokenize(pair.llm, text))
    assert tokenize(pair.llm, text) == pair.hf_ids(text)


def test_added_tokens_listed_in_tokenizer_config(layouts: dict[str, Pair], tmp_path: Path) -> None:
    """Newer transformers save added tokens as tokenizer_config.json's added_tokens_decoder, not added_tokens.json."""
    codegen1 = layouts["codegen1"]
    directory = _copy(codegen1.directory, tmp_path / "decoder")
    (directory / "added_tokens.json").unlink()
    flags = {"lstrip": False, "rstrip": False, "single_word": False}
    decoder = {"50256": {"content": "<|endoftext|>", "normalized": False, "special": True, **flags}}
    for offset, run in enumerate(WHITESPACE_RUNS):
        decoder[str(50257 + offset)] = {"content": run, "normalized": True, "special": False, **flags}
    _edit_json(directory / "tokenizer_config.json", lambda config: config.update(added_tokens_decoder=decoder))
    assert read_checkpoint_vocab(directory, VOCAB_SIZE) == codegen1.vocab
    hf = transformers.AutoTokenizer.from_pretrained(directory)
    strings = whitespace_runs()
    assert (
        hf(strings, add_special_tokens=False)["input_ids"]
        == codegen1.hf(strings, add_special_tokens=False)["input_ids"]
    )


def test_vocab_size_comes_from_config(layouts: dict[str, Pair]) -> None:
    directory = layouts["codegen1"].directory
    assert len(read_checkpoint_vocab(directory, 50295).vocab.tokens) == 50295
    with pytest.raises(ConvertError, match="50295 tokens but config.json's vocab_size is 50294"):
        read_checkpoint_vocab(directory, 50294)


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _corruptions(codegen1: Path, codegen2: Path, tmp: Path) -> list[tuple[Path, str]]:
    cases = []

    def case(source: Path, name: str, expected: str, change) -> None:
        directory = _copy(source, tmp / name)
        change(directory)
        cases.append((directory, expected))

    case(codegen1, "no_vocab", "vocab.json is missing", lambda d: (d / "vocab.json").unlink())
    case(codegen1, "no_merges", "merges.txt is missing", lambda d: (d / "merges.txt").unlink())
    case(codegen1, "bad_json", "vocab.json is not valid JSON", lambda d: (d / "vocab.json").write_text("{"))
    case(
        codegen1,
        "twice",
        "vocab.json is not valid JSON: key 'a' appears twice",
        lambda d: (d / "vocab.json").write_text('{"a": 0, "a": 1}'),
    )
    case(codegen1, "bad_merge", "merges.txt: malformed merge", lambda d: (d / "merges.txt").write_text("a b c\n"))
    case(codegen1, "bad_added", "added_tokens.json: expected", lambda d: (d / "added_tokens.json").write_text("[1]"))
    case(
        codegen1,
        "same_id",
        "tokenizer id 50256 is both",
        lambda d: (d / "added_tokens.json").write_text('{"<sep>": 50256}'),
    )
    case(
        codegen1,
        "two_ids",
        "'<|endoftext|>' has ids 50256 and 50257",
        lambda d: (d / "added_tokens.json").write_text('{"<|endoftext|>": 50257}'),
    )
    case(
        codegen1,
        "bad_config",
        "tokenizer_config.json is not valid JSON",
        lambda d: (d / "tokenizer_config.json").write_text("{,}"),
    )
    case(codegen1, "hole", "no token with id 50257", lambda d: (d / "added_tokens.json").write_text('{"<sep>": 50258}'))
    case(codegen2, "tj_bad_json", "tokenizer.json is not valid JSON", lambda d: (d / "tokenizer.json").write_text("["))
    case(
        codegen2,
        "tj_wordpiece",
        "tokenizer.json: the tokenizer model is 'WordPiece'",
        lambda d: _edit_json(d / "tokenizer.json", lambda data: data["model"].update(type="WordPiece")),
    )
    case(
        codegen2,
        "tj_prefix",
        "tokenizer.json: only GPT-2's byte-level pre-tokenizer",
        lambda d: _edit_json(d / "tokenizer.json", lambda data: data["pre_tokenizer"].update(add_prefix_space=True)),
    )
    case(
        codegen2,
        "tj_duplicate",
        "tokenizer id 50296 is both",
        lambda d: _edit_json(d / "tokenizer.json", lambda data: _set_added_id(data, "<sep>", 50296)),
    )
    case(
        codegen2,
        "tj_hole",
        "no token with id 50596",
        lambda d: _edit_json(d / "tokenizer.json", lambda data: _set_added_id(data, "<mask_1>", 50610)),
    )
    case(
        codegen2,
        "tj_rstrip",
        "strips spaces",
        lambda d: _edit_json(d / "tokenizer.json", lambda data: data["added_tokens"][-1].update(rstrip=True)),
    )
    return cases


def _set_added_id(data: dict, content: str, token_id: int) -> None:
    entry = next(entry for entry in data["added_tokens"] if entry["content"] == content)
    entry["id"] = token_id


def test_corrupt_or_unsupported_files_are_one_line_errors(layouts: dict[str, Pair], tmp_path: Path) -> None:
    cases = _corruptions(layouts["codegen1"].directory, layouts["codegen2"].directory, tmp_path)
    for directory, expected in cases:
        with pytest.raises(ConvertError) as caught:
            read_checkpoint_vocab(directory, VOCAB_SIZE)
        message = str(caught.value)
        assert expected in message and "\n" not in message, (directory.name, message)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConvertError, match="vocab.json is missing"):
        read_checkpoint_vocab(tmp_path / "empty", VOCAB_SIZE)
