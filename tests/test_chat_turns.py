"""Multi-turn program synthesis: turn prompts, truncation and program text match MTPB's sampler text for text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from localcoder.chat.turns import (
    MTPB_PREAMBLE,
    Program,
    Turn,
    mtpb_problem_prompts,
    truncate_turn,
    turn_prompt,
)
from localcoder.errors import LocalcoderError

MTPB_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "mtpb.jsonl"
# A {name} that is not part of a doubled {{ or }}.
PLACEHOLDER = re.compile(r"(?<!\{)\{(\w+)\}(?!\})")


def load_problems() -> dict[str, dict]:
    if not MTPB_PATH.exists():
        pytest.skip(f"MTPB data not found at {MTPB_PATH}")
    with MTPB_PATH.open() as f:
        return {problem["id"]: problem for problem in map(json.loads, f)}


def fill_by_hand(template: str, inputs: dict) -> str:
    """The README's rule written out independently: value as str(), doubled braces become literal braces."""
    filled = PLACEHOLDER.sub(lambda m: str(inputs[m[1]]), template)
    return filled.replace("{{", "{").replace("}}", "}")


# (id, raw sample, expected turn code)
TRUNCATE_CASES: list[tuple[str, str, str]] = [
    ("two-defs", "def f():\n    return 1\n\ndef g():\n    return 2\n", "def f():\n    return 1\n\n"),
    ("two-prints", "x = 1\nprint(x)\nprint(x + 1)\n", "x = 1\nprint(x)\n"),
    ("def-then-print-kept", "def f():\n    return 1\nprint(f())\n", "def f():\n    return 1\nprint(f())\n"),
    (
        "prints-cut-before-defs",
        "def f():\n    return 1\nprint(f())\ndef g():\n    return 2\nprint(g())\n",
        "def f():\n    return 1\nprint(f())\n",
    ),
    ("indented-prints-not-counted", "def f():\n    print(1)\n    print(2)\n", "def f():\n    print(1)\n    print(2)\n"),
    ("print-is-a-prefix-not-a-word", "printf = 1\nprint(printf)\n", "printf = 1\n"),
    ("first-line-counts", "print(1)\nprint(2)", "print(1)\n"),
    ("comment-line", "x = 1\n# Next step\ny = 2\n", "x = 1\n"),
    ("comment-at-start", "# note\nx = 1", ""),
    ("inline-comment-kept", "x = 1  # one\ny = 2", "x = 1  # one\ny = 2"),
    ("indented-comment-kept", "def f():\n    # body\n    return 1\n", "def f():\n    # body\n    return 1\n"),
    ("endoftext-line", "x = 1\n<|endoftext|>garbage", "x = 1\n"),
    ("endoftext-mid-line", "x = 1<|endoftext|>", "x = 1"),
    ("single-quote-docstring", "x = 1\n'''\ndoc\n'''\n", "x = 1\n"),
    ("double-quote-docstring", 'x = 1\n"""doc"""\ny = 2\n', "x = 1\n"),
    ("indented-docstring-kept", 'def f():\n    """Doc."""\n    return 1\n', 'def f():\n    """Doc."""\n    return 1\n'),
    ("triple-newline", "x = 1\n\n\ny = 2", "x = 1"),
    ("double-newline-kept", "x = 1\n\ny = 2", "x = 1\n\ny = 2"),
    (
        "reference-self-test",
        "\nif len_a > len_b:\n    result = a\nelse:\n    result = b\n\n\n\n#",
        "\nif len_a > len_b:\n    result = a\nelse:\n    result = b",
    ),
    ("earliest-terminal-newlines", "x = 1\n\n\n# c\n<|endoftext|>", "x = 1"),
    ("earliest-terminal-comment", "x = 1\n# c\n\n\n", "x = 1\n"),
    ("print-cut-then-comment", "print(1)\n# two\nprint(2)\n", "print(1)\n"),
    ("none-of-these", "x = 1\ny = 2\n", "x = 1\ny = 2\n"),
    ("empty", "", ""),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in TRUNCATE_CASES], ids=[c[0] for c in TRUNCATE_CASES])
def test_truncate_turn_python(raw: str, expected: str) -> None:
    assert truncate_turn(raw) == expected


# (id, lang, raw sample, expected turn code)
TRUNCATE_LANG_CASES: list[tuple[str, str, str, str]] = [
    ("js-comment-line", "javascript", "let x = 1;\n// next\nlet y = 2;", "let x = 1;\n"),
    ("js-hash-not-a-comment", "javascript", "let x = 1;\n# not js\n", "let x = 1;\n# not js\n"),
    ("js-endoftext", "javascript", "let x = 1;<|endoftext|>", "let x = 1;"),
    ("shell-comment-line", "shell", "ls\n# next\npwd\n", "ls\n"),
    ("lua-comment-line", "lua", "x = 1\n-- next\n", "x = 1\n"),
]


@pytest.mark.parametrize(
    ("lang", "raw", "expected"), [c[1:] for c in TRUNCATE_LANG_CASES], ids=[c[0] for c in TRUNCATE_LANG_CASES]
)
def test_truncate_turn_other_languages(lang: str, raw: str, expected: str) -> None:
    assert truncate_turn(raw, lang) == expected


