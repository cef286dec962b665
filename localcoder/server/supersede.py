"""Superseding: a newer request from the same editor and file takes the place of the one still in flight.

An editor that does not close the old connection (it just sends the next keystroke's request) would otherwise
wait behind work nobody reads. A request says whom it is for where its body can: llama-server's `id_slot`,
OpenAI's `user`, localcoder's own `path`; with the client's address, the route and the model that makes the
key. A newer request with the same key marks the older superseded: it stops at its next check (prompt batch,
abort callback, token) or leaves the queue, and is answered as its protocol expects (routes.superseded).
Requests without such a field, and other clients' requests, keep their first-come order.

One newer request does not supersede: the one whose text before the cursor is the older's plus the start of
what the older has generated so far (the user is typing the suggestion as it appears). It waits for the older
instead, and is answered with the rest of that suggestion (completion/typing_through.py) the moment it ends
(`await_older`: with a local model the queue orders them anyway; serve --engine runs requests side by side).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable


class Claim:
    """One request's hold on its key: the text around its cursor, and the text it has generated so far."""

    def __init__(self, key: Hashable, before: str | None = None, after: str | None = None) -> None:
        self.key = key
        self.before, self.after = before, after
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

    @property
    def superseded(self) -> bool:
        return self._superseded.is_set()

    def supersede(self) -> None:
        self._superseded.set()


class Claims:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._latest: dict[Hashable, Claim] = {}
        self._lock = threading.Lock()

    def claim(self, key: Hashable, before: str | None = None, after: str | None = None) -> Claim:
        """The caller's claim on `key`; the previous holder, if any, is superseded (when superseding is on)
        unless the caller is typing into its suggestion: then the caller waits for it and types through."""
        claim = Claim(key, before, after)
        with self._lock:
            previous = self._latest.get(key)
            self._latest[key] = claim
        if previous is not None and self.enabled:
            if previous.typed_into_by(before, after):
                claim.older = previous
            else:
                previous.supersede()
        return claim

    def release(self, claim: Claim) -> None:
        claim._released.set()
        claim.older = None  # no chain of claims through a long typing session
        with self._lock:
            if self._latest.get(claim.key) is claim:
                del self._latest[claim.key]
