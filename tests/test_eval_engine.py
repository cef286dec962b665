"""`eval --engine`: the same greedy samples through the real llama_cpp.server as in-process, at concurrency 1
and 4; an engine that goes down midway (tests/engine_standin.py) stops the run with one line, keeps what is
done, and a rerun resumes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, lines_of, run_eval, summary_of
from tests.llama_server import engine, free_port, llama_cpp_server

pytest.importorskip("llama_cpp")
pytestmark = pytest.mark.usefixtures("os_sandbox")

GREEDY = ("humaneval", "--limit", "1", "-n", "3", "-k", "1", "--max-tokens", "12", "--temperature", "0", "--json")
# Three tasks, so that samples handed back out of order would land on the wrong task.
WIDER = ("humaneval", "--limit", "3", "-n", "2", "-k", "1", "--max-tokens", "12", "--temperature", "0", "--json")


@pytest.fixture(scope="module")
def server(tiny_f32_gguf: Path) -> Iterator[str]:
    with llama_cpp_server(tiny_f32_gguf) as url:
        yield url


def completions(path: Path) -> dict[tuple[str, int], str]:
    return {(r["task_id"], r["sample"]): r["completion"] for r in lines_of(path)[1:]}


def test_eval_through_an_engine_matches_in_process_and_resumes(
    tiny_f32_gguf: Path, server: str, tmp_path: Path
) -> None:
    here = tmp_path / "here.jsonl"
    summary_of(run_eval(*GREEDY, "--model", tiny_f32_gguf, "--out", here))
    there = tmp_path / "there.jsonl"
    with engine(tiny_f32_gguf, "once") as url:  # answers one completion, then its process is gone
        broken = run_eval(*GREEDY, "--model", tiny_f32_gguf, "--out", there, "--engine", url)
    # Gone before the next connection ("not reachable") or after the kernel accepted it ("closed ... midway"):
    # which one depends on how fast the process exits, and both are the engine going away.
    assert broken.returncode != 0 and "rerun to resume" in broken.stderr
    assert "not reachable" in broken.stderr or "midway" in broken.stderr
    assert_one_line_error(broken)
    assert len(completions(there)) == 1  # the failed request is not recorded as a failed sample
    summary = summary_of(run_eval(*GREEDY, "--model", tiny_f32_gguf, "--out", there, "--engine", server))
    assert summary["samples"] == 3 and summary["new_samples"] == 2
    assert completions(there) == completions(here)
    mixed = run_eval(*GREEDY, "--model", tiny_f32_gguf, "--out", here, "--engine", server)
    assert mixed.returncode != 0 and "another configuration" in mixed.stderr  # backends are not mixed silently


def test_concurrency_4_gives_the_samples_of_concurrency_1(tiny_f32_gguf: Path, server: str, tmp_path: Path) -> None:
    here = tmp_path / "here.jsonl"
    summary_of(run_eval(*WIDER, "--model", tiny_f32_gguf, "--out", here))
    one, four = tmp_path / "one.jsonl", tmp_path / "four.jsonl"
    summary_of(run_eval(*WIDER, "--model", tiny_f32_gguf, "--out", one, "--engine", server, "-c", "1"))
    summary = summary_of(run_eval(*WIDER, "--model", tiny_f32_gguf, "--out", four, "--engine", server, "-c", "4"))
    assert summary["samples"] == summary["new_samples"] == 6
    assert completions(four) == completions(one) == completions(here)
    assert len(set(completions(one).values())) == 3  # negative control: each task's completion is its own
    assert len(lines_of(four)) == 7  # the config line and each sample once


def test_concurrency_needs_an_engine(tiny_f32_gguf: Path) -> None:
    refused = run_eval(*GREEDY, "--model", tiny_f32_gguf, "--concurrency", "2")
    assert refused.returncode != 0 and "needs --engine" in refused.stderr
    assert_one_line_error(refused)


def test_engine_down_with_requests_in_flight_is_one_line(tiny_f32_gguf: Path, tmp_path: Path) -> None:
    """Four requests fail at once: one error line, and none of them is recorded as a failed sample."""
    out = tmp_path / "down.jsonl"
    nowhere = f"http://127.0.0.1:{free_port()}"
    down = run_eval(*WIDER, "--model", tiny_f32_gguf, "--out", out, "--engine", nowhere, "-c", "4")
    assert down.returncode != 0 and "not reachable" in down.stderr and "0 samples are in" in down.stderr
    assert_one_line_error(down)
    assert not out.exists() or completions(out) == {}
