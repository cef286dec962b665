"""Resident models: loaded on first use, kept for --keep-alive, one generation at a time each, in arrival order."""

from __future__ import annotations

import collections
import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from localcoder import paths
from localcoder.completion.model import LoadedModel
from localcoder.errors import LocalcoderError
from localcoder.runtime import LoadOptions, load_model, resolve_model

UNKNOWN_MODEL = "unknown model: this server serves the models GET /v1/models lists"
_DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)(ns|us|ms|s|m|h)?$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def duration_seconds(text: str) -> float | None:
    """How long a model stays loaded, from "300", "45s", "5m", "1h" (Go's units as Ollama takes them): 0 unloads
    it after each request, any negative value keeps it forever (-1.0). None when `text` is not a duration."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        return None
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    return -1.0 if seconds < 0 else seconds


class Busy(Exception):
    """Too many requests are already waiting for this model."""


class Gone(Exception):
    """The client went away while its request waited in the queue."""


@dataclass(frozen=True)
class PoolOptions:
    load: LoadOptions = LoadOptions()  # how each model opens; its `model` is the default one (flag, env, config...)
    keep_alive: float = 300.0  # seconds a model stays loaded after its last request; 0 = unload at once; <0 forever
    max_models: int = 1
    max_waiting: int = 16


class FairLock:
    """`capacity` holders at a time (one for a model in this process; serve --engine's --parallel for an engine);
    waiters get in strictly in arrival order (threading.Lock promises no order); at most `max_waiting` wait."""

    def __init__(self, max_waiting: int, capacity: int = 1) -> None:
        self._condition = threading.Condition()
        self._waiters: collections.deque[object] = collections.deque()
        self._holders = 0
        self._capacity = capacity
        self._max_waiting = max_waiting

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def holders(self) -> int:
        return self._holders

    def acquire(self, gone: Callable[[], bool] = lambda: False) -> None:
        ticket = object()
        with self._condition:
            if len(self._waiters) >= self._max_waiting:
                raise Busy
            self._waiters.append(ticket)
            while self._holders >= self._capacity or self._waiters[0] is not ticket:
                self._condition.wait(0.1)
                if gone():
                    self._waiters.remove(ticket)
                    self._condition.notify_all()
                    raise Gone
            self._waiters.popleft()
            self._holders += 1
            self._condition.notify_all()  # the next waiter may fit too

    def try_acquire(self) -> bool:
        """Take it only if nobody holds it or waits for it (work that must never delay a request)."""
        with self._condition:
            if self._holders or self._waiters:
                return False
            self._holders = 1
            return True

    def release(self) -> None:
        with self._condition:
            self._holders -= 1
            self._condition.notify_all()

    @property
    def held(self) -> bool:
        return self._holders > 0


@dataclass
class Slot:
    path: Path
    lock: FairLock
    model: LoadedModel | None = None
    last_used: float = 0.0
    loads: int = 0
    keep_alive: float | None = None  # a request's own keep_alive (Ollama's), else the server's

    def expires_in(self, default: float) -> float | None:
        """Seconds until an idle model unloads; None: never."""
        keep = default if self.keep_alive is None else self.keep_alive
        return None if keep < 0 else max(0.0, keep - (time.monotonic() - self.last_used))


class ModelPool:
    def __init__(self, options: PoolOptions) -> None:
        self.options = options
        self._slots: dict[Path, Slot] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="localcoder-keep-alive", daemon=True)
        self._reaper.start()

    def resolve(self, name: str | None) -> Path:
        """The default model (no name), or the one a client names among `servable()`. Any other name, whether
        a file exists there or not, gets the same UNKNOWN_MODEL: the server is no oracle for the disk."""
        if not name:
            return resolve_model(self.options.load.model).resolve()
        default = self._default()
        for path in self.servable(default):
            if name in self._names(path, default):
                return path.resolve()
        raise LocalcoderError(UNKNOWN_MODEL)

    def servable(self, default: Path | None = None) -> list[Path]:
        """The models clients may name: the server's default and the GGUFs in its model directory."""
        default = default or self._default()
        found = [default] if default is not None else []
        directory = paths.models_dir()
        if directory.is_dir():
            found += sorted(directory.glob("*.gguf"))
        unique: dict[Path, Path] = {}
        for path in found:
            unique.setdefault(path.resolve(), path)
        return list(unique.values())

    def _default(self) -> Path | None:
        """The default model, resolved once per request (flag, environment, config, model directory)."""
        try:
            return resolve_model(self.options.load.model)
        except LocalcoderError:
            return None

    def _names(self, path: Path, default: Path | None) -> set[str]:
        names = {str(path), str(path.resolve()), path.name, path.stem}
        if self.options.load.model and default is not None and path.resolve() == default.resolve():
            names.add(self.options.load.model)
        return names

    @contextlib.contextmanager
    def lease(
        self, name: str | None, gone: Callable[[], bool] = lambda: False, keep_alive: float | None = None
    ) -> Iterator[LoadedModel]:
        """The model, loaded and reserved for the caller until the block ends; `keep_alive` (seconds, <0 forever)
        replaces the server's for this model from now on."""
        path = self.resolve(name)
        with self._guard:
            slot = self._slots.get(path) or self._slots.setdefault(path, Slot(path, FairLock(self.options.max_waiting)))
        slot.lock.acquire(gone)
        try:
            if slot.model is None:
                self._make_room(keep=slot)
                slot.model = load_model(path, self.options.load)
                slot.loads += 1
            yield slot.model
        finally:
            slot.last_used = time.monotonic()
            if keep_alive is not None:
                slot.keep_alive = keep_alive
            if self._keep_alive(slot) == 0:
                self._unload(slot)
            slot.lock.release()

    @contextlib.contextmanager
    def when_idle(self, name: str | None) -> Iterator[tuple[LoadedModel, Callable[[], bool]] | None]:
        """The loaded model and "does a request wait for it now?", or None when it is busy, awaited or not
        loaded: for look-ahead work (serve --prefetch) that must give way to any request."""
        path = self.resolve(name)
        with self._guard:
            slot = self._slots.get(path)
        if slot is None or slot.model is None or not slot.lock.try_acquire():
            yield None
            return
        try:
            yield slot.model, lambda: slot.lock.waiting > 0  # type: ignore[union-attr]
        finally:
            slot.lock.release()

    def _keep_alive(self, slot: Slot) -> float:
        return self.options.keep_alive if slot.keep_alive is None else slot.keep_alive

    def preload(self, name: str | None) -> LoadedModel:
        with self.lease(name) as model:
            return model

    def status(self) -> list[dict[str, object]]:
        with self._guard:
            slots = list(self._slots.values())
        return [
            {
                "model": str(slot.path),
                "loaded": slot.model is not None,
                "busy": slot.lock.held,
                "waiting": slot.lock.waiting,
                "loads": slot.loads,
                "n_ctx": slot.model.n_ctx if slot.model else None,
                "cache": slot.model.cache.status() if slot.model else None,
                "expires_in_s": slot.expires_in(self.options.keep_alive),
            }
            for slot in slots
        ]

    def engine_status(self) -> dict[str, object] | None:
        """None: the models generate in this process (engine_pool.EnginePool answers with the engine's state)."""
        return None

    def close(self) -> None:
        """Unload what is idle; a model still generating is left to the process exit, never freed under it."""
        self._stop.set()
        with self._guard:
            slots = list(self._slots.values())
        for slot in slots:
            if not slot.lock.held:
                self._unload(slot)

    def _make_room(self, keep: Slot) -> None:
        """Unload the least recently used idle models so at most max_models stay loaded."""
        with self._guard:
            loaded = [s for s in self._slots.values() if s.model is not None and s is not keep]
        loaded.sort(key=lambda s: s.last_used)
        while len(loaded) >= self.options.max_models:
            victim = loaded.pop(0)
            if victim.lock.held:
                raise Busy(f"{victim.path.name} is busy and this server keeps at most {self.options.max_models} loaded")
            self._unload(victim)

    @staticmethod
    def _unload(slot: Slot) -> None:
        model, slot.model = slot.model, None
        if model is not None:
            model.llm.close()

    def _reap(self) -> None:
        while not self._stop.wait(1.0):
            now = time.monotonic()
            with self._guard:
                idle = [
                    s
                    for s in self._slots.values()
                    if s.model is not None and not s.lock.held and 0 < self._keep_alive(s) < now - s.last_used
                ]
            for slot in idle:
                try:
                    slot.lock.acquire()
                except Busy:
                    continue
                try:
                    if 0 < self._keep_alive(slot) < time.monotonic() - slot.last_used:
                        self._unload(slot)
                finally:
                    slot.lock.release()
