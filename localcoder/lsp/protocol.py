"""The language server's side of the wire: stdin read so that pending input can be seen, every request answered,
and one line on stderr for each thing that went wrong.

pygls 2.1 drops two kinds of request without an answer, which leaves an editor waiting forever: one whose params
do not fit its method (a negative line, a string for a number; pygls logs an exception group and moves on) and any
request after `shutdown`. Here the first is answered InvalidParams (-32602) with the reason cattrs gives
("Position.line should be in range [0:2147483647], but was -1. @ $.params.position"), the second InvalidRequest
(-32600), and each reason is also one line on stderr.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from typing import Any, Protocol

from cattrs import transform_error
from cattrs.v import format_exception
from lsprotocol import types
from lsprotocol.types import ResponseError
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, LanguageServerProtocol, lsp_method

from localcoder.errors import LocalcoderError
from localcoder.lsp.documents import Change, Documents, Position
from localcoder.names import shown_name

logger = logging.getLogger(__name__)
INVALID_REQUEST = -32600  # JSON-RPC's codes (lsprotocol.types.ErrorCodes)
INVALID_PARAMS = -32602


class Answered:
    """What a message that was answered while it was read becomes: nothing more to do with it."""


def _reason(exc: Exception) -> str:
    """cattrs's account of what did not fit, one line: each problem with where it is (`@ $.params.position`)."""

    def say(error: BaseException, kind: Any) -> str:
        return str(error) if type(error) is ValueError and str(error) else format_exception(error, kind)

    try:
        problems = transform_error(exc, "$", format_exception=say)  # type: ignore[arg-type]
    except Exception:
        problems = [f"{type(exc).__name__}: {exc}"]
    return "; ".join(" ".join(problem.split()) for problem in problems)


class StdinReader:
    """stdin for pygls's reader, with its own buffer so that `pending()` can tell whether the client has
    written more than has been read, and `close()` ends a read blocked on a client that never hangs up."""

    def __init__(self, fd: int = 0) -> None:
        self._fd, self._buffer, self._closed = fd, bytearray(), threading.Event()
        self.bodies = 0  # message bodies read; the protocol counts those it has handled

    def pending(self, handled: int) -> bool:
        """Whether the client wrote something not yet handled: read but not yet handled, buffered, or unread."""
        return handled < self.bodies or bool(self._buffer) or bool(select.select([self._fd], [], [], 0)[0])

    def close(self) -> None:
        self._closed.set()

    def _fill(self) -> bool:
        while not self._closed.is_set():
            if select.select([self._fd], [], [], 0.1)[0]:
                chunk = os.read(self._fd, 1 << 16)
                self._buffer += chunk
                return bool(chunk)
        return False

    def readline(self) -> bytes:
        while (end := self._buffer.find(b"\n")) < 0:
            if not self._fill():
                return self._take(len(self._buffer))
        return self._take(end + 1)

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                return b""
        self.bodies += 1  # pygls reads each message's body with one read(Content-Length)
        return self._take(size)

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


class Cancels(Protocol):
    def cancel(self, msg_id: Any) -> None: ...


class ServerState(Protocol):
    """What the protocol reaches of the language server (lsp/server.py's LocalcoderServer), named here so that
    the protocol does not import the server that builds it."""

    handled: int
    documents: Documents
    tickets: Cancels


class LocalcoderProtocol(LanguageServerProtocol):
    """pygls's protocol with the documents kept by localcoder.lsp.documents (its line and position rules) and
    a cancel that also stops a request already running, which pygls alone cannot do."""

    _server: ServerState

    def handle_message(self, message: Any) -> None:
        try:
            if isinstance(message, Answered):
                return
            method = getattr(message, "method", "")
            if self._shutdown and method != types.EXIT and getattr(message, "id", None) is not None:
                self._refuse(message.id, INVALID_REQUEST, f"{method} after shutdown: the server takes only exit now")
                return
            super().handle_message(message)
        finally:
            self._server.handled += 1

    def structure_message(self, data: dict[str, Any]) -> Any:
        """A request whose params do not fit its method is answered InvalidParams here, with the reason, instead of
        going unanswered (pygls logs it and drops it); a notification's is said on stderr."""
        if "jsonrpc" not in data or "method" not in data:
            return super().structure_message(data)
        method, msg_id = data.get("method"), data.get("id")
        fallback = JsonRPCRequestMessage if "id" in data else JsonRPCNotification
        try:
            return self._converter.structure(data, self.get_message_type(str(method)) or fallback)
        except Exception as exc:
            reason = f"{shown_name(str(method))}: invalid params: {_reason(exc)}"
            if msg_id is None:
                logger.warning("%s (a notification: nothing to answer)", reason)
            else:
                self._refuse(msg_id if isinstance(msg_id, (int, str)) else None, INVALID_PARAMS, reason)
            return Answered()

    def _refuse(self, msg_id: Any, code: int, reason: str) -> None:
        logger.warning("request %s: %s", shown_name(str(msg_id)), reason)
        self._send_response(msg_id, None, ResponseError(code, reason))

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        self._server.tickets.cancel(msg_id)
        super()._handle_cancel_notification(msg_id)

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> None:
        document = params.text_document
        self._server.documents.open(document.uri, document.text, document.version, document.language_id)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        changes = [
            Change(
                c.text,
                Position(c.range.start.line, c.range.start.character),
                Position(c.range.end.line, c.range.end.character),
            )
            if isinstance(c, types.TextDocumentContentChangePartial)
            else Change(c.text)
            for c in params.content_changes
        ]
        server = self._server
        try:
            server.documents.change(params.text_document.uri, params.text_document.version, changes, server.encoding)
        except LocalcoderError as exc:
            server.tell(str(exc))

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> None:
        self._server.documents.close(params.text_document.uri)


class OneLineLog(logging.Formatter):
    """Log records on stderr (the editor's LSP log) as one line each: a malformed message from the client, which
    pygls reports with its traceback, is said in a line; the client is also told (window/showMessage)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        head, traceback, trace = message.partition("Traceback (most recent call last):")
        if traceback:  # pygls puts some tracebacks in the message itself: keep their last line, the error
            message = f"{head.strip()}: {trace.strip().splitlines()[-1]}"
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            message = f"{message}: {type(error).__name__}: {error}"
        return "localcoder lsp: " + shown_name(" ".join(message.split()))


