"""Resolve which GGUF to use and load it into llama.cpp, quietly.

Model choice, first that applies: --model (a path, or a name in the model
directory), LOCALCODER_MODEL, `model = "..."` in LOCALCODER_HOME/config.toml,
the only GGUF in the model directory.
"""

from __future__ import annotations

import logging
import os
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ggufkit.llamacpp import tokenize
from localcoder import paths
from localcoder.completion.backends import Backend, LocalBackend, backend_for
from localcoder.completion.model import LoadedModel
from localcoder.completion.prompt_cache import PromptCache
from localcoder.completion.prompts import Vocabulary, detect_format
from localcoder.errors import LocalcoderError
from localcoder.tokenizer_only import BUNDLED_TOKENIZER, bundled_tokenizer_path, is_tokenizer_only, load_vocabulary

HOW_TO_GET_A_MODEL = (
    "get one with `localcoder pull Salesforce/codegen25-7b-mono_P` (online), convert a checkpoint with"
    " `localcoder convert DIR`, or try `localcoder demo`"
)


def config() -> dict[str, Any]:
    path = paths.home() / "config.toml"
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LocalcoderError(f"{path}: {exc}") from None


def find_by_name(value: str) -> Path | None:
    """A path as given, else NAME or NAME.gguf in the model directory; None when none exists."""
    path = Path(value).expanduser()
    for candidate in (path, paths.models_dir() / value, paths.models_dir() / f"{value}.gguf"):
        if candidate.exists():
            return candidate
    return None


def _by_name(value: str) -> Path:
    found = find_by_name(value)
    if found is not None:
        return found
    if value == BUNDLED_TOKENIZER:  # the CodeGen2.5 vocabulary shipped with localcoder (tokenizer_only.py)
        return bundled_tokenizer_path()
    raise LocalcoderError(f"model {value}: no such file (nor in {paths.models_dir()}); {HOW_TO_GET_A_MODEL}")


def configured_model() -> tuple[str, str] | None:
    """The default model's setting and where it is set ("env": LOCALCODER_MODEL, else "config": config.toml),
    or None. The one place the order of the default-model chain lives; `models.default_model` reports it."""
    for source, value in (("env", os.environ.get("LOCALCODER_MODEL")), ("config", config().get("model"))):
        if value:
            return str(value), source
    return None


def local_models() -> list[Path]:
    """The GGUF files in the model directory, sorted (the last link of the chain: the only one is the default)."""
    return sorted(paths.models_dir().glob("*.gguf")) if paths.models_dir().is_dir() else []


def resolve_model(flag: str | None) -> Path:
    """The GGUF to use: --model, else the configured default, else the only GGUF in the model directory."""
    setting = (flag, "flag") if flag else configured_model()
    if setting is not None:
        return _by_name(setting[0])
    found = local_models()
    if len(found) == 1:
        return found[0]
    if found:
        raise LocalcoderError(
            f"{len(found)} models in {paths.models_dir()}: pick one with --model NAME, LOCALCODER_MODEL,"
            ' or model = "NAME" in config.toml (see `localcoder models`)'
        )
    raise LocalcoderError(f"no model yet: {HOW_TO_GET_A_MODEL}; or pass --model PATH")


def default_gpu_layers() -> int:
    """All layers when llama.cpp was built with Metal or CUDA offload, else none."""
    import llama_cpp

    return -1 if llama_cpp.llama_supports_gpu_offload() else 0


@dataclass(frozen=True)
class LoadOptions:
    """How a model is opened: the one typed bundle every front end that loads one fills in (complete, the language
    server, chat, eval, kld, bench, serve's pool), and `load_model`'s settings."""

    model: str | None = None  # a GGUF path or a name in the model directory; None: the default chain
    ctx: int | None = None  # None: the context length the model was trained with
    threads: int | None = None
    gpu_layers: int | None = None  # None: all where llama.cpp offloads, else none
    lookup: int = 0  # prompt-lookup draft tokens per step; 0: off
    cache_slots: int = 1  # cached token sequences (prompt_cache.py)
    logits_all: bool = False  # every position's logits (kld)
    engine: Any = None  # a completion.engine.Engine: the GGUF here gives the tokenizer, the engine generates

    @property
    def needs_own_load(self) -> bool:
        """Options that change how a model is loaded, which a running server already chose for itself."""
        loading = (self.ctx, self.threads, self.gpu_layers)
        return self.engine is not None or any(value is not None for value in loading) or self.lookup > 0

    def open(self, path: Path | None = None, backend: Backend | None = None) -> LoadedModel:
        """`path` (else `model`, resolved) loaded with these options, generating on `backend` (else on the engine
        named, else in this process)."""
        chosen = path if path is not None else resolve_model(self.model).resolve()
        return load_model(chosen, self, backend or backend_for(self.engine))


