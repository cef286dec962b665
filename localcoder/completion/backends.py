"""Where the tokens come from: the model loaded here, or a remote OpenAI-compatible engine.

A backend is chosen once, when the model is opened (`runtime.load_model(..., backend=...)`), and every front
end asks it the same things: continue these prompt ids through a cut (infill for `complete`, `serve` and
`eval`; the program-synthesis prompt for `chat` and MTPB), answer these chat messages through a cut (`chat`
with a GGUF that has a chat template), and put these prompt ids in the generator's cache (a warm-up: read here,
or one discarded token on the engine). The prompt ids are always built here, with the GGUF's tokenizer, in the
family's format; only the generation moves (so with an engine, runtime.load_model reads the vocabulary only).
`chat`'s `/model` keeps the backend it was opened with.

`Backend.describe()` is what results report about it (`complete --json`'s "engine"), None for in-process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from localcoder.completion.engine import Engine
from localcoder.completion.generate import (
    Generation,
    Sampling,
    TextCut,
    finish_cut,
    generate_cut,
    read_prompt,
    through_cut,
)

TextSink = Callable[[str], None]


class Backend(Protocol):
    kind: str  # "local" | "engine"

    def generate(
        self,
        llm: Any,
        prompt_ids: list[int],
        stop: frozenset[int],
        sampling: Sampling,
        cut: TextCut,
        eom_id: int | None = None,
        on_text: TextSink | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Generation:
        """Continue `prompt_ids` until a stop id, the cut, or the token budget (generate.generate_cut's contract)."""
        ...

    def chat(
        self, llm: Any, messages: list[dict[str, str]], sampling: Sampling, cut: TextCut, on_text: TextSink | None
    ) -> Generation:
        """Answer `messages` with the model's chat template; stop_reason "eom" at its end, else "max_tokens"."""
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

    def generate(self, llm, prompt_ids, stop, sampling, cut, eom_id=None, on_text=None, cancelled=None) -> Generation:  # type: ignore[no-untyped-def]
        return generate_cut(llm, prompt_ids, stop, sampling, cut, eom_id, on_text, cancelled)

    def chat(self, llm, messages, sampling, cut, on_text) -> Generation:  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        first = None
        pieces: list[str] = []
        stream = llm.create_chat_completion(
            messages=messages,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            seed=sampling.seed,
            stream=True,
        )
        reason = "eom"
        feed = through_cut(cut, on_text)
        for chunk in stream:
            choice = chunk["choices"][0]
            text = choice.get("delta", {}).get("content") or ""
            if choice.get("finish_reason") == "length":
                reason = "max_tokens"
            if text:
                first = first or time.perf_counter()
                pieces.append(text)
                if not feed(text):
                    reason = "scope"
                    break
        finish_cut(cut, on_text)
        finished = time.perf_counter()
        first = first or finished
        return Generation("".join(pieces), len(pieces), reason, (first - started) * 1000, (finished - first) * 1000)

    def warm(self, llm, prompt_ids, cancelled=None) -> Generation:  # type: ignore[no-untyped-def]
        return read_prompt(llm, prompt_ids, cancelled)

    def describe(self) -> dict[str, Any] | None:
        return None


@dataclass(frozen=True)
class EngineBackend:
    """A remote OpenAI-compatible engine (vLLM, llama-server, llama_cpp.server): localcoder.completion.engine."""

    engine: Engine
    kind: str = "engine"

    def generate(self, llm, prompt_ids, stop, sampling, cut, eom_id=None, on_text=None, cancelled=None) -> Generation:  # type: ignore[no-untyped-def]
        return self.engine.generate_cut(llm, prompt_ids, stop, sampling, cut, eom_id, on_text, cancelled)

    def chat(self, llm, messages, sampling, cut, on_text) -> Generation:  # type: ignore[no-untyped-def]
        return self.engine.chat(messages, sampling, cut, on_text)

    def warm(self, llm, prompt_ids, cancelled=None) -> Generation:  # type: ignore[no-untyped-def]
        # An OpenAI completion has no "read only": one greedy token, thrown away, leaves the prompt in the
        # engine's prefix cache (vLLM's automatic prefix caching, llama-server's slot).
        run = self.engine.generate_cut(llm, prompt_ids, frozenset(), _ONE_TOKEN, _Discard(), None, None, cancelled)
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


def backend_for(engine: Engine | None) -> Backend:
    """The backend the command-line options name: the engine where --engine was given, else this process."""
    return EngineBackend(engine) if engine is not None else LocalBackend()
