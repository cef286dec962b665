"""HumanEval's tests, run in localcoder's own process against the completion's function in the sandbox.

The tests (`check(candidate)` from the dataset) and the helpers they call (HumanEval/32's `poly`, /38's
`encode_cyclic`, /50's `encode_shift`: from the problem's HumanEval prompt, which every infilling task of the
problem shares) run here, with a `candidate` whose calls cross to the program (oracle.py says why and how). So
the program cannot change a test, a helper or an assert, cannot read an expected value, and cannot end the run
with a pass: only its function's answers come from it. The names the tests may call are the dataset's code,
which localcoder ships (data/SOURCES.md), never the model's.

A test that calls the function by its own name (HumanEval/33 calls `sort_third`) reaches the program too.
A value that is not a plain literal (an object with its own __eq__, a generator) fails the call, with its type.
"""

from __future__ import annotations

import ast
import builtins
import functools
import json
import re
from dataclasses import dataclass

from localcoder.evaluate.datasets import CodeTask, load_tasks
from localcoder.evaluate.oracle import REPLY, literal
from localcoder.sandbox import Channel


class ProgramGone(Exception):
    """The program ended (or its time ran out) before it answered: its run says why."""


class NotPlain(Exception):
    """The function returned something that is not a plain value."""


@dataclass
class Verdict:
    passed: bool = False
    reason: str | None = None  # why the tests failed here; None when the program's run says why (it ended)


@functools.cache
def _humaneval_prompts() -> dict[str, str]:
    return {task.task_id: task.prompt for task in load_tasks("humaneval")}


def helpers_source(task: CodeTask) -> str:
    """The code the tests may call besides the function: the HumanEval prompt of the task's problem."""
    found = re.search(r"HumanEval/\d+", task.task_id)
    if found and found.group(0) in _humaneval_prompts():
        return _humaneval_prompts()[found.group(0)]
    try:  # a task of its own (not one of HumanEval's 164 problems): its prompt, where it stands alone
        ast.parse(task.prompt)
        return task.prompt
    except SyntaxError:
        return ""


@functools.cache
def _compiled_tests(task: CodeTask):
    return compile(helpers_source(task) + "\n\n" + task.test, f"<tests of {task.task_id}>", "exec")


class RemoteFunction:
    """The completion's function, called through the conversation with its program."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def _next(self) -> list:
        while (line := self.channel.receive()) is not None:
            text = line.decode("utf-8", errors="replace")
            if text.startswith(REPLY):  # anything else is the program's own output
                try:
                    message = json.loads(text[len(REPLY) :])
                except ValueError:
                    raise NotPlain("an unreadable reply") from None
                if isinstance(message, list) and message and isinstance(message[0], str):
                    return message
                raise NotPlain("an unreadable reply")
        raise ProgramGone

    def ready(self) -> bool:
        try:
            return self._next()[0] == "ready"
        except (ProgramGone, NotPlain):
            return False

    def __call__(self, *args, **kwargs):
        if not self.channel.send(repr((args, kwargs)).encode()):
            raise ProgramGone
        kind, *rest = self._next()
        if kind == "returned" and rest:
            try:
                return literal(str(rest[0]))
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                raise NotPlain("a value that is not a plain literal") from None
        if kind == "raised" and len(rest) == 2:
            raise _exception(str(rest[0]), str(rest[1]))
        raise NotPlain(f"a {rest[0] if rest else 'value'}, not a plain value")


def _exception(name: str, message: str) -> Exception:
    """The program's exception, as the same built-in exception here where there is one."""
    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(message)
        except Exception:  # a built-in whose constructor wants other arguments (UnicodeDecodeError)
            pass
    return RuntimeError(f"{name}: {message}")


def run_tests(task: CodeTask, channel: Channel, verdict: Verdict) -> None:
    """The conversation: wait for the program's function, then run the task's tests against it."""
    function = RemoteFunction(channel)
    if not function.ready():
        return
    namespace: dict = {"__name__": "__localcoder_tests__"}
    try:
        exec(_compiled_tests(task), namespace)
        namespace[task.entry_point] = function
        namespace["check"](function)
    except ProgramGone:
        return
    except NotPlain as exc:
        verdict.reason = f"returned {exc}"
    except MemoryError:
        verdict.reason = "memory limit"
    except Exception as exc:
        verdict.reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    else:
        verdict.passed = True
