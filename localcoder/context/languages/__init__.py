"""Repository context for the languages besides Python, on tree-sitter: one module per language, each a `Resolver`.

`definitions.py` finds top-level definitions with each grammar; `base.py` holds what the languages share (imports
-> files -> definitions -> candidates ranked by use near the cursor); typescript.py (TS, TSX, JS and its module
flavours), go.py, rust.py, java.py and c.py (C and C++) resolve their language's imports. A language registers only
when its grammar wheel imports, so one missing grammar leaves that language on identifier windows.
"""

from __future__ import annotations

import importlib

from localcoder.context.resolver import register

LANGUAGES = {  # module -> the grammars it needs
    "typescript": ("typescript", "tsx", "javascript"),
    "go": ("go",),
    "rust": ("rust",),
    "java": ("java",),
    "c": ("c", "cpp"),
}


def load() -> None:
    """Register every language whose grammars are installed."""
    try:
        from localcoder.context.languages.definitions import parser_for
    except ImportError:  # tree-sitter itself is missing: every language but Python keeps windows
        return
    for module, grammars in LANGUAGES.items():
        if all(parser_for(g) is not None for g in grammars):
            language = importlib.import_module(f"localcoder.context.languages.{module}").LANGUAGE
            register(language)
