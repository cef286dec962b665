"""The tokenizer without the weights: what a machine that hands generation to an engine (`--engine`) keeps.

With an engine, this process only builds prompts (the family's infill format, trimmed to the window) and reads
the engine's text back through the stop rules: it needs the vocabulary and the GGUF's metadata, never a weight.
So `load_vocabulary` opens the GGUF with llama.cpp's vocab_only (the tensors are not read: a 4 GB
codegen25-7b Q4_K_M opens in well under a second and maps nothing of its weights) and gives the same
LoadedModel the in-process path gives, with an EngineCache (the engine keeps the prompt cache) and the backend.

CodeGen2.5's vocabulary ships with localcoder (ggufkit/vocab: GPT-2's tables plus the whitespace runs and
sentinels), so a CodeGen2.5 user needs no GGUF at all: `--model codegen25-tokenizer` names a tokenizer-only
GGUF (the converter's metadata and vocabulary, no tensors; about 2 MB) written once into the cache directory.
It tokenizes exactly as a converted CodeGen2.5 GGUF does (same arrays, same llama.cpp code), which
tests/test_serve_engine.py checks by serving the same buffer through both. Other families' vocabularies are
not bundled: their GGUF is opened for its vocabulary only.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from ggufkit import metadata as gguf_metadata
from localcoder import paths
from localcoder.completion.model import LoadedModel
from localcoder.completion.prompt_cache import EngineCache
from localcoder.completion.prompts import detect_format
from localcoder.errors import LocalcoderError

BUNDLED_TOKENIZER = "codegen25-tokenizer"  # what --model names to use the bundled CodeGen2.5 vocabulary
DEFAULT_WINDOW = 2048  # CodeGen2.5's training context, where a GGUF records none
_FILE = "codegen25-tokenizer.gguf"


def bundled_tokenizer_path() -> Path:
    """The tokenizer-only CodeGen2.5 GGUF in the cache directory, written on first use (atomically)."""
    path = paths.cache_dir() / "tokenizers" / _FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, scratch = tempfile.mkstemp(dir=path.parent, suffix=".part")
        os.close(handle)
        try:
            _write_tokenizer_gguf(Path(scratch))
            os.replace(scratch, path)
        finally:
            if os.path.exists(scratch):
                os.unlink(scratch)
    return path


def is_tokenizer_only(path: Path) -> bool:
    return path.name == _FILE and path.resolve().parent == (paths.cache_dir() / "tokenizers").resolve()


def _write_tokenizer_gguf(path: Path) -> None:
    """CodeGen2.5-7B's hyperparameters and vocabulary as the converter writes them, and no tensor."""
    from gguf import GGUFWriter

    from ggufkit.vocab import codegen25 as vocab

    writer = GGUFWriter(str(path), "llama")
    writer.add_name("codegen25 tokenizer (bundled, no weights)")
    writer.add_context_length(DEFAULT_WINDOW)
    writer.add_embedding_length(4096)
    writer.add_block_count(32)
    writer.add_feed_forward_length(11008)
    writer.add_head_count(32)
    writer.add_head_count_kv(32)
    writer.add_rope_dimension_count(128)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_vocab_size(vocab.VOCAB_SIZE)
    vocab.add_to_gguf(writer)
    writer.add_string(gguf_metadata.FAMILY, "codegen2.5")
    writer.add_string(gguf_metadata.PROMPT_FORMAT, "codegen-infill")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def load_vocabulary(path: Path, n_ctx: int | None, backend: Any) -> LoadedModel:
    """`path`'s vocabulary and metadata as a LoadedModel that generates on `backend` (an engine): no weights.
    The window is --ctx, else the context length the GGUF records (the engine's own limit is the engine's)."""
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    from localcoder.runtime import vocabulary_of

    logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL)
    try:  # llama-cpp-python makes a context even for vocab_only (n_ctx 64 keeps it at nothing), and llama.cpp
        # warns on stderr that it exceeds the training context, which a vocabulary has none of
        with suppress_stdout_stderr(disable=False):
            llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, n_ctx=64, n_batch=64, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise LocalcoderError(f"llama.cpp cannot read the vocabulary of {path}: {exc}") from None
    vocab = vocabulary_of(llm)
    arch = vocab.metadata.get("general.architecture", "")
    trained = vocab.metadata.get(f"{arch}.context_length")
    window = n_ctx or (int(trained) if trained else DEFAULT_WINDOW)
    return LoadedModel(path, llm, vocab, detect_format(vocab), window, 0.0, EngineCache(), backend)
