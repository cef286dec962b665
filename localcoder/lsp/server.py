"""The pygls server: one handler per LSP feature, each mapping onto the completion core.

Completions run one at a time on a worker thread (one resident model). Each request holds a ticket that
says when to stop: the client's $/cancelRequest (answered RequestCancelled, -32800), a newer request for the
same document (answered with no items), or shutdown. The core asks the ticket after every token, so the
work stops too, not only the answer. Automatic requests wait `debounce_ms` first, since many clients ask
at every keystroke, and every request first lets the reader take in what the client already wrote: a
cancel sent in the same burst as its request is seen before any work starts.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.exceptions import JsonRpcRequestCancelled
from pygls.lsp.server import LanguageServer

from localcoder import __version__
from localcoder.completion.generate import GenerationCancelled
from localcoder.errors import LocalcoderError
from localcoder.lsp import features
from localcoder.lsp.documents import Documents, Position, offset_at
from localcoder.lsp.options import LspOptions
from localcoder.lsp.protocol import LocalcoderProtocol, OneLineLog, StdinReader
from localcoder.names import shown_name
from localcoder.server.client import Completer, LoadedCompleter
from localcoder.supersede import Claim, Claims

logger = logging.getLogger(__name__)
SETTLE_SECONDS = 0.25  # longest wait for the reader to take in input the client already wrote
OpenCompleter = Callable[[str | None], Completer]  # model name (None: the default) -> where requests go


@dataclass
class Ticket:
    """One completion request in flight; `stopped()` is what the core asks after every token."""

    uri: str
    msg_id: Any
    claim: Claim  # on the document: a newer request for it supersedes this one (supersede.py, as serve's)
    cancelled: bool = False  # the client sent $/cancelRequest for it (or the server is shutting down)

    @property
    def superseded(self) -> bool:
        return self.claim.superseded

    def stopped(self) -> bool:
        return self.cancelled or self.superseded


@dataclass
class Tickets:
    """The requests in flight: by id (for $/cancelRequest), each with its claim on its document (superseding)."""

    by_id: dict[Any, Ticket] = field(default_factory=dict)
    claims: Claims = field(default_factory=Claims)

    def start(self, uri: str, msg_id: Any) -> Ticket:
        ticket = self.by_id[msg_id] = Ticket(uri, msg_id, self.claims.claim(uri))
        return ticket

    def cancel(self, msg_id: Any) -> None:
        """Stop the request's work. One whose handler has not started yet has no ticket: pygls cancels it."""
        ticket = self.by_id.get(msg_id)
        if ticket is not None:
            ticket.cancelled = True

    def finish(self, ticket: Ticket) -> None:
        self.by_id.pop(ticket.msg_id, None)
        self.claims.release(ticket.claim)

    def cancel_all(self) -> None:
        for ticket in self.by_id.values():
            ticket.cancelled = True


