"""The pure core of multi-turn program synthesis, as the MTPB benchmark does it.

A base model is not asked questions: each instruction is written into the
program as a comment, the model continues the program from there, and its
sample, cut to one step, becomes part of the program the next turn sees.
Everything here is plain text; no model is called.

The rules follow CodeGen's MTPB sampler (salesforce/CodeGen,
``codegen1/benchmark/mtpb_sample.py``: ``wrap``, ``truncate`` and
``sample_completions``):

- the program starts with ``MTPB_PREAMBLE``;
- each turn appends ``"# " + instruction + "\\n"``, then the truncated sample
  followed by ``"\\n\\n"``;
- instruction templates are filled with ``str.format(**inputs)``, so a value
  appears as ``str(value)`` (a string without quotes, a list as its repr) and
  ``{{``/``}}`` become literal braces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from localcoder.errors import LocalcoderError

COMMENT_PREFIX: dict[str, str] = {
    "python": "# ",
    "ruby": "# ",
    "shell": "# ",
    "perl": "# ",
    "r": "# ",
    "javascript": "// ",
    "typescript": "// ",
    "c": "// ",
    "cpp": "// ",
    "csharp": "// ",
    "java": "// ",
    "kotlin": "// ",
    "scala": "// ",
    "swift": "// ",
    "go": "// ",
    "rust": "// ",
    "php": "// ",
    "lua": "-- ",
    "sql": "-- ",
    "haskell": "-- ",
}
"""How a line comment starts in each language; the instruction follows it."""

MTPB_PREAMBLE = "# Import libraries.\n\nimport numpy as np\n\n"
"""The text every MTPB program starts with (a Python program)."""

TURN_SEPARATOR = "\n\n"
"""Appended after each turn's code, as MTPB appends ``sample + "\\n\\n"``."""

_END_OF_TEXT = "<|endoftext|>"


def comment_prefix(lang: str) -> str:
    try:
        return COMMENT_PREFIX[lang]
    except KeyError:
        known = ", ".join(sorted(COMMENT_PREFIX))
        raise LocalcoderError(f"unknown language {lang!r} for chat; known: {known}") from None


def default_preamble(lang: str) -> str:
    """MTPB's preamble imports numpy, which only makes sense for Python."""
    return MTPB_PREAMBLE if lang == "python" else ""


def turn_prompt(instruction: str, lang: str = "python") -> str:
    """The comment one instruction adds to the program: ``"# {instruction}\\n"`` in Python.

    A multi-line instruction has each line commented, except continuation lines
    that are comments already: MTPB problem 17 writes its examples as
    ``"...odd: \\n# str(4) = 4\\n# ..."`` and MTPB's own ``f"# {prompt}\\n"``
    leaves them alone, so this matches MTPB on all 115 problems.
    """
    prefix = comment_prefix(lang)
    marker = prefix.rstrip()
    first, *rest = instruction.split("\n")
    lines = [prefix + first]
    for line in rest:
        if line.startswith(marker):
            lines.append(line)
        else:
            lines.append(prefix + line if line else marker)
    return "\n".join(lines) + "\n"


def truncate_turn(sample: str, lang: str = "python") -> str:
    """Cut a sample to one turn's code, as MTPB's ``truncate`` does.

    1. If two or more lines start with ``print``, keep what comes before the
       second of them.
    2. Then, in what is left, if two or more lines start with ``def``, keep what
       comes before the second of them.
    3. Then cut at the earliest of: a line starting with the comment marker
       (``^#`` in Python), ``<|endoftext|>``, a line starting with ``'''``, a
       line starting with ``\"\"\"``, or ``\\n\\n\\n``.

    "Starts with" is a plain prefix (``printf``, ``default`` count) at column 0
    only, and the first line counts as a line. ``print`` and ``def`` lines are
    counted separately, not together: ``def f(): ...`` followed by one ``print``
    line keeps both (steps 1 and 2 amount to cutting at the earlier of the
    second ``print`` and the second ``def``, so their order does not matter).

    For other languages the comment marker is that language's (``^//``,
    ``^--``); the ``print``/``def`` and docstring rules are MTPB's Python
    rules, kept unchanged so the behaviour stays predictable.
    """
    for keyword in ("print", "def"):
        starts = [m.start() for m in re.finditer(f"^{keyword}", sample, re.MULTILINE)]
        if len(starts) > 1:
            sample = sample[: starts[1]]
    marker = re.escape(comment_prefix(lang).rstrip())
    terminals = (f"^{marker}", re.escape(_END_OF_TEXT), "^'''", '^"""', "\n\n\n")
    cuts = [m.start() for pattern in terminals if (m := re.search(pattern, sample, re.MULTILINE))]
    return sample[: min(cuts)] if cuts else sample


@dataclass(frozen=True)
class Turn:
    instruction: str
    code: str
    """The model's sample after ``truncate_turn``, or the user's edit of it."""


@dataclass
class Program:
    """The conversation so far, which is also the program: preamble, then per turn comment + code."""

    lang: str = "python"
    turns: list[Turn] = field(default_factory=list)

    def text(self, preamble: str | None = None) -> str:
        """The whole program; ``preamble`` defaults to ``default_preamble(lang)``."""
        if preamble is None:
            preamble = default_preamble(self.lang)
        parts = [preamble]
        for turn in self.turns:
            parts += [turn_prompt(turn.instruction, self.lang), turn.code, TURN_SEPARATOR]
        return "".join(parts)

    def prompt_for(self, instruction: str, preamble: str | None = None) -> str:
        """What the model continues from for a new instruction: the program so far plus its comment."""
        return self.text(preamble) + turn_prompt(instruction, self.lang)

    def add(self, instruction: str, code: str) -> Turn:
        turn = Turn(instruction, code)
        self.turns.append(turn)
        return turn

    def undo(self) -> Turn | None:
        """Drop the last turn and return it; None when there is nothing to undo."""
        return self.turns.pop() if self.turns else None

    def replace_last(self, code: str) -> Turn:
        """Put other code (a new sample, the user's edit) in place of the last turn's."""
        if not self.turns:
            raise LocalcoderError("no turn to replace yet")
        self.turns[-1] = Turn(self.turns[-1].instruction, code)
        return self.turns[-1]


def mtpb_problem_prompts(problem: dict, input_index: int) -> list[str]:
    """The problem's instructions for one of its test inputs, filled exactly as MTPB fills them.

    MTPB calls ``template.format(**inputs)``: values appear as ``str(value)`` and
    doubled braces (problems 9, 11, 12, 46, 50) become single literal braces.
    """
    inputs = problem["inputs"][input_index]
    return [template.format(**inputs) for template in problem["prompts"]]
