"""Where a completion ends: the scope rules, the suffix-repeat rule, and a streamer that never takes text back.

The model stops at its own sentinel, but an infill model happily writes past
the statement or block the user asked for, and often re-types the code that
already follows the cursor. Cutting is done here on plain text, so the same
rules serve the streamed and the non-streamed output.

Rules, in order:

1. ``line``: the completion ends before its first newline.
2. ``block``: ``base`` is the cursor line's indentation, plus the completion's
   own leading whitespace when the cursor sits in the indentation (so on an
   empty line at column 0 the model's ``"    "`` counts). The completion ends
   at the first later line that is non-blank and indented less than ``base``,
   or at a non-blank line after blank lines that is indented less than the
   last non-blank line before them. The newline and blank lines before the
   cut go too: the cursor line's own newline is already in the suffix.
   Indentation is the length of the leading run of spaces and tabs, so a tab
   counts as one column and mixed tabs/spaces are compared by length only.
3. ``full``: no scope cut.
4. Always: a tail that repeats the start of the suffix (compared with its
   first 2,000 characters) is dropped, unless that tail is whitespace only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from localcoder.errors import LocalcoderError

if TYPE_CHECKING:
    from localcoder.completion.generate import TextCut

Scope = Literal["line", "block", "full"]
SCOPES: tuple[Scope, ...] = ("line", "block", "full")


def check_scope(name: str) -> Scope:
    """`name` when it is a scope, else the one-line error every front end shows."""
    if name not in SCOPES:
        raise LocalcoderError(f"scope must be line, block or full, not {name!r}")
    return name  # type: ignore[return-value]

SUFFIX_WINDOW = 2000
"""How much of the suffix the repeat rule looks at: a repeat longer than this is not worth the comparisons."""


@dataclass(frozen=True)
class CursorContext:
    """What the truncation rules need to know about the cursor."""

    line_before: str
    """Text of the cursor line before the cursor, e.g. ``"    "`` or ``"    x = foo("``."""
    suffix: str
    """File text after the cursor; starts with ``"\\n"`` when the cursor is at the end of its line."""


@dataclass(frozen=True)
class Cut:
    text: str
    """The completion to show or insert."""
    stopped: bool
    """A scope rule cut the text, so generating more tokens is wasted work."""


def default_scope(ctx: CursorContext) -> Scope:
    """'block' on an otherwise empty line (the user wants new statements), else 'line' (finish this one)."""
    rest_of_line = ctx.suffix.split("\n", 1)[0]
    if _is_blank(ctx.line_before) and _is_blank(rest_of_line):
        return "block"
    return "line"


def truncate(generated: str, scope: Scope, ctx: CursorContext, final: bool = True) -> Cut:
    """Apply the scope rules and then the suffix-repeat rule to the generated text.

    With ``final=False`` more text may follow, so the suffix-repeat rule (which
    depends on where the text ends) is not applied. Scope cuts need no such
    care: one is only found at a line whose first non-blank character has
    arrived, and no later text can move or undo it.
    """
    scan = _scan(generated, scope, ctx)
    text = generated if scan.cut is None else generated[: scan.cut]
    if final:
        text = text[: len(text) - _repeated_tail(text, ctx.suffix[:SUFFIX_WINDOW])]
    return Cut(text, stopped=scan.cut is not None)


class StreamingTruncator:
    """Feed generated text chunks; get back the text that is safe to print now.

    Printed text is never taken back: ``feed`` only returns text that every
    possible continuation keeps, and ``finish`` returns the rest, so the
    printed text always equals ``truncate(all_generated, scope, ctx).text``.
    """

    def __init__(self, scope: Scope, ctx: CursorContext) -> None:
        self._scope = scope
        self._ctx = ctx
        self._suffix = ctx.suffix[:SUFFIX_WINDOW]
        self._generated = ""
        self._text = ""
        self._stopped = False
        self._finished = False

    @property
    def stopped(self) -> bool:
        """A scope rule has cut the completion: the caller can stop generating."""
        return self._stopped

    @property
    def text(self) -> str:
        """Everything returned by ``feed`` and ``finish`` so far."""
        return self._text

    def feed(self, chunk: str) -> str:
        """Take the next generated chunk; return the newly safe text ('' if none).

        After a cut this returns the rest of the result up to the cut and sets
        ``stopped``; later chunks are ignored.
        """
        if self._stopped or self._finished:
            return ""
        self._generated += chunk
        generated = self._generated
        scan = _scan(generated, self._scope, self._ctx)
        if scan.cut is not None:
            # The cut is certain, so the final result is known now.
            self._stopped = True
            return self._emit_until(truncate(generated, self._scope, self._ctx).text)
        # The result is either generated[: scan.settled] (a scope cut at the
        # undecided line) or extends the whole generated text; the repeat rule
        # can drop a tail from either, so hold back both candidate tails.
        settled = scan.settled
        safe = min(
            settled - _repeated_tail(generated[:settled], self._suffix, whitespace_counts=True),
            len(generated) - _repeated_tail(generated, self._suffix, whitespace_counts=True),
        )
        return self._emit_until(generated[:safe])

    def finish(self) -> str:
        """Generation has ended (sentinel, token limit or cut): return the rest of the final result."""
        if self._finished:
            return ""
        self._finished = True
        return self._emit_until(truncate(self._generated, self._scope, self._ctx).text)

    def _emit_until(self, result_prefix: str) -> str:
        """Return what ``result_prefix`` adds to the text already printed (nothing if it adds nothing)."""
        if len(result_prefix) <= len(self._text):
            return ""
        new = result_prefix[len(self._text) :]
        self._text = result_prefix
        return new


@dataclass(frozen=True)
class _Scan:
    cut: int | None
    """End of the kept text when a scope rule has (certainly) cut, else None."""
    settled: int
    """``generated[:settled]`` survives any scope cut that text still to come could cause."""


def _scan(generated: str, scope: Scope, ctx: CursorContext) -> _Scan:
    """Find the scope cut; a cut is only ever reported once no later text can move or undo it."""
    if scope == "full":
        return _Scan(None, len(generated))
    if scope == "line":
        newline = generated.find("\n")
        return _Scan(None, len(generated)) if newline < 0 else _Scan(newline, newline)
    if scope == "block":
        return _scan_block(generated, ctx)
    raise ValueError(f"unknown scope {scope!r}: expected 'line', 'block' or 'full'")


def _scan_block(generated: str, ctx: CursorContext) -> _Scan:
    lines = generated.split("\n")
    first = lines[0]
    base = _indent(ctx.line_before)
    # Leading whitespace is indentation only when the cursor is itself in the
    # indentation; after "foo(" it is just spacing. A blank first line says
    # nothing about where the model means to indent.
    if _is_blank(ctx.line_before) and not _is_blank(first):
        base += _indent(first)
    head_blank = _is_blank(ctx.line_before + first)
    last_indent: int | None = None if head_blank else base
    # The cut never reaches into the cursor line: that text is the user's line.
    kept_end = len(first)
    after_blank = False
    start = len(first) + 1
    for number, line in enumerate(lines[1:], start=1):
        if _is_blank(line):
            if number == len(lines) - 1:
                # Whitespace so far: this line may yet turn out to be a dedent. At
                # the end of generation it is just a blank line, so no cut either way.
                return _Scan(None, kept_end)
            after_blank = True
        else:
            indent = _indent(line)
            dedent_after_blank = after_blank and last_indent is not None and indent < last_indent
            if indent < base or dedent_after_blank:
                return _Scan(kept_end, kept_end)
            last_indent = indent
            after_blank = False
            kept_end = start + len(line)
        start += len(line) + 1
    return _Scan(None, len(generated))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _is_blank(line: str) -> bool:
    return not line.strip()


def _repeated_tail(text: str, suffix: str, whitespace_counts: bool = False) -> int:
    """Length of the longest tail of ``text`` that is also a start of ``suffix``.

    A whitespace-only repeat is reported as 0 unless ``whitespace_counts``: the
    final rule keeps it, but the streamer must still hold it back because more
    text could turn it into a real repeat.
    """
    if not text or not suffix:
        return 0
    # Only positions holding the suffix's first character can start a repeat.
    position = text.find(suffix[0], max(0, len(text) - len(suffix)))
    while position >= 0:
        tail = text[position:]
        if suffix.startswith(tail):
            if whitespace_counts or tail.strip():
                return len(tail)
            return 0
        position = text.find(suffix[0], position + 1)
    return 0


class StopStrings:
    """Cuts streamed text at the first of some stop strings, holding back only what could still become one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = stops
        self._pending = ""
        self.text = ""
        self.stopped = False

    def feed(self, chunk: str) -> str:
        if self.stopped:
            return ""
        self._pending += chunk
        cuts = [i for i in (self._pending.find(s) for s in self._stops) if i >= 0]
        if cuts:
            self.stopped = True
            ready, self._pending = self._pending[: min(cuts)], ""
            return self._emit(ready)
        hold = max((k for s in self._stops for k in range(1, len(s)) if self._pending.endswith(s[:k])), default=0)
        ready = self._pending[: len(self._pending) - hold]
        self._pending = self._pending[len(ready) :]
        return self._emit(ready)

    def finish(self) -> str:
        ready, self._pending = self._pending, ""
        return self._emit(ready)

    def _emit(self, text: str) -> str:
        self.text += text
        return text