class LocalcoderServer(LanguageServer):
    def __init__(self, options: LspOptions, open_completer: OpenCompleter, reader: StdinReader | None = None) -> None:
        super().__init__("localcoder", __version__, protocol_cls=LocalcoderProtocol)
        self.options = options
        self.documents = Documents()
        self.tickets = Tickets()
        self.roots: list[Path] = []
        self.encoding = "utf-16"
        self.shut_down = False
        self.reader = reader
        self.handled = 0  # messages handled (see StdinReader.pending)
        self._open_completer = open_completer
        self._preparing: asyncio.Future[Completer] | None = None  # opening the completer, then loading its model
        self._work = ThreadPoolExecutor(1, thread_name_prefix="localcoder-lsp")  # one resident model

    def tell(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        """A message the user sees (window/showMessage); the server goes on."""
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"localcoder: {shown_name(message)}"))

    def log(self, message: str) -> None:
        logged = types.LogMessageParams(type=types.MessageType.Log, message=f"localcoder: {shown_name(message)}")
        self.window_log_message(logged)

    def configure(self, settings: Any) -> None:
        try:
            updated = self.options.updated(settings)
        except LocalcoderError as exc:
            self.tell(f"{exc}; keeping the settings it had")
            return
        if updated.model != self.options.model:
            self._preparing = None  # the next request opens the newly named model
        self.options = updated

    async def answer(
        self,
        uri: str,
        position: types.Position,
        automatic: bool,
        selected: types.SelectedCompletionInfo | None,
        render: Callable[..., Any],
    ) -> Any:
        """The request's items, rendered by `render(text, target, completion, encoding)`."""
        ticket = self.tickets.start(uri, self.protocol.msg_id)
        try:
            await self._settle(ticket, self.options.debounce_ms / 1000 if automatic else 0.0)
            if ticket.cancelled:
                raise JsonRpcRequestCancelled(f"request {ticket.msg_id} was cancelled")
            if ticket.superseded:  # a newer keystroke came while it waited
                return render("", features.target_at("", 0), "", self.encoding)
            text = self.documents.get(uri).text
            target = self._target(text, position, selected)
            path = features.path_of(uri)
            language = self.documents.get(uri).language
            others = {features.path_of(u): t for u, t in self.documents.texts().items() if u != uri}
            request = features.build_request(target, path, language, self.options, others, self.roots)
            completer = await self._ready_completer()
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._work, self._complete, completer, request, ticket, loop)
            if result is None:  # stopped while it worked
                if ticket.cancelled:
                    raise JsonRpcRequestCancelled(f"request {ticket.msg_id} was cancelled")
                return render(text, target, "", self.encoding)
            return render(text, target, result["completion"], self.encoding)
        except JsonRpcRequestCancelled:
            raise
        except LocalcoderError as exc:
            self.tell(str(exc))
        except Exception as exc:  # a bug here must not end the editor's session: say it and go on
            logger.exception("completion failed")
            self.tell(f"internal error: {exc!r}")
        finally:
            self.tickets.finish(ticket)
        return render("", features.target_at("", 0), "", self.encoding)

    async def _settle(self, ticket: Ticket, debounce: float) -> None:
        """Let the reader take in what is already written (a cancel, a newer keystroke), then debounce."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        await asyncio.sleep(0)
        reader = self.reader
        while reader is not None and reader.pending(self.handled) and loop.time() < deadline and not ticket.stopped():
            await asyncio.sleep(0.001)
        if debounce > 0 and not ticket.stopped():
            await asyncio.sleep(debounce)

    def _target(
        self, text: str, position: types.Position, selected: types.SelectedCompletionInfo | None
    ) -> features.Target:
        def offset(p: types.Position) -> int:
            return offset_at(text, Position(p.line, p.character), self.encoding)

        if selected is None:
            return features.target_at(text, offset(position))
        return features.target_at(text, offset(selected.range.start), offset(selected.range.end), selected.text)

    def _complete(
        self, completer: Completer, request: Any, ticket: Ticket, loop: asyncio.AbstractEventLoop
    ) -> dict[str, Any] | None:
        """On the worker thread: the core's result, or None when the ticket stopped it."""
        if ticket.stopped():
            return None
        try:
            return completer.complete(request, None, ticket.stopped)
        except GenerationCancelled:
            why = "cancelled" if ticket.cancelled else "superseded"
            loop.call_soon_threadsafe(self.log, f"request {ticket.msg_id}: generation stopped ({why})")
            return None

    async def _ready_completer(self) -> Completer:
        """The completer, its model loaded first. One load, shared: a request cancelled while it waits leaves
        the load running for the next one."""
        if self._preparing is None:
            self._preparing = asyncio.ensure_future(self._prepare(self.options.model))
        try:
            return await asyncio.shield(self._preparing)
        except Exception:
            self._preparing = None  # the next request tries again (the user may fix the model setting)
            raise

    async def _prepare(self, model: str | None) -> Completer:
        """Open the completer (probing for a running serve) and load its model, off the event loop so that
        cancels keep being read; with $/progress when the client shows it."""
        loop = asyncio.get_running_loop()
        completer = await loop.run_in_executor(self._work, self._open_completer, model)
        if isinstance(completer, LoadedCompleter) and not completer.loaded:
            token = str(uuid.uuid4())
            progress = self._supports_progress()
            if progress:
                await self.work_done_progress.create_async(token)
                self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title="localcoder: loading the model"))
            try:
                await loop.run_in_executor(self._work, completer.ensure_loaded)
            finally:
                if progress:
                    self.work_done_progress.end(token, types.WorkDoneProgressEnd(message="ready"))
        return completer

    def _supports_progress(self) -> bool:
        window = self.client_capabilities.window
        return bool(window is not None and window.work_done_progress)

    def stop_work(self) -> None:
        self.tickets.cancel_all()
        self._work.shutdown(wait=False, cancel_futures=True)


def build_server(
    options: LspOptions, open_completer: OpenCompleter, reader: StdinReader | None = None
) -> LocalcoderServer:
    server = LocalcoderServer(options, open_completer, reader)

    @server.feature(types.INITIALIZE)
    def initialize(ls: LocalcoderServer, params: types.InitializeParams) -> None:
        encoding = ServerCapabilitiesBuilder.choose_position_encoding(params.capabilities)
        ls.encoding = str(getattr(encoding, "value", encoding))  # the one pygls advertises
        folders = params.workspace_folders or []
        uris = [folder.uri for folder in folders] or ([params.root_uri] if params.root_uri else [])
        ls.roots = [Path(features.path_of(uri)) for uri in uris if uri]
        ls.configure(params.initialization_options)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: LocalcoderServer, params: types.DidChangeConfigurationParams) -> None:
        ls.configure(params.settings)

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def did_change_folders(ls: LocalcoderServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
        removed = {Path(features.path_of(f.uri)) for f in params.event.removed}
        ls.roots = [root for root in ls.roots if root not in removed]
        ls.roots += [Path(features.path_of(f.uri)) for f in params.event.added]

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: LocalcoderServer, params: types.InlineCompletionParams) -> Any:
        automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
        selected = params.context.selected_completion_info
        return await ls.answer(params.text_document.uri, params.position, automatic, selected, features.inline_items)

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "("]))
    async def completion(ls: LocalcoderServer, params: types.CompletionParams) -> Any:
        context = params.context
        automatic = context is None or context.trigger_kind != types.CompletionTriggerKind.Invoked
        return await ls.answer(params.text_document.uri, params.position, automatic, None, features.completion_items)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: LocalcoderServer, *args: Any) -> None:
        ls.shut_down = True
        ls.stop_work()

    @server.feature(types.EXIT)
    def exit_(ls: LocalcoderServer, *args: Any) -> None:
        ls.stop_work()
        if ls.reader is not None:
            ls.reader.close()

    return server


def serve_stdio(options: LspOptions, open_completer: OpenCompleter, stdout: BinaryIO) -> int:
    """Speak LSP on stdin and `stdout` until the client says exit or hangs up; the exit status (0 after a
    shutdown request, 1 without one, as the spec says)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineLog())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    reader = StdinReader()
    server = build_server(options, open_completer, reader)
    server.start_io(reader, stdout)  # type: ignore[arg-type]
    server.stop_work()
    return 0 if server.shut_down else 1
