"""Hanging up an HTTP connection from a second thread the moment its caller stops wanting the answer.

A read blocked on a server (one reading a long prompt, an engine before its first token) would otherwise return
only with the server's next byte. Shutting the socket makes it return at once, and the server sees its client go,
which is how vLLM, llama-server and localcoder's own serve learn to stop generating. Both ends use it: the clients
that talk to a running serve (server/client.py) and serve talking to an engine (completion/engine.py).
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable

POLL_SECONDS = 0.02  # how often an open connection asks whether its caller still wants it


class HangUp:
    """Watches `cancelled()` while `connection` is open; `hung_up` says whether it cut the connection."""

    def __init__(self, connection: http.client.HTTPConnection, cancelled: Callable[[], bool] | None) -> None:
        self.hung_up = False
        self._connection, self._cancelled = connection, cancelled
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> HangUp:
        """Begin watching (once the request is sent: before it the connection has no socket to shut)."""
        if self._cancelled is not None and self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="localcoder-hang-up", daemon=True)
            self._thread.start()
        return self

    def _watch(self) -> None:
        cancelled = self._cancelled
        assert cancelled is not None
        while not self._done.wait(POLL_SECONDS):
            if cancelled():
                self.hung_up = True
                sock = self._connection.sock
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
