"""Several cached token sequences ("slots") for one loaded model, so switching files re-reads only what changed.

llama.cpp's context holds one sequence: the live slot. The others are saved copies of a context state
(ggufkit.llamacpp.save_context). A request is served from the slot whose tokens share the longest prefix
with its prompt, exactly as they are: no KV shifting, so a hit is bit-for-bit the state a fresh read gives.
When no slot shares at least half of the prompt, the least recently used slot takes the request, starting
from a copy of the best match (so a prefix all files share, such as context snippets, is still reused).

Memory: each slot but the live one keeps its KV cache in RAM: its tokens x 2 (K and V) x layers x KV width x
2 bytes. CodeGen2.5-7B: 0.5 MiB a token, so a full 2,048-token slot is 1 GiB.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from ggufkit.llamacpp import ContextState, restore_context, save_context

SIMILAR = 0.5  # the share of the prompt a slot must already hold to take the request itself


def common_prefix(held: Any, ids: list[int]) -> int:
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
        if self.slots > 1 and shared[best] < SIMILAR * len(ids):
            target = min(range(self.slots), key=lambda slot: (self._saved[slot] is not None or slot == self._live,
                                                               self._last_used[slot]))
        self._last_used[target] = next(self._clock)
        if target == self._live:
            return CacheChoice(target, shared[target], False)
        live_state = save_context(self.llm) if self.llm.n_tokens else None
        self._saved[self._live] = live_state
        source = self._saved[best] if shared[best] > 0 else None
        if best != self._live and source is not None:
            restore_context(self.llm, source)
        elif source is None:
            self.llm.reset()
        self._saved[target] = None  # its old tokens are replaced by what this request reads
        self._live = target
        return CacheChoice(target, shared[best], True)

    def status(self) -> dict[str, Any]:
        return {
            "slots": self.slots,
            "live": self._live,
            "tokens": [len(self.tokens(slot)) for slot in range(self.slots)],
            "saved_mib": round(self.saved_bytes / 2**20, 1),
        }
