"""Several cached token sequences ("slots") for one loaded model, so switching files re-reads only what changed.

llama.cpp's context holds one sequence: the live slot. The others are saved copies of a context state
(ggufkit.llamacpp.save_context). A request is served from the slot whose tokens share the longest prefix
with its prompt, exactly as they are: no KV shifting, so a hit is bit-for-bit the state a fresh read gives.
When serving it there would throw away more than KEEP tokens of that slot's last prompt (another file, not
the same file typed on), the least recently used other slot takes the request instead, starting from a copy
of the best match: a prefix all files share, such as context snippets, is still reused, and the best
match stays cached for the next switch back.

Memory: each slot but the live one keeps its KV cache in RAM: its tokens x 2 (K and V) x layers x KV width x
2 bytes. CodeGen2.5-7B: 0.5 MiB a token, so a full 2,048-token slot is 1 GiB.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Any

from ggufkit.llamacpp import ContextState, restore_context, save_context

KEPT_SUGGESTIONS = 8
KEEP = 32  # tokens of a slot's last prompt a request may discard and still be served in that slot


def common_prefix(held: Any, ids: list[int]) -> int:
    """How many leading tokens `held` (a list or llama-cpp-python's token array) shares with `ids`."""
    count = 0
    for held_id, new_id in zip(held, ids, strict=False):
        if held_id != new_id:
            break
        count += 1
    return count


@dataclass
class CacheChoice:
    slot: int
    shared: int  # prompt tokens the chosen slot (or the copy it started from) already held
    switched: bool


@dataclass(frozen=True)
class Suggestion:
    context: tuple[Any, ...]  # what must be equal besides the text before the cursor
    before: str  # the text before the cursor it was made for
    text: str  # what the client was given (after the cut)
    prompt_ids: tuple[int, ...]
    generated: tuple[int, ...]  # the tokens behind `text`, in-process generations only
    ends: tuple[int, ...]  # len(text) after each generated token
    continuable: bool  # it ended at the token budget, not at <eom> or a cut
    stop_reason: str

    def tokens_after(self, chars: int) -> int:
        """How many generated tokens make up the text after its first `chars` characters."""
        return sum(1 for end in self.ends if end > chars) if self.ends else 0


class Suggestions:
    def __init__(self) -> None:
        self._kept: list[Suggestion] = []
        self._lock = threading.Lock()  # an engine-backed server remembers from several requests at once

    def remember(self, suggestion: Suggestion, replacing: Suggestion | None = None) -> None:
        with self._lock:
            kept = [s for s in self._kept if s is not replacing and s.before != suggestion.before]
            self._kept = [*kept, suggestion][-KEPT_SUGGESTIONS:]

    def find(self, context: tuple[Any, ...], before: str) -> tuple[Suggestion, str] | None:
        """The latest suggestion `before` types into, and the typed text (never empty)."""
        for old in reversed(self._kept):
            if old.context != context or len(before) <= len(old.before) or not before.startswith(old.before):
                continue
            typed = before[len(old.before) :]
            if old.text.startswith(typed):
                return old, typed
        return None


class PromptCache:
    def __init__(self, llm: Any, slots: int = 1) -> None:
        self.llm = llm
        self.slots = max(1, slots)
        self._saved: list[ContextState | None] = [None] * self.slots
        self._live = 0
        self._clock = itertools.count(1)
        self._last_used = [0] * self.slots
        self._prompt_end = [0] * self.slots  # the length of each slot's last prompt; after it, generated tokens
        self.suggestions = Suggestions()  # the last ones given, to type through (typing_through.py)

    @property
    def live(self) -> int:
        """The slot llama.cpp's context holds now."""
        return self._live

    def tokens(self, slot: int) -> Any:
        if slot == self._live:
            return self.llm.input_ids[: self.llm.n_tokens]
        saved = self._saved[slot]
        return saved.tokens if saved is not None else []

    @property
    def saved_bytes(self) -> int:
        return sum(state.nbytes for state in self._saved if state is not None)

    def select(self, ids: list[int]) -> CacheChoice:
        """Make the slot that should serve `ids` the live one; llama-cpp-python then reuses its prefix."""
        shared = [common_prefix(self.tokens(slot), ids) for slot in range(self.slots)]
        best = max(range(self.slots), key=lambda slot: (shared[slot], slot == self._live))
        target = best
        if self.slots > 1 and self._prompt_end[best] - shared[best] > KEEP:
            others = [slot for slot in range(self.slots) if slot != best]
            target = min(others, key=lambda slot: (self._occupied(slot), self._last_used[slot]))
        self._last_used[target] = next(self._clock)
        self._prompt_end[target] = len(ids)
        if target == self._live:
            return CacheChoice(target, shared[target], False)
        self._saved[self._live] = save_context(self.llm) if self.llm.n_tokens else None
        if shared[best] == 0:
            self.llm.reset()
        elif best != self._live:
            restore_context(self.llm, self._saved[best])  # type: ignore[arg-type]
        self._saved[target] = None  # what it held is replaced by what this request reads
        self._live = target
        return CacheChoice(target, shared[best], True)

    def _occupied(self, slot: int) -> bool:
        return slot == self._live or self._saved[slot] is not None

    def status(self) -> dict[str, Any]:
        return {
            "slots": self.slots,
            "live": self._live,
            "tokens": [len(self.tokens(slot)) for slot in range(self.slots)],
            "saved_mib": round(self.saved_bytes / 2**20, 1),
        }


class EngineCache:
    """The prompt cache of a model that generates on an engine: the engine keeps its own (vLLM's prefix caching,
    llama-server's slots), so nothing is held here but the suggestions given, to type through. One slot, never
    switched; several requests may use it at once."""

    slots = 1
    live = 0
    saved_bytes = 0

    def __init__(self) -> None:
        self.suggestions = Suggestions()

    def select(self, ids: list[int]) -> CacheChoice:
        return CacheChoice(0, 0, False)

    def status(self) -> dict[str, Any]:
        return {"slots": 1, "live": 0, "tokens": [0], "saved_mib": 0.0, "held_by": "engine"}
