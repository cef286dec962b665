"""Where completions end, and that streaming prints exactly the final result without taking text back."""

from __future__ import annotations

import random

import pytest

from localcoder.completion.truncate import CursorContext, Scope, StreamingTruncator, default_scope, truncate

IN_FUNCTION = "\n    return x\n"
AFTER_FUNCTION = "\n\ndef g():\n    pass\n"

# (id, scope, line_before, suffix, generated, expected text, expected stopped)
CASES: list[tuple[str, Scope, str, str, str, str, bool]] = [
    ("line-cuts-at-newline", "line", "    x = ", "\n", "foo(1)\n    y = 2\n", "foo(1)", True),
    ("line-no-newline-keeps-all", "line", "    x = ", "\n", "foo(1)", "foo(1)", False),
    ("line-leading-newline-gives-nothing", "line", "x = ", "\n", "\nfoo", "", True),
    (
        "block-dedent-below-cursor",
        "block",
        "    ",
        IN_FUNCTION,
        "y = 1\n    z = 2\nprint(z)\n",
        "y = 1\n    z = 2",
        True,
    ),
    (
        "block-blank-line-then-dedent",
        "block",
        "    ",
        IN_FUNCTION,
        "if y:\n        z()\n\n    w()\n",
        "if y:\n        z()",
        True,
    ),
    (
        "block-nested-blocks-continue",
        "block",
        "    ",
        "\n",
        "for i in r:\n        if i:\n            go(i)\n    done()",
        "for i in r:\n        if i:\n            go(i)\n    done()",
        False,
    ),
    (
        "block-blank-line-same-indent-continues",
        "block",
        "    ",
        "\n",
        "a = 1\n\n    b = 2",
        "a = 1\n\n    b = 2",
        False,
    ),
    (
        "block-top-level-keeps-column-0-statements",
        "block",
        "",
        "\n",
        "import os\nx = 1\n\ny = 2",
        "import os\nx = 1\n\ny = 2",
        False,
    ),
    (
        "block-top-level-stops-at-next-def",
        "block",
        "",
        "\n",
        "def f():\n    return 1\n\n\ndef g():\n    pass\n",
        "def f():\n    return 1",
        True,
    ),
    (
        "block-model-supplies-indentation",
        "block",
        "",
        "\n\ndef h():\n    pass\n",
        "    x = 1\n    return x\ndef g():\n",
        "    x = 1\n    return x",
        True,
    ),
    (
        "block-model-indentation-blank-then-dedent",
        "block",
        "",
        "\n",
        "    x = 1\n\n\ndef g():\n",
        "    x = 1",
        True,
    ),
    ("block-tabs", "block", "\t", "\n", "x = 1\n\ty = 2\nz = 3\n", "x = 1\n\ty = 2", True),
    ("block-tab-vs-spaces-by-length", "block", "\t", "\n", "x = 1\n  y = 2\n", "x = 1\n  y = 2\n", False),
    ("block-spaces-then-tab-dedent", "block", "    ", "\n", "x = 1\n\ty = 2\n", "x = 1", True),
    ("block-whitespace-line-is-not-a-dedent", "block", "    ", "\n", "x = 1\n  \n    y", "x = 1\n  \n    y", False),
    ("block-cut-keeps-cursor-line", "block", "    ", "\n", "\nfoo()", "", True),
    (
        "block-after-code-on-cursor-line",
        "block",
        "    x = foo(",
        "\n",
        "a,\n        b)\n    y = 1\nz",
        "a,\n        b)\n    y = 1",
        True,
    ),
    (
        "block-spacing-after-code-is-not-indentation",
        "block",
        "    x = foo(",
        "\n",
        "  a,\n    b)\nz",
        "  a,\n    b)",
        True,
    ),
    ("block-blank-first-line-adds-no-indent", "block", "    ", "\n", "  \n    y = 1\nz", "  \n    y = 1", True),
    ("full-keeps-all", "full", "    ", "\n", "x = 1\nprint(x)\n\ndef g():\n", "x = 1\nprint(x)\n\ndef g():\n", False),
    ("repeat-closing-paren", "line", "    x = foo(", ")\n", "a, b)", "a, b", False),
    ("repeat-closing-paren-then-newline", "line", "    x = foo(", ")\n", "a, b)\n    y = 2", "a, b", True),
    ("repeat-multi-line", "block", "    ", IN_FUNCTION, "x = 1\n    return x", "x = 1", False),
    ("repeat-whole-suffix", "block", "    ", IN_FUNCTION, "x = 1\n    return x\n", "x = 1", False),
    ("repeat-after-block-cut", "block", "    ", IN_FUNCTION, "x = 1\n    return x\ndef g", "x = 1", True),
    ("repeat-whitespace-only-kept", "full", "    ", "\n    return x\n", "x = 1\n", "x = 1\n", False),
    ("repeat-none", "line", "    x = foo(", ")\n", "a, b", "a, b", False),
    ("repeat-not-at-the-end", "line", "    x = foo(", ")\n", "a) + (b", "a) + (b", False),
    ("repeat-longest-wins", "full", "", "ab\nab\n", "x ab\nab", "x ", False),
]