# (id, instruction, lang, expected)
TURN_PROMPT_CASES: list[tuple[str, str, str, str]] = [
    ("python", "Sort the list.", "python", "# Sort the list.\n"),
    ("multi-line", "Sort the list.\nThen print it.", "python", "# Sort the list.\n# Then print it.\n"),
    ("already-commented-continuation", "Odd:\n# str(4) = 4", "python", "# Odd:\n# str(4) = 4\n"),
    ("empty-continuation-line", "A.\n\nB.", "python", "# A.\n#\n# B.\n"),
    ("javascript", "Sort the list.", "javascript", "// Sort the list.\n"),
    ("javascript-multi-line", "A.\n// B.\nC.", "javascript", "// A.\n// B.\n// C.\n"),
    ("ruby", "Sort it.", "ruby", "# Sort it.\n"),
]


@pytest.mark.parametrize(
    ("instruction", "lang", "expected"), [c[1:] for c in TURN_PROMPT_CASES], ids=[c[0] for c in TURN_PROMPT_CASES]
)
def test_turn_prompt(instruction: str, lang: str, expected: str) -> None:
    assert turn_prompt(instruction, lang) == expected


def test_unknown_language_is_a_user_error() -> None:
    with pytest.raises(LocalcoderError, match="cobol"):
        turn_prompt("x", "cobol")


# Problems with one-line turns, doubled braces (9, 12, 46) and an instruction with embedded comment lines (17).
HISTORY_PROBLEMS = ["1", "3", "9", "12", "17", "46", "115"]


@pytest.mark.parametrize("problem_id", HISTORY_PROBLEMS)
def test_history_matches_mtpb_format(problem_id: str) -> None:
    problem = load_problems()[problem_id]
    for input_index, inputs in enumerate(problem["inputs"]):
        program = Program()
        expected = "# Import libraries.\n\nimport numpy as np\n\n"
        for turn, instruction in enumerate(mtpb_problem_prompts(problem, input_index)):
            template = problem["prompts"][turn]
            expected += "# " + fill_by_hand(template, inputs) + "\n"
            assert program.prompt_for(instruction) == expected
            raw = f"x{turn} = {turn}\nprint(x{turn})\nprint('again')\n# Next step\n"
            program.add(instruction, truncate_turn(raw))
            expected += f"x{turn} = {turn}\nprint(x{turn})\n" + "\n\n"
            assert program.text() == expected
        assert program.text(MTPB_PREAMBLE) == expected


def test_all_placeholders_filled() -> None:
    problems = load_problems()
    assert len(problems) == 115
    for problem in problems.values():
        assert len(problem["inputs"]) == 5
        for input_index, inputs in enumerate(problem["inputs"]):
            filled = mtpb_problem_prompts(problem, input_index)
            assert len(filled) == len(problem["prompts"])
            for template, text in zip(problem["prompts"], filled, strict=True):
                assert set(PLACEHOLDER.findall(template)) <= set(inputs), (problem["id"], template)
                assert text == fill_by_hand(template, inputs), (problem["id"], template)
                if "{{" not in template and not any("{" in str(value) for value in inputs.values()):
                    assert "{" not in text and "}" not in text, (problem["id"], text)


def test_values_substituted_as_str() -> None:
    problem = {
        "prompts": ['Assign "{A}" to a.', "Use {n} and {xs}.", "Format {{:.1f}}."],
        "inputs": [{"A": "abc", "n": 2.5, "xs": [1, "b"]}],
    }
    assert mtpb_problem_prompts(problem, 0) == ['Assign "abc" to a.', "Use 2.5 and [1, 'b'].", "Format {:.1f}."]


def test_program_undo_replace_last_and_text() -> None:
    program = Program()
    assert program.undo() is None
    with pytest.raises(LocalcoderError):
        program.replace_last("x = 1")
    program.add("Set x.", "x = 1")
    program.add("Print x.", "print(x)")
    assert program.text() == MTPB_PREAMBLE + "# Set x.\nx = 1\n\n# Print x.\nprint(x)\n\n"
    assert program.replace_last("print(x * 2)") == Turn("Print x.", "print(x * 2)")
    assert program.text("") == "# Set x.\nx = 1\n\n# Print x.\nprint(x * 2)\n\n"
    assert program.undo() == Turn("Print x.", "print(x * 2)")
    assert program.prompt_for("Double x.", "") == "# Set x.\nx = 1\n\n# Double x.\n"
    assert program.undo() == Turn("Set x.", "x = 1")
    assert program.undo() is None
    assert program.text() == MTPB_PREAMBLE


def test_non_python_program_has_no_numpy_preamble() -> None:
    program = Program(lang="javascript")
    program.add("Set x.", "let x = 1;")
    assert program.text() == "// Set x.\nlet x = 1;\n\n"
    assert program.prompt_for("Log x.") == "// Set x.\nlet x = 1;\n\n// Log x.\n"
