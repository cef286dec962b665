"""serve --engine: the server's models as one tokenizer here and one OpenAI-compatible engine there.

The same contract as pool.ModelPool (resolve, servable, lease, when_idle, preload, status, close), so http.py and
every route run unchanged on either; which one serves is chosen once, at startup (http.serve). Differences:

- What is loaded here is the GGUF's vocabulary only (tokenizer_only.load_vocabulary: no weights), or the bundled
  CodeGen2.5 tokenizer; prompts are built here exactly as with a local model, generation happens on the engine.
- Up to `parallel` requests are in flight to the engine at once (a FairLock of that capacity): vLLM and
  llama-server batch them, which a model in this process cannot (it stays one at a time). Past those, requests
  queue in arrival order, at most --max-waiting of them; the next one gets 503, as with a local model.
- Nothing to unload (a vocabulary is a few MB), so keep_alive is taken and ignored; nothing to prefetch into
  (the engine keeps its own prompt cache): `when_idle` is never idle.
- `engine_status()` is /health's view of the engine: what the last request found, refreshed by a probe of its
  GET /v1/models when that is older than PROBE_AFTER_S (so a stopped engine shows as down before anyone asks it
  for a completion, and as up again once it is back).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from localcoder.completion.backends import EngineBackend
from localcoder.completion.engine import Engine
from localcoder.completion.model import LoadedModel
from localcoder.errors import LocalcoderError
from localcoder.runtime import load_model, resolve_model
from localcoder.server.pool import UNKNOWN_MODEL, FairLock, PoolOptions

DEFAULT_PARALLEL = 4  # in flight to the engine at once: llama-server -np 4, and a batch vLLM fills in one step
PROBE_AFTER_S = 1.0


class EnginePool:
    def __init__(self, options: PoolOptions, engine: Engine, parallel: int = DEFAULT_PARALLEL) -> None:
        self.options = options
        self.engine = engine
        self.parallel = parallel
        self._gate = FairLock(options.max_waiting, capacity=parallel)
        self._model: LoadedModel | None = None
        self._loading = threading.Lock()
        self._probing = threading.Lock()

    def _path(self) -> Path:
        return resolve_model(self.options.load.model).resolve()

    def resolve(self, name: str | None) -> Path:
        """The tokenizer's GGUF; a client may name it (by path, file name or stem) or the engine's model."""
        path = self._path()
        if not name or name in {str(path), path.name, path.stem, self.options.load.model, self.engine.model}:
            return path
        raise LocalcoderError(UNKNOWN_MODEL)

    def servable(self, default: Path | None = None) -> list[Path]:
        try:
            return [default or self._path()]
        except LocalcoderError:
            return []

    def _loaded(self) -> LoadedModel:
        with self._loading:
            if self._model is None:
                backend = EngineBackend(self.engine)
                self._model = load_model(self._path(), self.options.load, backend=backend)
            return self._model

    @contextlib.contextmanager
    def lease(
        self, name: str | None, gone: Callable[[], bool] = lambda: False, keep_alive: float | None = None
    ) -> Iterator[LoadedModel]:
        """The tokenizer and engine, for one of the `parallel` requests in flight (queued in arrival order)."""
        self.resolve(name)
        self._gate.acquire(gone)
        try:
            yield self._loaded()
        finally:
            self._gate.release()

    @contextlib.contextmanager
    def when_idle(self, name: str | None) -> Iterator[None]:
        yield None

    def preload(self, name: str | None) -> LoadedModel:
        return self._loaded()

    def status(self) -> list[dict[str, object]]:
        try:
            path = str(self._path())
        except LocalcoderError:
            return []
        model = self._model
        return [
            {
                "model": path,
                "loaded": model is not None,
                "busy": self._gate.held,
                "waiting": self._gate.waiting,
                "in_flight": self._gate.holders,
                "parallel": self.parallel,
                "loads": int(model is not None),
                "n_ctx": model.n_ctx if model else None,
                "cache": model.cache.status() if model else None,
                "expires_in_s": None,
                "weights": "engine",
            }
        ]

    def engine_status(self) -> dict[str, Any]:
        health = self.engine.health
        if health.up is None or time.monotonic() - health.at > PROBE_AFTER_S:
            with self._probing:  # one probe at a time; others read what it found
                if health.up is None or time.monotonic() - health.at > PROBE_AFTER_S:
                    self.engine.probe()
        return {
            "url": self.engine.url,
            "model": self.engine.model,
            "prompt": self.engine.used_kind or self.engine.prompt_kind,
            **self.engine.health.to_dict(),
            "in_flight": self._gate.holders,
            "waiting": self._gate.waiting,
            "parallel": self.parallel,
        }

    def close(self) -> None:
        """Nothing to free but the vocabulary, which the process exit takes."""
