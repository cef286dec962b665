"""One completion per (task, sample), through the same prompt and truncation code as `complete` and `chat`.

- HumanEval: left to right from the prompt, whatever the model's format, cut at the first of Codex's stop
  sequences (the completion ends where a new top-level statement would start).
- Infilling: the model's own infill format (prompts.build_prompt), prefix = the text before the gap, suffix =
  the text after it, ended by the model's end-of-middle or end-of-text token; no scope cut on top, since the
  benchmark scores what the model writes up to its sentinel.
- MTPB: a chat session (chat.session.ChatSession) started with MTPB's preamble, one turn per instruction, each
  sample cut by MTPB's rules (chat.turns.truncate_turn); the completion is the whole program. ChatSession strips
  each instruction, so the four MTPB instructions that end in a space (problems 58, 59, 102, 103) lose it.

Sample i of every task uses seed + i, so a rerun writes the same completions.
"""

from __future__ import annotations

from dataclasses import replace

from localcoder.chat.session import ChatSession
from localcoder.chat.turns import MTPB_PREAMBLE
from localcoder.completion.generate import Sampling
from localcoder.completion.infill import InfillInput, run
from localcoder.completion.model import LoadedModel
from localcoder.completion.truncate import StopStrings
from localcoder.errors import LocalcoderError
from localcoder.evaluate.datasets import Benchmark, CodeTask, MultiTurnTask, Task

HUMANEVAL_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")


def sampling_for(
    base: Sampling, benchmark: Benchmark, task: Task, sample: int, max_tokens: int | None = None
) -> Sampling:
    """Temperature and top-p from `base`, seed + sample index, and `max_tokens` or else the benchmark's budget
    (MTPB: the problem's max_gen_length, per turn)."""
    if max_tokens is None:
        max_tokens = task.max_tokens if isinstance(task, MultiTurnTask) else benchmark.max_tokens
    return replace(base.offset_seed(sample), max_tokens=max_tokens)


def check_model(model: LoadedModel, benchmark: Benchmark) -> None:
    if benchmark.kind == "infill" and not model.format.infill:
        raise LocalcoderError(
            f"{benchmark.name} needs a model that can infill; {model.path.name} has the {model.format.name}"
            " prompt format (use a CodeGen2 / CodeGen2.5 model, or the humaneval or mtpb benchmark)"
        )


def completion_for(model: LoadedModel, benchmark: Benchmark, task: Task, sampling: Sampling) -> str:
    if isinstance(task, MultiTurnTask):
        return multi_turn_program(model, task, sampling)
    if benchmark.kind == "infill":
        return infill(model, task, sampling)
    return left_to_right(model, task, sampling)


def left_to_right(model: LoadedModel, task: CodeTask, sampling: Sampling) -> str:
    source = InfillInput(task.prompt, layout="cursor", infill=False)
    return run(model, source, sampling, lambda: StopStrings(HUMANEVAL_STOP)).alternatives[0].text


def infill(model: LoadedModel, task: CodeTask, sampling: Sampling) -> str:
    source = InfillInput(task.prompt, task.suffix, layout="cursor")
    return run(model, source, sampling, lambda: StopStrings(())).alternatives[0].text  # no cut: up to <eom>


def multi_turn_program(model: LoadedModel, task: MultiTurnTask, sampling: Sampling) -> str:
    session = ChatSession(model, lang="python", preamble=MTPB_PREAMBLE, sampling=sampling)
    for instruction in task.instructions:
        session.ask(instruction)
    return session.text()
