"""Hostile completions are contained: each is a failed sample, the run finishes, nothing outside changes.

They run in the OS sandbox (tests/test_sandbox_escape.py attacks it in earnest); the reasons below are what
the sandbox answers each with.

They are checked one by one through `check`, then together through the runner (the real thread pool, results
file and pass@k; the completions are handed in where the model's would be), and once through the whole CLI
with a deterministic model (tests/bigram.py) whose infill never ends.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from localcoder.evaluate.datasets import BENCHMARKS, load_tasks
from localcoder.evaluate.execution import check
from localcoder.evaluate.results import ResultsFile
from localcoder.evaluate.runner import EvalRequest, score, summarize
from tests.bigram import bigram_model
from tests.helpers import assert_no_connection

pytestmark = pytest.mark.usefixtures("os_sandbox")
TASK = load_tasks("humaneval", 1)[0]  # has_close_elements(numbers, threshold) -> bool; completions are its body


def hostile(outside: Path, port: int) -> dict[str, str]:
    """Function bodies for HumanEval/0, each returning a plausible answer after its attack."""
    return {
        "infinite loop": "    while True:\n        pass\n",
        "fork bomb": "    import os\n    while True:\n        os.fork()\n",
        "memory hog": "    hog = bytearray(8 << 30)\n    return len(hog) > 0\n",
        "write outside": f"    open({str(outside)!r}, 'w').write('escaped')\n    return False\n",
        "delete the working directory and its parent": (
            "    import os, shutil\n    here = os.getcwd()\n    shutil.rmtree(here)\n"
            "    shutil.rmtree(os.path.dirname(here))\n    return False\n"
        ),
        "socket": f"    import socket\n    socket.create_connection(('127.0.0.1', {port}), 1)\n    return False\n",
        "exit before the tests": "    import sys\n    sys.exit(0)\n",
        "os._exit before the tests": "    import os\n    os._exit(0)\n",
    }


@pytest.fixture
def sandbox_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Programs get their working directories under a parent this test owns, holding a canary file."""
    parent = tmp_path / "sandboxes"
    parent.mkdir()
    (parent / "canary.txt").write_text("alive")
    monkeypatch.setattr(tempfile, "tempdir", str(parent))
    return parent


def assert_nothing_changed(parent: Path, outside: Path, listener: socket.socket) -> None:
    assert not outside.exists()
    assert_no_connection(listener)
    assert (parent / "canary.txt").read_text() == "alive"
    assert sorted(p.name for p in parent.iterdir()) == ["canary.txt"]  # every working directory was removed


EXPECTED_REASONS = {
    "infinite loop": "timed out after 3 s",
    "fork bomb": "PermissionError",  # the seccomp filter: no new processes
    "memory hog": "memory limit",
    "write outside": "FileNotFoundError",  # the test's directory does not exist in the sandbox
    "delete the working directory and its parent": "Read-only file system",  # its own /tmp, then the root
    "socket": "Address family not supported",  # the seccomp filter: no socket but a Unix one
    "exit before the tests": "exited before the tests finished",
    "os._exit before the tests": "exited before the tests finished",
}


def test_each_hostile_completion_fails_and_is_contained(tmp_path, listener, sandbox_parent) -> None:
    outside = tmp_path / "escaped.txt"
    for name, completion in hostile(outside, listener.getsockname()[1]).items():
        started = time.monotonic()
        outcome = check(TASK, completion)
        assert not outcome.passed, name
        assert EXPECTED_REASONS[name] in outcome.reason, (name, outcome.reason)
        assert time.monotonic() - started < 15, name
    assert_nothing_changed(sandbox_parent, outside, listener)


def test_a_run_of_hostile_completions_finishes_and_records_each(tmp_path, listener, sandbox_parent) -> None:
    outside = tmp_path / "escaped.txt"
    completions = list(hostile(outside, listener.getsockname()[1]).values())
    n = len(completions)
    humaneval = BENCHMARKS["humaneval"]
    out = tmp_path / "hostile.jsonl"
    with ResultsFile(out, {"benchmark": "humaneval"}) as results:
        done = score(humaneval, [TASK], n, lambda task, sample: completions[sample], results, workers=2)
        assert done == n
    records = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    assert sorted(r["sample"] for r in records) == list(range(n))
    assert not any(r["passed"] for r in records)
    assert {r["completion"] for r in records} == set(completions)
    assert_nothing_changed(sandbox_parent, outside, listener)

    request = EvalRequest("humaneval", Path("injected.gguf"), samples=n, ks=(1, n), out=out)
    summary = summarize(humaneval, request, [TASK], ResultsFile(out, {"benchmark": "humaneval"}), 0, 1.0)
    assert summary.pass_at_k == {"pass@1": 0.0, f"pass@{n}": 0.0} and summary.samples == n


def test_a_model_whose_program_hangs_is_a_failed_sample_and_the_run_finishes(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    # The same infill for the first four tasks: in the fourth (a statement inside the innermost loop of
    # has_close_elements) it loops forever when the tests call the function; in the others it breaks the indentation.
    hang = "                while True: pass\n"
    model = bigram_model(tmp_path / "bigram", hang)
    out = tmp_path / "hang.jsonl"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "localcoder", "eval", "infill-single", "--limit", "4", "-t", "0",
         "--model", str(model), "--out", str(out), "--json"],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pass_at_k"] == {"pass@1": 0.0}
    records = {r["task_id"]: r for r in map(json.loads, out.read_text().splitlines()[1:])}
    assert len(records) == 4 and all(r["completion"] == hang and not r["passed"] for r in records.values())
    assert records["SingleLineInfilling/HumanEval/0/L3"]["reason"] == "timed out after 3 s"
    assert time.monotonic() - started < 60
