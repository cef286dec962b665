"""`localcoder eval` end to end: tiny converted models in real llama.cpp, programs in the real sandbox.

The tiny model has random weights, so its scores are near zero; these tests are about the pipeline: the report,
the results file, resuming, and bad input. A deterministic bigram model (tests/bigram.py) that writes the
canonical line of one infilling task shows a pass scored as one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localcoder.chat.turns import MTPB_PREAMBLE
from localcoder.evaluate.datasets import load_tasks
from tests.bigram import bigram_model
from tests.helpers import assert_one_line_error, lines_of, run_eval, summary_of

pytest.importorskip("llama_cpp")
pytestmark = pytest.mark.usefixtures("os_sandbox")  # every eval runs its programs in the OS sandbox


HUMANEVAL = ("humaneval", "--limit", "2", "-n", "2", "-k", "1,2", "--max-tokens", "16")


@pytest.fixture(scope="module")
def humaneval_run(tiny_f32_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("eval") / "he.jsonl"
    result = run_eval(*HUMANEVAL, "--model", tiny_f32_gguf, "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_humaneval_run_reports_pass_at_k_and_streams_every_sample(humaneval_run, tiny_f32_gguf: Path) -> None:
    out, table = humaneval_run
    for column in ("model", "pass@1", "pass@2", "tasks", "samples", tiny_f32_gguf.name):
        assert column in table
    header, *records = lines_of(out)
    assert header["format"] == "localcoder-eval/1"
    assert header["config"]["benchmark"] == "humaneval" and header["config"]["model"] == tiny_f32_gguf.name
    assert sorted((r["task_id"], r["sample"]) for r in records) == [
        ("HumanEval/0", 0),
        ("HumanEval/0", 1),
        ("HumanEval/1", 0),
        ("HumanEval/1", 1),
    ]
    for record in records:
        assert set(record) == {"task_id", "sample", "completion", "passed", "reason", "seconds"}
        assert record["passed"] is False and record["reason"]  # random weights


def test_a_rerun_resumes_without_generating(humaneval_run, tiny_f32_gguf: Path) -> None:
    out, _ = humaneval_run
    before = out.read_bytes()
    summary = summary_of(run_eval(*HUMANEVAL, "--model", tiny_f32_gguf, "--out", out, "--json"))
    assert out.read_bytes() == before
    assert summary["new_samples"] == 0 and summary["samples"] == 4 and summary["tasks"] == 2
    assert set(summary["pass_at_k"]) == {"pass@1", "pass@2"}
    assert summary["pass_at_k"]["pass@1"] == 0.0 and summary["passed"] == 0
    assert summary["benchmark"] == "humaneval" and summary["out"] == str(out)


def test_samples_are_reproducible(humaneval_run, tiny_f32_gguf: Path, tmp_path: Path) -> None:
    out, _ = humaneval_run
    again = tmp_path / "again.jsonl"
    assert run_eval(*HUMANEVAL, "--model", tiny_f32_gguf, "--out", again).returncode == 0
    completions = {(r["task_id"], r["sample"]): r["completion"] for r in lines_of(out)[1:]}
    assert {(r["task_id"], r["sample"]): r["completion"] for r in lines_of(again)[1:]} == completions


def test_a_larger_n_adds_samples_and_a_cut_off_last_line_is_redone(humaneval_run, tiny_f32_gguf, tmp_path) -> None:
    out = tmp_path / "he.jsonl"
    data = humaneval_run[0].read_bytes()
    out.write_bytes(data[: len(data) - 20])  # killed while writing the last record
    summary = summary_of(
        run_eval("humaneval", "--limit", "2", "-n", "3", "-k", "1,3", "--max-tokens", "16", "--model", tiny_f32_gguf,
                 "--out", out, "--json")
    )  # fmt: skip
    assert summary["new_samples"] == 3  # the cut-off record, and sample 2 of both tasks
    assert summary["samples"] == 6 and set(summary["pass_at_k"]) == {"pass@1", "pass@3"}
    records = lines_of(out)[1:]
    assert len(records) == 6 and len({(r["task_id"], r["sample"]) for r in records}) == 6


def test_other_options_do_not_mix_into_a_results_file(humaneval_run, tiny_f32_gguf: Path) -> None:
    out, _ = humaneval_run
    before = out.read_bytes()
    result = run_eval(*HUMANEVAL, "--model", tiny_f32_gguf, "--out", out, "-t", "0.8")
    assert_one_line_error(result, str(out), "temperature 0.2 there, 0.8 now")
    assert out.read_bytes() == before


def test_infill_run(tiny_f32_gguf: Path, tmp_path: Path) -> None:
    out = tmp_path / "infill.jsonl"
    args = ("infill-single", "--limit", "2", "-t", "0", "--max-tokens", "8", "--model", tiny_f32_gguf, "--out", out)
    summary = summary_of(run_eval(*args, "--json"))
    assert summary["tasks"] == 2 and summary["samples"] == 2 and summary["new_samples"] == 2
    assert 0.0 <= summary["pass_at_k"]["pass@1"] <= 1.0
    # one record per task; records are written as their checks finish, which need not be task order
    assert sorted(r["task_id"] for r in lines_of(out)[1:]) == sorted(t.task_id for t in load_tasks("infill-single", 2))


def test_mtpb_run_writes_the_program_turn_by_turn(tiny_f32_gguf: Path, tmp_path: Path) -> None:
    out = tmp_path / "mtpb.jsonl"
    summary = summary_of(
        run_eval("mtpb", "--limit", "1", "--max-tokens", "8", "--model", tiny_f32_gguf, "--out", out, "--json")
    )
    assert summary["tasks"] == 1 and summary["pass_at_k"] == {"pass@1": 0.0}
    (record,) = lines_of(out)[1:]
    assert record["task_id"] == "MTPB/1/0" and not record["passed"]
    program = record["completion"]
    assert program.startswith(MTPB_PREAMBLE)
    comments = [line for line in program.splitlines() if line.startswith("# ")][1:]  # after the preamble's
    assert comments[0] == '# Assign the string "abcde" to a variable named "my_string".'
    assert comments[-1] == "# Print the resulting list of characters."


def test_a_model_that_writes_the_canonical_line_passes(tmp_path: Path) -> None:
    task = load_tasks("infill-single", 1)[0]
    model = bigram_model(tmp_path / "bigram", task.canonical_solution)
    out = tmp_path / "bigram.jsonl"
    summary = summary_of(run_eval("infill-single", "--limit", "1", "-t", "0", "--model", model, "--out", out, "--json"))
    assert summary["pass_at_k"] == {"pass@1": 1.0} and summary["passed"] == 1
    (record,) = lines_of(out)[1:]
    assert record["completion"] == task.canonical_solution and record["reason"] == "passed"


@pytest.mark.parametrize(
    "args, needles",
    [
        (("humaneval-x",), ("unknown benchmark 'humaneval-x'", "infill-single")),
        (("humaneval", "-n", "2", "-k", "1,5"), ("pass@5", "n = 2")),
        (("humaneval", "-k", "1,ten"), ("-k '1,ten'",)),
        (("humaneval", "-n", "0"), ("-n must be at least 1",)),
        (("humaneval", "--limit", "0"), ("--limit must be at least 1",)),
    ],
    ids=["unknown-benchmark", "k-above-n", "bad-k", "zero-n", "zero-limit"],
)
def test_bad_options_fail_in_one_line_before_a_model_is_needed(args, needles, tmp_path: Path) -> None:
    result = run_eval(*args, "--model", tmp_path / "absent.gguf", "--out", tmp_path / "out.jsonl")
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bwrap is the Linux sandbox")
def test_without_an_os_sandbox_eval_refuses_before_loading_a_model(tiny_f32_gguf: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    args = ("humaneval", "--limit", "1", "--max-tokens", "4", "--model", tiny_f32_gguf, "--out", out)
    refused = run_eval(*args, PATH=str(tmp_path))  # no bwrap on it
    assert_one_line_error(refused, "no OS sandbox", "install bubblewrap", "--unsafe-no-sandbox")
    assert not out.exists()
    unsafe = run_eval(*args, "--unsafe-no-sandbox", "--json", PATH=str(tmp_path))
    assert summary_of(unsafe)["samples"] == 1 and len(lines_of(out)) == 2  # header and the sample


def test_out_must_be_a_file(tiny_f32_gguf: Path, tmp_path: Path) -> None:
    assert_one_line_error(run_eval("humaneval", "--model", tiny_f32_gguf, "--out", tmp_path), "is a directory")
    foreign = tmp_path / "notes.jsonl"
    foreign.write_text('{"hello": 1}\n')
    assert_one_line_error(run_eval("humaneval", "--model", tiny_f32_gguf, "--out", foreign), "not a localcoder eval")


def test_infill_needs_a_model_that_can_infill(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from convert.pipeline import ConvertOptions, convert
    from tests.codegen1 import CODEGEN1, save_checkpoint

    checkpoint = save_checkpoint(CODEGEN1, tmp_path / "codegen1")
    model = convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "codegen1.gguf", outtype="f32")).output
    out = tmp_path / "out.jsonl"
    result = run_eval("infill-span-light", "--model", model, "--out", out)
    assert_one_line_error(result, "infill-span-light needs a model that can infill", "left-to-right")
    assert not out.exists()


def test_ctrl_c_keeps_finished_samples_and_the_rerun_resumes(tiny_f32_gguf: Path, tmp_path: Path) -> None:
    out = tmp_path / "he.jsonl"
    args = ["humaneval", "--limit", "8", "--max-tokens", "160", "--model", str(tiny_f32_gguf), "--out", str(out)]
    process = subprocess.Popen(
        [sys.executable, "-m", "localcoder", "eval", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 3):
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert result.returncode == 130
    assert_one_line_error(result, "interrupted", str(out), "run the same command again to resume")
    kept = lines_of(out)[1:]  # every line is whole
    assert 2 <= len(kept) < 8
    summary = summary_of(run_eval(*args, "--json"))
    assert summary["new_samples"] == 8 - len(kept) and summary["samples"] == 8
