"""Text for the terminal: user text (paths, file contents, program output) shown as text, never as escape
sequences or markup, and the sizes shown beside it. Below the renderers (render.py) and the REPL (chat/repl.py),
which both use it; imports nothing of localcoder but names.py."""

from __future__ import annotations

import re

from rich.console import Console
from rich.text import Text

from localcoder.names import BIDI_AND_SEPARATORS, escape_char

# C0 and C1 control characters other than tab and newline: ESC starts ANSI/OSC sequences that would move the
# cursor, retitle the terminal or hide text, so program output shows them as \x.. escapes; bidirectional format
# characters as \u.... (they reorder what is shown). File names go through names.shown_name (newlines too).
_CONTROLS = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_AND_SEPARATORS}]")


def escape_controls(text: str) -> str:
    """`text` with every control character but tab and newline written as a visible \\xNN escape."""
    return _CONTROLS.sub(lambda match: escape_char(match.group()), text)


def plain(value: object, style: str = "") -> Text:
    """User text (a path, file contents, program output) as Rich text: no markup, no emoji codes, no escapes."""
    return Text(escape_controls(str(value)), style=style)


def print_untrusted(console: Console, text: str, style: str = "", cut_at: int | None = None) -> None:
    """Print text a program or a file produced exactly as text; `cut_at` (bytes) notes output cut at that limit."""
    console.print(plain(text, style), soft_wrap=True, highlight=False)
    if cut_at is not None and len(text.encode("utf-8", "surrogateescape")) >= cut_at:
        console.print(plain(f"[output cut at {cut_at:,} bytes; the rest was not kept]", "dim"))


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"


def human_count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)