class IndentFloor:
    """llama-server's n_indent: the completion stops at the first later line indented less than `floor`."""

    def __init__(self, floor: int) -> None:
        self._floor = floor
        self._first_line = True
        self._judged = False  # the current (later) line is indented enough: its characters pass
        self._pending = ""  # the current line's leading whitespace, held until its first other character
        self.text = ""
        self.stopped = False

    def feed(self, chunk: str) -> str:
        out: list[str] = []
        for char in chunk:
            if self.stopped:
                break
            if self._first_line or self._judged:
                out.append(char)
            else:
                self._pending += char
                if char == "\n" or not char.isspace():
                    if char != "\n" and len(self._pending) - 1 < self._floor:
                        self.stopped = True
                        break
                    out.append(self._pending)
                    self._pending = ""
                    self._judged = char != "\n"
            if char == "\n":
                self._first_line = self._judged = False
        ready = "".join(out)
        self.text += ready
        return ready

    def finish(self) -> str:
        ready, self._pending = ("" if self.stopped else self._pending), ""
        self.text += ready
        return ready


class Chained:
    """Cuts applied one after the other: what the first lets out goes into the next."""

    def __init__(self, *cuts: TextCut) -> None:
        self._cuts = cuts

    @property
    def stopped(self) -> bool:
        return any(cut.stopped for cut in self._cuts)

    @property
    def text(self) -> str:
        return self._cuts[-1].text  # type: ignore[attr-defined]

    def feed(self, chunk: str) -> str:
        for cut in self._cuts:
            chunk = cut.feed(chunk)
        return chunk

    def finish(self) -> str:
        chunk = ""
        for cut in self._cuts:
            chunk = cut.feed(chunk) + cut.finish() if chunk else cut.finish()
        return chunk


class Deadline:
    """llama-server's t_max_predict_ms: once `ms` have passed since the first text and a line is complete, stop."""

    def __init__(self, ms: float) -> None:
        self._seconds = ms / 1000
        self._started: float | None = None
        self.text = ""
        self.stopped = False

    def feed(self, chunk: str) -> str:
        if self.stopped:
            return ""
        now = time.monotonic()
        self._started = self._started if self._started is not None else now
        self.text += chunk
        if "\n" in self.text and now - self._started > self._seconds:
            self.stopped = True
        return chunk

    def finish(self) -> str:
        return ""
