"""The language server's settings: one typed object, read from initializationOptions at initialize and again
from workspace/didChangeConfiguration. Editors spell settings as JSON; bad values are one-line errors that
the server shows the user (window/showMessage) while it keeps the settings it had."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from localcoder.completion.generate import SAMPLING_BOUNDS, SEED_MIN, Sampling
from localcoder.completion.prompts import check_layout
from localcoder.completion.truncate import check_scope
from localcoder.errors import LocalcoderError


def json_name(field: str) -> str:
    """The name editors use for a field: camelCase, as LSP settings are (`max_tokens` -> `maxTokens`); one rule
    for every field (jedi-language-server's way), so a new field needs no table entry."""
    first, *rest = field.split("_")
    return first + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True)
class LspOptions:
    model: str | None = None  # a GGUF path or a name in the model directory; None: the usual default chain
    max_tokens: int = 64
    temperature: float = 0.0  # greedy: the same keystrokes give the same ghost text
    top_p: float = 0.95
    seed: int | None = None
    scope: str | None = None  # None: block on a blank line, line mid-line (as `complete`)
    prompt_layout: str = "stable"  # typing only appends to the cached prompt
    context_budget: int | None = None  # tokens of repository context; None: the core's default share; 0: none
    debounce_ms: float = 75.0  # automatic requests wait this long for a newer keystroke

    @property
    def sampling(self) -> Sampling:
        return Sampling(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens, seed=self.seed)

    def updated(self, settings: Any) -> LspOptions:
        """These options with the client's settings applied: a JSON object of the camelCase names, optionally
        under a "localcoder" key (how didChangeConfiguration usually nests them). Unknown keys are ignored."""
        if settings is None or settings == []:  # Neovim sends its empty settings table as []
            return self
        if isinstance(settings, dict) and isinstance(settings.get("localcoder"), dict):
            settings = settings["localcoder"]
        if not isinstance(settings, dict):
            raise LocalcoderError(f"localcoder settings must be a JSON object, not {type(settings).__name__}")
        changes = {}
        for field in fields(self):
            name = json_name(field.name)
            if name in settings:
                changes[field.name] = _checked(field.name, name, settings[name])
        return replace(self, **changes)


_WHOLE = {"max_tokens": 1, "context_budget": 0, "seed": SEED_MIN}  # the least each may be
_RANGES = {"temperature": SAMPLING_BOUNDS["temperature"], "top_p": SAMPLING_BOUNDS["top_p"], "debounce_ms": (0, 10_000)}


def _checked(field: str, name: str, value: Any) -> Any:
    """The setting's value when it is valid for the field, else a one-line LocalcoderError naming it."""
    wrong = LocalcoderError(f"setting {name}: {value!r} is not a valid value")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if field == "model":
        if value is not None and not isinstance(value, str):
            raise wrong
        return value or None
    if field == "scope":
        return None if value is None else check_scope(str(value))
    if field == "prompt_layout":
        return check_layout(str(value))
    if field in ("seed", "context_budget") and value is None:
        return None
    if field in _WHOLE:
        if not number or value != int(value) or value < _WHOLE[field]:
            raise wrong
        return int(value)
    low, high = _RANGES[field]
    if not number or not low <= value <= high:
        raise wrong
    return float(value)
