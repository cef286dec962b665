"""File names as they are shown or put into a prompt: one line, read as they are, never as layout.

A repository decides its file names, and a name may hold a newline (which would forge a header line in `context`
output, or end the prompt's `# path` comment and put the rest of the name into the code the model reads), a
terminal escape, or a bidirectional override (U+202E shows `exe.py` for `yp.exe`). Wherever a name is printed,
logged or put into a prompt it goes through `shown_name`: every control character (C0, C1, DEL), line and
paragraph separator, bidirectional format character and lone surrogate (a name that is not UTF-8) becomes a
visible `\\xNN` or `\\uNNNN` escape. Ordinary names, with spaces or letters of any script, are unchanged. JSON
output keeps the true name (its decoded value) and writes these characters as JSON escapes (render.to_json).
"""

from __future__ import annotations

import re

# Bidirectional formatting: ALM, LRM, RLM, LRE..RLO, LRI..PDI; and the line and paragraph separators.
BIDI_AND_SEPARATORS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_UNSHOWABLE = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_AND_SEPARATORS}\ud800-\udfff]")


def escape_char(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown_name(name: str) -> str:
    """`name` on one line with nothing in it that a terminal, an editor or a model reads as layout."""
    return _UNSHOWABLE.sub(lambda match: escape_char(match.group()), name)


__all__ = ["BIDI_AND_SEPARATORS", "escape_char", "shown_name"]
