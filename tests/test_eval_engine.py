"""`eval --engine`: the same greedy samples through an engine process as in-process, and an engine that goes
down midway stops the run with one line, keeps what is done, and a rerun resumes (tests/engine_standin.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_convert_errors import assert_one_line_error
from tests.test_engine import engine
from tests.test_eval_cli import lines_of, run_eval, summary_of

pytest.importorskip("llama_cpp")
pytestmark = pytest.mark.usefixtures("os_sandbox")

GREEDY = ("humaneval", "--limit", "1", "-n", "3", "-k", "1", "--max-tokens", "12", "--temperature", "0", "--json")


def completions(path: Path) -> dict[tuple[str, int], str]:
    return {(r["task_id"], r["sample"]): r["completion"] for r in lines_of(path)[1:]}


def test_eval_through_an_engine_matches_in_process_and_resumes(tiny_f32_gguf: Path, tmp_path: Path) -> None:
    here = tmp_path / "here.jsonl"
    summary_of(run_eval(*GREEDY, "--model", tiny_f32_gguf, "--out", here))
    there = tmp_path / "there.jsonl"
    with engine(tiny_f32_gguf, "once") as url:  # answers one completion, then its process is gone
        broken = run_eval(*GREEDY, "--model", tiny_f32_gguf, "--out", there, "--engine", url)
    assert broken.returncode != 0 and "not reachable" in broken.stderr and "rerun to resume" in broken.stderr
    assert_one_line_error(broken)
    assert len(completions(there)) == 1  # the failed request is not recorded as a failed sample
    with engine(tiny_f32_gguf, "ids") as url:
        summary = summary_of(run_eval(*GREEDY, "--model", tiny_f32_gguf, "--out", there, "--engine", url))
    assert summary["samples"] == 3 and summary["new_samples"] == 2
    assert completions(there) == completions(here)
    mixed = run_eval(*GREEDY, "--model", tiny_f32_gguf, "--out", here, "--engine", url)
    assert mixed.returncode != 0 and "another configuration" in mixed.stderr  # backends are not mixed silently
