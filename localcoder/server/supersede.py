"""Superseding: a newer request from the same editor and file takes the place of the one still in flight.

An editor that does not close the old connection (it just sends the next keystroke's request) would otherwise
wait behind work nobody reads. A request says whom it is for where its body can: llama-server's `id_slot`,
OpenAI's `user`, localcoder's own `path`; with the client's address, the route and the model that makes the
key. A newer request with the same key marks the older superseded: it stops at its next check (prompt batch,
abort callback, token) or leaves the queue, and is answered as its protocol expects (routes.superseded).
Requests without such a field, and other clients' requests, keep their first-come order.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable


class Claim:
    """One request's hold on its key."""

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self._superseded = threading.Event()

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

    def claim(self, key: Hashable) -> Claim:
        """The caller's claim on `key`; the previous holder, if any, is superseded (when superseding is on)."""
        claim = Claim(key)
        with self._lock:
            previous = self._latest.get(key)
            self._latest[key] = claim
        if previous is not None and self.enabled:
            previous.supersede()
        return claim

    def release(self, claim: Claim) -> None:
        with self._lock:
            if self._latest.get(claim.key) is claim:
                del self._latest[claim.key]