def check_gguf(path: Path, hint: str = "") -> Path:
    """`path` when it is a file that starts with GGUF's magic; else one line saying what it is instead."""
    if path.is_dir():
        raise LocalcoderError(f"{path} is a directory, not a GGUF model")
    with open(path, "rb") as handle:
        if handle.read(4) != b"GGUF":
            raise LocalcoderError(f"{path} is not a GGUF file" + (f"; {hint}" if hint else ""))
    return path


def load_tokenizer(path: Path) -> Callable[[str], list[int]]:
    """The GGUF's tokenizer alone (llama.cpp's vocab_only: no weights are read), for counting prompt tokens."""
    import llama_cpp

    logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL)
    try:
        llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise LocalcoderError(f"llama.cpp cannot load {path}: {exc}") from None
    return lambda text: tokenize(llm, text)


def load_model(path: Path, options: LoadOptions | None = None, backend: Backend | None = None) -> LoadedModel:
    """Load a GGUF with `options` (LoadOptions: its `model` and `engine` are for `LoadOptions.open`; here the
    path and `backend` are given): `lookup` > 0 turns on prompt-lookup decoding with that many draft tokens per
    step; `cache_slots` token sequences stay cached (prompt_cache.py). `backend` generates (default: this
    process; an EngineBackend sends the prompts built here to a remote engine); it is chosen here, once.

    Prompt lookup proposes the tokens that followed the last n-gram's earlier occurrence in the context and
    verifies them in one batch: completions that copy nearby code come out several tokens per step, with
    the same tokens as plain decoding (each one is still sampled from the model's own distribution).

    With an engine backend only the vocabulary is read (tokenizer_only.load_vocabulary): no weights.
    """
    check_gguf(path, HOW_TO_GET_A_MODEL)
    options = options or LoadOptions()
    if backend is not None and backend.kind == "engine":
        return load_vocabulary(path, options.ctx, backend)
    if is_tokenizer_only(path):
        raise LocalcoderError(f"{BUNDLED_TOKENIZER} is a tokenizer without weights: use it with --engine URL")
    import llama_cpp

    logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL)
    started = time.perf_counter()
    draft = None
    if options.lookup > 0:
        from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

        draft = LlamaPromptLookupDecoding(max_ngram_size=3, num_pred_tokens=options.lookup)
    try:
        llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=options.ctx or 0,  # 0: the context length the model was trained with
            n_threads=options.threads,
            n_gpu_layers=default_gpu_layers() if options.gpu_layers is None else options.gpu_layers,
            draft_model=draft,
            # Drafts are checked against every position's logits. llama-cpp-python sizes its logits buffer from
            # this flag, not from the draft model it then turns it on for, so it must be passed explicitly.
            logits_all=options.logits_all or draft is not None,  # kld: every position's logits
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise LocalcoderError(f"llama.cpp cannot load {path}: {exc}") from None
    load_ms = (time.perf_counter() - started) * 1000
    vocab = vocabulary_of(llm)
    # llama.cpp pads the context to a multiple of 256, but llama-cpp-python's token buffer keeps the size
    # asked for: the smaller of the two is the real window.
    window = min(llm.n_ctx(), len(llm.input_ids))
    chosen = backend or LocalBackend()
    cache = PromptCache(llm, options.cache_slots)
    return LoadedModel(path, llm, vocab, detect_format(vocab), window, load_ms, cache, chosen)


def vocabulary_of(llm: Any) -> Vocabulary:
    """What the prompt stage needs of a loaded llama.cpp model (weights or vocab_only): tokenize, metadata, and
    the end-of-generation ids, found only when asked."""
    import llama_cpp

    vocab_handle = llm._model.vocab
    return Vocabulary(
        tokenize=lambda text: tokenize(llm, text),
        metadata=dict(llm.metadata),
        find_end_of_generation=lambda: frozenset(
            t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab_handle, t)
        ),
    )
