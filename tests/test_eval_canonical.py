"""The benchmarks' own solutions, scored by the real runner, executor and sandbox (only the model is left out).

Every canonical solution passes: pass@1 = 100% on HumanEval and all four infilling sets. Multi-line infilling has
5,815 tasks, about four minutes here, so by default it runs every tenth task of each problem (676 tasks, all 164
problems); LOCALCODER_EVAL_FULL=1 runs them all (all pass too).

An empty completion fails every HumanEval and random-span-light task. It is not 0% everywhere: where the removed
line or span is redundant for the tests (a `break` in a loop that ends anyway, an initialisation the code redoes,
a comment) or is empty or whitespace, the program passes without it. Those tasks are listed below, found by
running an empty completion on every task of each set; by default the tests check the same kind of sample (every
tenth task of each problem) against them, and LOCALCODER_EVAL_FULL=1 checks every task.
"""

from __future__ import annotations

import os

import pytest

from localcoder.evaluate.datasets import BENCHMARKS, Task, load_tasks
from localcoder.evaluate.passk import pass_at_k
from localcoder.evaluate.results import ResultsFile
from localcoder.evaluate.runner import score

pytestmark = pytest.mark.usefixtures("os_sandbox")  # every program runs in the OS sandbox, as eval runs it
FULL = os.environ.get("LOCALCODER_EVAL_FULL") == "1"

# Tasks an empty completion passes, over the whole of each set.
EMPTY_PASSES = {
    "infill-single": {
        f"SingleLineInfilling/HumanEval/{task}"
        for task in (
            "20/L0 20/L8 33/L0 46/L6 66/L0 68/L0 81/L16 92/L4 95/L8 95/L18 96/L6 99/L3 105/L6 105/L7 109/L3"
            " 111/L7 118/L5 124/L1 124/L6 124/L10 127/L3 127/L5 127/L6 127/L8 129/L1 129/L9 150/L5"
        ).split()
    },
    "infill-span": {
        f"RandomSpanInfilling/HumanEval/{task}"
        for task in (
            "7/10 10/3 11/7 15/7 23/5 28/8 35/4 35/10 41/1 48/6 52/7 53/3 66/8 78/8 90/3 95/4 97/5 105/8 106/6"
            " 121/7 124/2 124/3 126/4 127/9 134/1 148/7 152/8 159/9 162/5 163/9"
        ).split()
    },
    "infill-multi": {
        f"MultiLineInfilling/HumanEval/{task}"
        for task in (
            "10/L0_L1 20/L0_L0 20/L8_L8 33/L0_L0 46/L1_L2 46/L6_L6 59/L1_L2 66/L0_L0 68/L0_L0 76/L0_L1 81/L6_L7"
            " 81/L14_L15 81/L14_L17 81/L15_L16 81/L16_L16 81/L16_L17 89/L5_L6 92/L4_L4 95/L8_L8 95/L14_L15"
            " 95/L18_L18 95/L18_L20 95/L19_L20 96/L6_L6 99/L2_L5 99/L3_L3 99/L15_L16 101/L0_L1 105/L6_L6"
            " 105/L6_L7 105/L7_L7 109/L3_L3 111/L7_L7 118/L0_L1 118/L5_L5 124/L1_L1 124/L5_L6 124/L6_L6"
            " 124/L6_L7 124/L9_L10 124/L10_L10 124/L10_L11 127/L2_L6 127/L3_L3 127/L3_L4 127/L3_L5 127/L3_L7"
            " 127/L5_L5 127/L5_L7 127/L5_L8 127/L6_L6 127/L8_L8 129/L1_L1 129/L9_L9 150/L5_L5"
        ).split()
    },
}


def scored(name: str, tasks: list[Task], completion_of) -> dict[str, bool]:
    results = ResultsFile(None, {})
    done = score(BENCHMARKS[name], tasks, 1, lambda task, sample: completion_of(task), results, workers=2)
    assert done == len(tasks)
    return {task_id: record.passed for (task_id, _), record in results.records.items()}


def every_tenth(tasks: list[Task]) -> list[Task]:
    """The 1st, 11th, 21st, ... task of each HumanEval problem: a deterministic sample that covers all 164."""
    by_problem: dict[str, list[Task]] = {}
    for task in tasks:
        by_problem.setdefault(task.task_id.split("/")[2], []).append(task)
    return [task for problem in by_problem.values() for task in problem[::10]]


@pytest.mark.parametrize("name", ["humaneval", "infill-single", "infill-span", "infill-span-light", "infill-multi"])
def test_canonical_solutions_pass_every_task(name: str) -> None:
    tasks = load_tasks(name)
    if name == "infill-multi" and not FULL:
        tasks = every_tenth(tasks)
        assert len(tasks) == 676 and len({task.task_id.split("/")[2] for task in tasks}) == 164
    passed = scored(name, tasks, lambda task: task.canonical_solution)
    failed = sorted(task_id for task_id, ok in passed.items() if not ok)
    assert failed == []
    assert sum(pass_at_k(1, int(ok), 1) for ok in passed.values()) / len(passed) == 1.0


@pytest.mark.parametrize("name", ["humaneval", "infill-span-light"])
def test_an_empty_completion_fails_every_task(name: str) -> None:
    passed = scored(name, load_tasks(name), lambda task: "")
    assert len(passed) == 164 and not any(passed.values())


@pytest.mark.parametrize("name", ["infill-single", "infill-span", "infill-multi"])
def test_an_empty_completion_passes_only_where_the_gap_is_redundant(name: str) -> None:
    tasks = load_tasks(name) if FULL else every_tenth(load_tasks(name))
    passed = scored(name, tasks, lambda task: "")
    expected = EMPTY_PASSES[name] & {task.task_id for task in tasks}
    assert {task_id for task_id, ok in passed.items() if ok} == expected
    assert sum(passed.values()) < len(tasks) * 0.05
