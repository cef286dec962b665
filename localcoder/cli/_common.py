"""What every command shares: stderr console, one-line errors, Ctrl-C."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from ggufkit.errors import InterruptedAfterWrite
from localcoder.completion.engine import DEFAULT_TIMEOUT, PROMPT_KINDS
from localcoder.completion.generate import MAX_TEMPERATURE
from localcoder.errors import USER_ERRORS
from localcoder.terminal import plain

F = TypeVar("F", bound=Callable[..., Any])

# No emoji codes: ":x:" in a file name or program output is text, not a picture.
stderr = Console(stderr=True, highlight=False, emoji=False)
stdout = Console(highlight=False, emoji=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    """One line on stderr; the message is printed as text (it carries paths and program output)."""
    stderr.print(Text.assemble(("error:", "bold red"), " ", plain(message)), soft_wrap=True)
    return typer.Exit(code)


def note(message: str) -> None:
    stderr.print(Text.assemble(("note:", "yellow"), " ", plain(message)), soft_wrap=True)


def user_errors(func: F) -> F:
    """Turn user errors and Ctrl-C into one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as exc:
            raise fail(str(exc)) from None
        except InterruptedAfterWrite as exc:
            raise fail(f"interrupted; {exc}", 130) from None
        except KeyboardInterrupt:
            raise fail("interrupted; nothing was written", 130) from None
        except BrokenPipeError:
            sys.stderr.close()
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


# Options several commands share, declared once (each command keeps the ones whose meaning is its own).
MODEL: Any = typer.Option(
    None,
    "--model",
    "-m",
    help="GGUF path or name in the model directory (else LOCALCODER_MODEL, config.toml, the only one).",
)
THREADS: Any = typer.Option(None, "--threads", min=1, help="CPU threads (default: llama.cpp's).")
GPU_LAYERS: Any = typer.Option(
    None, "--gpu-layers", help="Layers to offload (-1 all; default: all with Metal/CUDA, else 0)."
)
CTX: Any = typer.Option(None, "--ctx", min=64, help="Context window (default: the model's, 2048 for CodeGen2.5).")
LOOKUP: Any = typer.Option(0, "--lookup", min=0, max=64, help="Prompt-lookup decoding: draft tokens per step.")
TEMPERATURE: Any = typer.Option(
    0.2, "--temperature", "-t", min=0.0, max=MAX_TEMPERATURE, help="Sampling temperature, 0 to 2; 0 = greedy."
)
TOP_P: Any = typer.Option(0.95, "--top-p", min=0.0, max=1.0, help="Nucleus sampling threshold.")

# The --engine options of complete, chat, eval, lsp and serve: one definition, so the commands agree.
ENGINE_URL: Any = typer.Option(
    None,
    "--engine",
    help="URL of an OpenAI-compatible completions engine (vLLM, llama-server, llama_cpp.server) to generate;"
    " --model still names the GGUF whose tokenizer builds the prompt (its vocabulary only, no weights; or"
    " codegen25-tokenizer, bundled). Key: LOCALCODER_ENGINE_KEY or OPENAI_API_KEY.",
)
ENGINE_MODEL: Any = typer.Option(None, "--engine-model", help="Model name the engine serves.")
ENGINE_PROMPT: Any = typer.Option(
    PROMPT_KINDS[0],
    "--engine-prompt",
    help="auto | ids | text: token ids (vLLM) or text with the sentinels (llama.cpp).",
)
ENGINE_TIMEOUT: Any = typer.Option(DEFAULT_TIMEOUT, "--engine-timeout", min=0.1, help="Seconds to wait for the engine.")

# Repository context (localcoder.context): complete's and context's sizing and switch.
CONTEXT_BUDGET: Any = typer.Option(
    None,
    "--context-budget",
    min=0,
    help="Tokens of repository context (definitions the code near the cursor imports, similar code) shown before"
    " the file; default a third of the prompt, at most half. `localcoder context FILE:LINE` shows them.",
)
NO_REPO_CONTEXT: Any = typer.Option(False, "--no-repo-context", help="Show the model no other file of the repository.")