def ctx(line_before: str, suffix: str) -> CursorContext:
    return CursorContext(line_before=line_before, suffix=suffix)


def stream(generated: str, chunks: list[str], scope: Scope, context: CursorContext) -> tuple[str, StreamingTruncator]:
    """Feed the chunks and finish, checking at each step that printed text is never taken back."""
    final = truncate(generated, scope, context).text
    truncator = StreamingTruncator(scope, context)
    printed = ""
    for chunk in chunks:
        before_stop = truncator.stopped
        piece = truncator.feed(chunk)
        if before_stop:
            assert piece == "", "text printed after the stop"
        printed += piece
        assert printed == truncator.text
        assert final.startswith(printed), f"printed {printed!r}, but the final result is {final!r}"
    printed += truncator.finish()
    assert truncator.finish() == ""
    assert printed == truncator.text
    return printed, truncator


@pytest.mark.parametrize(
    ("scope", "line_before", "suffix", "generated", "expected", "stopped"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_truncate(scope: Scope, line_before: str, suffix: str, generated: str, expected: str, stopped: bool) -> None:
    cut = truncate(generated, scope, ctx(line_before, suffix))
    assert cut.text == expected
    assert cut.stopped is stopped


@pytest.mark.parametrize(
    ("scope", "line_before", "suffix", "generated", "expected", "stopped"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_streaming_matches_final_for_every_split(
    scope: Scope, line_before: str, suffix: str, generated: str, expected: str, stopped: bool
) -> None:
    context = ctx(line_before, suffix)
    one_char_chunks = list(generated)
    printed, truncator = stream(generated, one_char_chunks, scope, context)
    assert printed == expected
    assert truncator.stopped is stopped
    rng = random.Random(generated)
    for _ in range(20):
        printed, _truncator = stream(generated, random_split(rng, generated), scope, context)
        assert printed == expected


@pytest.mark.parametrize(
    ("scope", "line_before", "suffix", "chunks", "printed_after_each"),
    [
        # Plain text on the first line is printed at once.
        ("line", "x = ", "\n", ["foo", "(1", ")"], ["foo", "(1", ")"]),
        # A possible repeat of the suffix is held back, then released when it diverges.
        ("line", "x = foo(", ")\n", ["a", ")", " + b"], ["a", "", ") + b"]),
        # Block: the newline and the next line's indentation wait until the indentation ends.
        ("block", "    ", "\n", ["x = 1", "\n", "    ", "y", "\n"], ["x = 1", "", "", "\n    y", ""]),
        # A newline that could start a repeat of the suffix waits, although a newline alone is never dropped.
        ("full", "", "\n    return x\n", ["x = 1", "\n", "    ret", "urn x"], ["x = 1", "", "", ""]),
        ("full", "", "\n    return x\n", ["x = 1", "\n", "    y"], ["x = 1", "", "\n    y"]),
        # Blank lines wait until the following line shows it is not a dedent.
        ("block", "", "\n", ["def f():\n    a()\n", "\n", "    b()"], ["def f():\n    a()", "", "\n\n    b()"]),
        # The dedent arrives: the rest up to the cut comes out and the truncator stops.
        ("block", "    ", "\n", ["x = 1\n", "d", "ef g():"], ["x = 1", "", ""]),
    ],
)
def test_feed_prints_as_early_as_it_is_safe(
    scope: Scope, line_before: str, suffix: str, chunks: list[str], printed_after_each: list[str]
) -> None:
    truncator = StreamingTruncator(scope, ctx(line_before, suffix))
    assert [truncator.feed(chunk) for chunk in chunks] == printed_after_each


def test_stopped_truncator_ignores_more_text() -> None:
    truncator = StreamingTruncator("line", ctx("x = ", "\n"))
    assert truncator.feed("1\n") == "1"
    assert truncator.stopped
    assert truncator.feed("more text\n") == ""
    assert truncator.finish() == ""
    assert truncator.text == "1"


def test_truncate_not_final_reports_only_certain_cuts() -> None:
    context = ctx("    ", "\n")
    # A line of whitespace may still become a dedent or stay in the block.
    assert truncate("x = 1\n  ", "block", context, final=False) == truncate("x = 1\n  ", "block", context)
    assert not truncate("x = 1\n  ", "block", context, final=False).stopped
    # Once its first character arrives, the dedent is certain.
    assert truncate("x = 1\n  y", "block", context, final=False).stopped
    # The suffix-repeat rule waits for the end of the text.
    assert truncate("a)", "line", ctx("f(", ")\n"), final=False).text == "a)"


def test_suffix_repeat_looks_at_first_2000_characters_only() -> None:
    far = "x" * 2000 + ")"
    assert truncate("a" + far, "full", ctx("", far)).text == "a" + far
    near = "x" * 1999
    assert truncate("a" + near, "full", ctx("", near + ")")).text == "a"


def test_unknown_scope_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        truncate("x", "word", ctx("", ""))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line_before", "suffix", "scope"),
    [
        ("", "\n", "block"),
        ("    ", "\n    return x\n", "block"),
        ("\t", "  \t\nfoo", "block"),
        ("    ", "", "block"),
        ("    x = ", "\n", "line"),
        ("    ", "foo()\n", "line"),
        ("", "x", "line"),
    ],
)
def test_default_scope(line_before: str, suffix: str, scope: Scope) -> None:
    assert default_scope(ctx(line_before, suffix)) == scope


ALPHABET = ["\n", "\n", "    ", "\t", "x", "return", ")", "(", " ", "def f():", "  "]
LINES_BEFORE = ["", "    ", "\t", "        ", "    x = foo(", "x"]
SUFFIXES = ["", "\n", ")\n", "\n    return x\n", "\n\ndef g():\n    pass\n", "    x\n", "\n\n", "x)\n(", " )\n"]
SCOPES: list[Scope] = ["line", "block", "full"]


def random_split(rng: random.Random, text: str) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), rng.randint(0, min(6, max(0, len(text) - 1))))) if text else []
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def test_random_streaming_equals_final() -> None:
    """Random text, context and chunking: printed text is never taken back and ends as the final result."""
    rng = random.Random(20240611)
    for _ in range(3000):
        generated = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 14)))
        scope = rng.choice(SCOPES)
        context = ctx(rng.choice(LINES_BEFORE), rng.choice(SUFFIXES))
        final = truncate(generated, scope, context)
        printed, truncator = stream(generated, random_split(rng, generated), scope, context)
        assert printed == final.text, (generated, scope, context)
        assert truncator.stopped is final.stopped
        # A cut reported before the end is the cut of the whole text: later text cannot undo it.
        for end in range(len(generated) + 1):
            partial = truncate(generated[:end], scope, context, final=False)
            if partial.stopped:
                assert final.stopped
                assert truncate(generated[:end], scope, context).text == final.text
                break


def test_stop_strings_stream_the_text_up_to_the_first_stop_however_it_is_chunked() -> None:
    from localcoder.completion.truncate import StopStrings

    stops = ("\ndef", "\nclass", "\n#")
    cases = ["    return x\n\ndef g():\n    pass", "a = 1\n#x\nclass A", "no stop here\n", "x\nde", "\nclass"]
    rng = random.Random(5)
    for text in cases:
        cuts = [i for i in (text.find(s) for s in stops) if i >= 0]
        expected = text[: min(cuts)] if cuts else text
        for _ in range(30):
            scanner, streamed, position = StopStrings(stops), "", 0
            while position < len(text) and not scanner.stopped:
                step = rng.randint(1, 4)
                streamed += scanner.feed(text[position : position + step])
                position += step
                assert expected.startswith(streamed)  # nothing printed is ever taken back
            streamed += scanner.finish()
            assert streamed == scanner.text == expected
            assert scanner.stopped == bool(cuts)
