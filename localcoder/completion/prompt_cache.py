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
from dataclasses import dataclass
from typing import Any

from ggufkit.llamacpp import ContextState, restore_context, save_context

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


class PromptCache:
    def __init__(self, llm: Any, slots: int = 1) -> None:
        self.llm = llm
        self.slots = max(1, slots)
        self._saved: list[ContextState | None] = [None] * self.slots
        self._live = 0
        self._clock = itertools.count(1)
        self._last_used = [0] * self.slots
        self._prompt_end = [0] * self.slots  # the length of each slot's last prompt; after it, generated tokens

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
    llama-server's slots), so nothing is held here. One slot, never switched; several requests may use it at once."""

    slots = 1
    live = 0
    saved_bytes = 0

    def select(self, ids: list[int]) -> CacheChoice:
        return CacheChoice(0, 0, False)

    def status(self) -> dict[str, Any]:
        return {"slots": 1, "live": 0, "tokens": [0], "saved_mib": 0.0, "held_by": "engine"}
