"""References the tokenizer tests compare against, built independently of convert.vocab.

tiktoken is assembled offline the way CodeGen2.5's tokenization_codegen25.py
assembles it (GPT-2 ranks, 38 whitespace ranks, the special tokens), from the
GPT-2 files in ../shared/data/gpt2.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import sysconfig
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# The hashes tiktoken checks when it downloads its "gpt2" files.
GPT2_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}


def _gpt2_dir() -> Path:
    """../shared/data/gpt2, else the package's copy: either way the files tiktoken would download."""
    shared = SHARED_DATA / "gpt2"
    if all((shared / name).is_file() for name in GPT2_SHA256):
        return shared
    return Path(__file__).resolve().parents[1] / "ggufkit" / "vocab" / "data"


GPT2_DIR = _gpt2_dir()
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
FIM_NAMES = (
    "<fim_prefix> <fim_middle> <fim_suffix> <fim_pad> <filename> <gh_stars> <issue_start> "
    "<issue_comment> <issue_closed> <jupyter_start> <jupyter_text> <jupyter_code> "
    "<jupyter_output> <empty_output> <commit_before> <commit_msg> <commit_after> <reponame>"
).split()


@pytest.fixture(scope="session")
def tiktoken_encoding():
    """tiktoken's CodeGen2.5 encoding, assembled independently of convert.vocab."""
    tiktoken = pytest.importorskip("tiktoken")
    load = pytest.importorskip("tiktoken.load")
    for name, digest in GPT2_SHA256.items():
        assert hashlib.sha256((GPT2_DIR / name).read_bytes()).hexdigest() == digest, f"{GPT2_DIR / name} is not GPT-2's"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", "")  # read the local files, write no cache
        ranks = load.data_gym_to_mergeable_bpe_ranks(
            vocab_bpe_file=str(GPT2_DIR / "vocab.bpe"),
            encoder_json_file=str(GPT2_DIR / "encoder.json"),
        )
    next_id = len(ranks) + 1  # GPT-2's n_vocab counts <|endoftext|>
    for run in [" " * n for n in range(31, 1, -1)] + ["\t" * n for n in range(9, 1, -1)]:
        ranks[run.encode()] = next_id
        next_id += 1
    names = FIM_NAMES + [f"<dummy_{n}>" for n in range(4)] + ["<sep>", "<eom>"]
    names += [f"<mask_{n}>" for n in range(881, 0, -1)]
    specials = {"<|endoftext|>": 50256} | {name: next_id + i for i, name in enumerate(names)}
    return tiktoken.Encoding("codegen25", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=specials)


@pytest.fixture(scope="session")
def stdlib_texts() -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    if len(files) < 300:
        pytest.skip(f"too few stdlib sources under {root}")
    chosen = random.Random(311).sample(files, 300)
    return [p.read_text(encoding="utf-8", errors="replace") for p in chosen]


@pytest.fixture(scope="session")
def humaneval_prompts() -> list[str]:
    path = SHARED_DATA / "HumanEval.jsonl.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line)["prompt"] for line in lines if line.strip()]


def random_whitespace_strings(count: int = 3000) -> list[str]:
    """Strings where whitespace runs meet every other character class."""
    rng = random.Random(2500)
    units = [
        " ",
        "\t",
        "\n",
        "\r",
        "\r\n",
        "\u00a0",
        "\u3000",
        "\u0085",
        "\x1c",
        "\u2028",
        "a",
        "Z",
        "é",
        "中",
        "🙂",
        "1",
        "²",
        "'",
        "s",
        "ll",
        "_",
        ".",
        "(",
        "#",
        "<",
        ">",
        "<sep>",
        "<mask_1>",
        "<|endoftext|>",
    ]
    weights = [30, 12, 6, 2, 2, 1, 1, 1, 1, 1] + [2] * 16 + [1, 1, 1]
    return ["".join(rng.choices(units, weights, k=rng.randint(0, 48))) for _ in range(count)]


def assert_same_ids(
    strings: Iterable[str], expected: Callable[[str], list[int]], actual: Callable[[str], list[int]]
) -> None:
    checked = 0
    for text in strings:
        want, got = expected(text), actual(text)
        assert got == want, f"first differing string: {text!r}\n expected {want}\n got      {got}"
        checked += 1
    assert checked, "nothing was compared"


def tiktoken_ids(encoding) -> Callable[[str], list[int]]:
    """tiktoken's encode(allowed_special="all"), as CodeGen2.5 calls it.

    That call costs ~0.25 ms of set conversion for 905 specials, too slow for
    80,000 lines; text without "<" cannot hold a special (all start with it),
    and for such text encode_ordinary is the same function.
    """

    def encode(text: str) -> list[int]:
        if "<" in text:
            return encoding.encode(text, allowed_special="all")
        return encoding.encode_ordinary(text)

    return encode
