"""Superseding: a newer request from the same editor and document takes the place of the one still in flight.

One mechanism for both resident front ends: serve keys a claim by caller, route, model and the body's slot or
path, with the text around the cursor (below); the language server keys it by the document's URI, with no text
(lsp/server.py's tickets), so a newer request for the same document always supersedes. It imports nothing of
localcoder.

An editor that does not close the old connection (it just sends the next keystroke's request) would otherwise
wait behind work nobody reads. A request says whom it is for where its body can: llama-server's `id_slot`,
OpenAI's `user`, localcoder's own `path`; with the caller (server/owner.py: the local uid, else the address), the
route and the model that makes the key. A newer request with the same key marks the older superseded: it stops at
its next check (prompt batch, abort callback, token) or leaves the queue, and is answered as its protocol expects
(routes.superseded). Requests without such a field, and other callers' requests, keep their first-come order.

The key alone does not tell editors apart: llama.vim and llama.vscode always send id_slot 0, so two editors of
one user shared a key, and with both typing over 90% of each one's answers came back empty. So a newer request
supersedes only older ones for the same document, as their text shows: a few whole lines next to the older's
cursor (above it, or below it), at least MIN_ANCHOR visible characters, still appear in the newer's text. Typing
on, pressing Enter, deleting above or below, moving a few lines: one of them stays. Another document shares them
only by chance (boilerplate at the cursor). An older request with too little text to tell (a new, near-empty
file) is superseded as before. A warm-up (llama.vim's n_predict 0) takes no part: it supersedes nothing, and
nothing supersedes it; it is short, and its answer is not shown.

One newer request does not supersede: the one whose text before the cursor is the older's plus the start of
what the older has generated so far (the user is typing the suggestion as it appears). It waits for the older
instead, and is answered with the rest of that suggestion (completion/typing_through.py) the moment it ends
(`await_older`: with a local model the queue orders them anyway; serve --engine runs requests side by side).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

ANCHOR_LINES = 3  # whole lines next to the cursor that a newer request for the same document still shows
MAX_ANCHOR_LINES = 8  # taken when the nearest ones are blank or short
MIN_ANCHOR = 12  # visible characters that make an anchor tell documents apart


def anchors(before: str, after: str) -> list[str]:
    """Whole lines just above the cursor's line and just below it, each run as one string: at least ANCHOR_LINES
    lines where there are as many, more up to MAX_ANCHOR_LINES until MIN_ANCHOR visible characters."""
    above = before[: before.rfind("\n") + 1].splitlines(keepends=True)[::-1]  # nearest first
    below = after[after.find("\n") + 1 :].splitlines(keepends=True) if "\n" in after else []
    found = []
    for lines, nearest_last in ((above, True), (below, False)):
        for count in range(min(ANCHOR_LINES, len(lines)), min(MAX_ANCHOR_LINES, len(lines)) + 1):
            run = lines[:count]
            if count and len("".join("".join(run).split())) >= MIN_ANCHOR:
                found.append("".join(run[::-1] if nearest_last else run))
                break
    return found


class Claim:
    """One request's hold on its key: the text around its cursor, and the text it has generated so far."""

    def __init__(self, key: Hashable, before: str | None = None, after: str | None = None) -> None:
        self.key = key
        self.before, self.after = before, after
        self._anchors = anchors(before, after or "") if before is not None else []
        self._shown: list[str] = []
        self._superseded = threading.Event()
        self._released = threading.Event()
        self.older: Claim | None = None  # the request whose suggestion this one types into

    def await_older(self, gone: Callable[[], bool]) -> None:
        """Wait until the request this one types into has ended (or this one's client is gone)."""
        while self.older is not None and not self.older._released.wait(0.02):
            if gone():
                return

    def show(self, text: str) -> None:
        """More of the suggestion (its first alternative, as the stop rules let it out)."""
        self._shown.append(text)

    def typed_into_by(self, before: str | None, after: str | None) -> bool:
        """A request at `before`|`after` is this one with some of what it has generated so far typed (at least
        one character: the same request again supersedes, as any other)."""
        if self.before is None or before is None or after != self.after or not before.startswith(self.before):
            return False
        typed = before[len(self.before) :]
        return bool(typed) and "".join(self._shown).startswith(typed)

    def same_document(self, before: str | None, after: str | None) -> bool:
        """A request at `before`|`after` is for this one's document (or this one has too little text to tell)."""
        if not self._anchors or before is None:
            return True
        text = before + (after or "")
        return any(anchor in text for anchor in self._anchors)

    @property
    def superseded(self) -> bool:
        return self._superseded.is_set()

    def supersede(self) -> None:
        self._superseded.set()


class Claims:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._live: dict[Hashable, list[Claim]] = {}
        self._lock = threading.Lock()

    def claim(self, key: Hashable, before: str | None = None, after: str | None = None) -> Claim:
        """The caller's claim on `key`; the older holders for the same document are superseded (when superseding
        is on), except one the caller is typing into: then the caller waits for it and types through."""
        claim = Claim(key, before, after)
        with self._lock:
            older = list(self._live.get(key, ()))
            self._live.setdefault(key, []).append(claim)
        if self.enabled:
            for previous in older:
                if previous.typed_into_by(before, after):
                    claim.older = previous
                elif previous.same_document(before, after):
                    previous.supersede()
        return claim

    def release(self, claim: Claim) -> None:
        claim._released.set()
        claim.older = None  # no chain of claims through a long typing session
        with self._lock:
            live = self._live.get(claim.key, [])
            if claim in live:
                live.remove(claim)
            if not live:
                self._live.pop(claim.key, None)
