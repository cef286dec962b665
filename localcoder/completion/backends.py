"""Where the tokens come from: the model loaded here, or a remote OpenAI-compatible engine.

A backend is chosen once, when the model is opened (`runtime.load_model(..., backend=...)`), and every front
end asks it the same things: continue these prompt ids through a cut (infill for `complete`, `serve` and
`eval`; the program-synthesis prompt for `chat` and MTPB), answer these chat messages through a cut (`chat`
with a GGUF that has a chat template), and put these prompt ids in the generator's cache (a warm-up: read here,
or one discarded token on the engine). The prompt ids are always built here, with the GGUF's tokenizer, in the
family's format; only the generation moves (so with an engine, runtime.load_model reads the vocabulary only).
`chat`'s `/model` keeps the backend it was opened with.

A backend only yields pieces of one `generate.Job`; `generate.drive`, the one loop above them all, applies the
cut, the cancellation and the timing, and `infill.fill` runs it.

`Backend.describe()` is what results report about it (`complete --json`'s "engine"), None for in-process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from localcoder.completion.engine import Engine
from localcoder.completion.generate import (
    Generation,
    Job,
    Piece,
    Sampling,
    TextCut,
    drive,
    local_chat_pieces,
    local_pieces,
    read_prompt,
)


class Backend(Protocol):
    kind: str  # "local" | "engine"

    def pieces(self, job: Job) -> Iterator[Piece]:
        """The job's generation, piece by piece: its prompt ids continued until a stop id or the token budget, or
        its chat messages answered with the model's chat template ("eom" at its end, else "max_tokens"). The
        caller (generate.drive) applies the cut, the cancellation and the timing, and closes the iterator to
        stop early."""
        ...

    def warm(self, llm: Any, prompt_ids: list[int], cancelled: Callable[[], bool] | None = None) -> Generation:
        """Put `prompt_ids` in the prompt cache of whoever generates, and generate nothing for the caller
        (llama-server's n_predict 0: an editor's warm-up)."""
        ...

    def describe(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class LocalBackend:
    """llama.cpp in this process, through llama-cpp-python."""

    kind: str = "local"

    def pieces(self, job: Job) -> Iterator[Piece]:
        return local_chat_pieces(job) if job.messages is not None else local_pieces(job)

    def warm(self, llm: Any, prompt_ids: list[int], cancelled: Callable[[], bool] | None = None) -> Generation:
        return read_prompt(llm, prompt_ids, cancelled)

    def describe(self) -> dict[str, Any] | None:
        return None


@dataclass(frozen=True)
class EngineBackend:
    """A remote OpenAI-compatible engine (vLLM, llama-server, llama_cpp.server): localcoder.completion.engine."""

    engine: Engine
    kind: str = "engine"

    def pieces(self, job: Job) -> Iterator[Piece]:
        return self.engine.chat_pieces(job) if job.messages is not None else self.engine.pieces(job)

    def warm(self, llm: Any, prompt_ids: list[int], cancelled: Callable[[], bool] | None = None) -> Generation:
        # An OpenAI completion has no "read only": one greedy token, thrown away, leaves the prompt in the
        # engine's prefix cache (vLLM's automatic prefix caching, llama-server's slot).
        job = Job(llm, prompt_ids, _ONE_TOKEN, cancelled=cancelled)
        run = drive(self.engine.pieces(job), job, _Discard())
        return Generation("", 0, "warm_up", run.prompt_ms, 0.0)

    def describe(self) -> dict[str, Any] | None:
        return {"url": self.engine.url, "model": self.engine.model, "prompt": self.engine.used_kind}


_ONE_TOKEN = Sampling(temperature=0.0, top_p=1.0, max_tokens=1)


class _Discard:
    """A cut that lets nothing out (a warm-up's token is nobody's)."""

    stopped = False

    def feed(self, chunk: str) -> str:
        return ""

    def finish(self) -> str:
        return ""


def run_job(backend: Backend, job: Job, cut: TextCut, on_text: Callable[[str], None] | None = None) -> Generation:
    """The job on `backend`, through `cut` (generate.drive: `on_text` gets what the cut lets out)."""
    return drive(backend.pieces(job), job, cut, on_text)


def backend_for(engine: Engine | None) -> Backend:
    """The backend the command-line options name: the engine where --engine was given, else this process."""
    return EngineBackend(engine) if engine is not None else LocalBackend()
