"""The benchmark data shipped in the package: byte-identical to ../shared/data, readable as package resources."""

from __future__ import annotations

import hashlib
import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

import pytest

from localcoder.evaluate.datasets import BENCHMARKS, CodeTask, MultiTurnTask, load_tasks
from tests.references import SHARED_DATA

SHIPPED = resources.files("localcoder.evaluate").joinpath("data")
COPIES = [
    "HumanEval.jsonl.gz",
    "HumanEval-SingleLineInfilling.jsonl.gz",
    "HumanEval-MultiLineInfilling.jsonl.gz",
    "HumanEval-RandomSpanInfilling.jsonl.gz",
    "HumanEval-RandomSpanInfillingLight.jsonl.gz",
    "mtpb.jsonl",
    "HumanEval.LICENSE",
    "HumanEval-Infilling.LICENSE",
    "mtpb.LICENSE",
    "mtpb.README.md",
]


@pytest.mark.parametrize("name", COPIES)
def test_shipped_copy_is_byte_identical_to_the_shared_data(name: str) -> None:
    source = SHARED_DATA / name
    if not source.is_file():
        pytest.skip(f"{source} is not here")
    shipped = SHIPPED.joinpath(name).read_bytes()
    assert hashlib.sha256(shipped).hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()


def test_sources_lists_every_data_file_with_its_hash() -> None:
    sources = SHIPPED.joinpath("SOURCES.md").read_text(encoding="utf-8")
    for name in COPIES[:6]:
        digest = hashlib.sha256(SHIPPED.joinpath(name).read_bytes()).hexdigest()
        assert f"`{name}`" in sources and digest in sources
    assert "gpt2" not in sources.lower()


def test_every_data_file_is_package_data() -> None:
    """The benchmarks' data and eval kld's corpus ship in the wheel: each file matches a package-data glob."""
    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = root / "localcoder" / "evaluate"
    files = [p.relative_to(package).as_posix() for folder in ("data", "corpus") for p in (package / folder).iterdir()]
    assert len(files) > 10 and any(f.startswith("corpus/") for f in files)
    assert [f for f in files if not any(fnmatch(f, g) for g in globs["localcoder.evaluate"])] == []


@pytest.mark.parametrize(
    "name, count",
    [
        ("humaneval", 164),
        ("infill-single", 1033),
        ("infill-multi", 5815),
        ("infill-span", 1640),
        ("infill-span-light", 164),
        ("mtpb", 575),
    ],
)
def test_task_counts(name: str, count: int) -> None:
    tasks = load_tasks(name)
    assert len(tasks) == count
    assert len({task.task_id for task in tasks}) == count
    assert load_tasks(name, limit=3) == tasks[:3]


def test_humaneval_tasks_have_an_empty_suffix_and_infill_tasks_a_gap() -> None:
    first = load_tasks("humaneval", 1)[0]
    assert isinstance(first, CodeTask) and first.task_id == "HumanEval/0" and first.suffix == ""
    infill = load_tasks("infill-single", 1)[0]
    assert infill.task_id == "SingleLineInfilling/HumanEval/0/L0"
    assert infill.canonical_solution == "    for idx, elem in enumerate(numbers):\n" and infill.suffix


def test_mtpb_tasks_are_one_per_problem_and_input() -> None:
    tasks = load_tasks("mtpb")
    first = tasks[0]
    assert isinstance(first, MultiTurnTask) and first.task_id == "MTPB/1/0"
    assert first.instructions[0] == 'Assign the string "abcde" to a variable named "my_string".'
    assert first.expected == ["a", "b", "c", "d", "e"] and first.max_tokens == 128
    problem_57 = [task for task in tasks if task.problem_id == "57"]
    assert [task.expected for task in problem_57] == [1, 5, 1, 2, 10010]  # the file's sixth output has no input
    assert {task.max_tokens for task in tasks if task.problem_id == "40"} == {256}  # no max_gen_length
    assert sorted({task.max_tokens for task in tasks}) == [128, 256, 512]


def test_benchmark_time_limits() -> None:
    assert {name: b.seconds for name, b in BENCHMARKS.items()} == {
        "humaneval": 3.0,
        "infill-single": 3.0,
        "infill-multi": 3.0,
        "infill-span": 3.0,
        "infill-span-light": 3.0,
        "mtpb": 20.0,
    }
