"""The benchmarks as data, and their tasks as typed records read from the package's own copies (see data/SOURCES.md).

HumanEval and the four HumanEval-Infilling sets are one kind of task: fill the gap between `prompt` and `suffix`
(HumanEval's suffix is empty). MTPB problems are multi-turn: one task per (problem, test input), because the
instructions are filled with the input's values, so each input is sampled on its own (as CodeGen's mtpb_sample.py
does), and scored by the value the finished program prints last.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from localcoder.chat.turns import mtpb_problem_prompts
from localcoder.errors import LocalcoderError

Kind = Literal["humaneval", "infill", "mtpb"]
MTPB_DEFAULT_MAX_TOKENS = 256  # mtpb_sample.py's default, for the problems without max_gen_length


@dataclass(frozen=True)
class Benchmark:
    name: str
    file: str
    kind: Kind
    seconds: float  # time limit per program
    max_tokens: int  # most new tokens per sample (MTPB: per turn, unless the problem says otherwise)
    description: str


BENCHMARKS: dict[str, Benchmark] = {
    benchmark.name: benchmark
    for benchmark in (
        Benchmark(
            "humaneval", "HumanEval.jsonl.gz", "humaneval", 3.0, 512,
            "HumanEval: 164 Python functions written left to right from signature and docstring",
        ),
        Benchmark(
            "infill-single", "HumanEval-SingleLineInfilling.jsonl.gz", "infill", 3.0, 128,
            "HumanEval single-line infilling: 1,033 tasks, one line of a solution removed",
        ),
        Benchmark(
            "infill-multi", "HumanEval-MultiLineInfilling.jsonl.gz", "infill", 3.0, 256,
            "HumanEval multi-line infilling: 5,815 tasks, a run of whole lines removed",
        ),
        Benchmark(
            "infill-span", "HumanEval-RandomSpanInfilling.jsonl.gz", "infill", 3.0, 256,
            "HumanEval random-span infilling: 1,640 tasks, a random character span removed",
        ),
        Benchmark(
            "infill-span-light", "HumanEval-RandomSpanInfillingLight.jsonl.gz", "infill", 3.0, 256,
            "HumanEval random-span infilling, light: 164 tasks, one span per problem",
        ),
        Benchmark(
            "mtpb", "mtpb.jsonl", "mtpb", 20.0, MTPB_DEFAULT_MAX_TOKENS,
            "Multi-Turn Programming Benchmark: 115 problems x 5 inputs, written turn by turn",
        ),
    )
}  # fmt: skip


@dataclass(frozen=True)
class CodeTask:
    """HumanEval / HumanEval-Infilling: the completion goes between `prompt` and `suffix`."""

    task_id: str
    prompt: str
    suffix: str
    canonical_solution: str
    test: str
    entry_point: str


@dataclass(frozen=True)
class MultiTurnTask:
    """One MTPB problem with one of its test inputs: instructions filled in, the expected last printed value."""

    task_id: str  # "MTPB/<problem id>/<input index>"
    problem_id: str
    name: str
    instructions: tuple[str, ...]
    expected: Any
    max_tokens: int  # per turn: the problem's max_gen_length, else 256


Task = CodeTask | MultiTurnTask


def benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise LocalcoderError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


def load_tasks(name: str, limit: int | None = None) -> list[Task]:
    """The benchmark's tasks in file order (MTPB: problem by problem, input by input); the first `limit` of them."""
    chosen = benchmark(name)
    data = resources.files(__package__).joinpath("data").joinpath(chosen.file).read_bytes()
    if chosen.file.endswith(".gz"):
        data = gzip.decompress(data)
    records = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    tasks: list[Task] = []
    for record in records:
        if chosen.kind == "mtpb":
            tasks += _mtpb_tasks(record)
        else:
            tasks.append(_code_task(record))
    return tasks if limit is None else tasks[:limit]


def _code_task(record: dict[str, Any]) -> CodeTask:
    return CodeTask(
        task_id=record["task_id"],
        prompt=record["prompt"],
        suffix=record.get("suffix", ""),
        canonical_solution=record["canonical_solution"],
        test=record["test"],
        entry_point=record["entry_point"],
    )


def _mtpb_tasks(problem: dict[str, Any]) -> list[MultiTurnTask]:
    # zip, as mtpb_sample.py does: problem 57 lists six outputs for its five inputs, and the sixth is never used.
    return [
        MultiTurnTask(
            task_id=f"MTPB/{problem['id']}/{index}",
            problem_id=problem["id"],
            name=problem["name"],
            instructions=tuple(mtpb_problem_prompts(problem, index)),
            expected=expected,
            max_tokens=problem.get("max_gen_length", MTPB_DEFAULT_MAX_TOKENS),
        )
        for index, (_, expected) in enumerate(zip(problem["inputs"], problem["outputs"], strict=False))
    ]
