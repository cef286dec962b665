"""Ollama's API: POST /api/generate, GET /api/tags, POST /api/show, GET /api/ps, GET /api/version, GET /.

Continue (provider "ollama"), twinny and the official `ollama` client speak it. /api/generate with a
`suffix` is an infill in the model's own format (CodeGen2.5: ended by <eom>); without one, a prompt that
spells the model's infill format itself (twinny's FIM templates) is read back into prefix and suffix, and
anything else is completed left to right. It streams NDJSON unless `"stream": false`: Continue sends no
`stream` key. Errors are {"error": "message"}, as Ollama's are.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcoder.completion.generate import Sampling
from localcoder.completion.infill import FillResult, InfillInput
from localcoder.completion.prompts import PREFIX, SUFFIX, PromptFormat
from localcoder.server.fields import BadRequest, Fields
from localcoder.server.pool import duration_seconds
from localcoder.server.wire import MAX_TOKENS_CAP

API_VERSION = "0.12.0"  # the Ollama release whose API these routes follow; clients compare versions
RUNNING = "Ollama is running"
_UNSUPPORTED = ("images", "format", "template", "system")


def keep_alive_seconds(value: Any) -> float | None:
    """Ollama's keep_alive: seconds as a number, or a duration such as "5m", "1h", "30s"; negative = forever."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadRequest("keep_alive must be a number of seconds or a duration like 5m")
    seconds = (
        float(value) if isinstance(value, int | float) else duration_seconds(value) if isinstance(value, str) else None
    )
    if seconds is None:
        raise BadRequest(f"keep_alive {value!r}: use seconds or a duration like 30s, 5m, 1h")
    return -1.0 if seconds < 0 else seconds


@dataclass(frozen=True)
class GenerateRequest:
    model: str | None
    source: InfillInput | None  # None: an empty prompt, which only loads the model (as Ollama's does)
    sampling: Sampling
    stop: tuple[str, ...]
    stream: bool
    keep_alive: float | None
    raw: bool


def parse_generate(body: Any) -> GenerateRequest:
    fields = Fields(body)
    for key in _UNSUPPORTED:
        if fields.body.get(key):
            raise BadRequest(f"{key} is not supported by this server (code completion only)")
    options = Fields(fields.get("options", dict, {}), "options.")
    max_tokens = options.token_count("num_predict", Sampling().max_tokens, MAX_TOKENS_CAP) or 1
    sampling = replace(options.sampling(MAX_TOKENS_CAP, Sampling(), max_tokens_key=None), max_tokens=max_tokens)
    options.integer("num_ctx", None, 1, 10**7)  # checked; the loaded window is the server's (serve --ctx)
    prompt = fields.get("prompt", str, "")
    suffix = fields.get("suffix", str)
    source = None
    if prompt or suffix is not None:
        source = InfillInput(prompt, suffix, infill=True) if suffix is not None else InfillInput(prompt, infill=False)
    return GenerateRequest(
        model=fields.get("model", str) or None,
        source=source,
        sampling=sampling,
        stop=options.stops(),
        stream=fields.get("stream", bool, True),
        keep_alive=keep_alive_seconds(fields.body.get("keep_alive")),
        raw=fields.get("raw", bool, False),
    )


def read_spelled_infill(fmt: PromptFormat, source: InfillInput) -> InfillInput:
    """A left-to-right prompt that spells `fmt`'s own infill layout (prefix<mask_1>suffix...) read back."""
    if source.infill or not fmt.infill or any(part.startswith("@") for part in fmt.parts):
        return source
    pattern = "".join(
        "(?P<prefix>.*?)" if part == PREFIX else "(?P<suffix>.*?)" if part == SUFFIX else re.escape(part)
        for part in fmt.parts
    )
    match = re.fullmatch(pattern + "(?P<written>.*)", source.prefix, re.DOTALL)
    if match is None:
        return source
    return InfillInput(match["prefix"] + match["written"], match["suffix"], source.snippets, "cursor")


def model_name(path: Path) -> str:
    return f"{path.stem}:latest"


def strip_tag(name: str | None) -> str | None:
    return name[: -len(":latest")] if name and name.endswith(":latest") else name


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def chunk(path: Path, text: str) -> dict[str, Any]:
    return {"model": model_name(path), "created_at": _now(), "response": text, "done": False}


def final_chunk(path: Path, result: FillResult | None, load_ms: float, total_ns: int, text: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model_name(path), "created_at": _now(), "response": text, "done": True}
    if result is None:
        return {**body, "done_reason": "load"}
    first = result.alternatives[0]
    return {
        **body,
        "done_reason": "length" if first.run.stop_reason == "max_tokens" and not first.cut else "stop",
        "total_duration": total_ns,
        "load_duration": int(load_ms * 1e6),
        "prompt_eval_count": result.read_tokens,
        "prompt_eval_duration": int(first.run.prompt_ms * 1e6),
        "eval_count": first.run.tokens,
        "eval_duration": int(first.run.generate_ms * 1e6),
    }


def _details(metadata: dict[str, str]) -> dict[str, Any]:
    family = metadata.get("localcoder.family") or metadata.get("general.architecture", "")
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family] if family else None,
        "parameter_size": metadata.get("general.size_label", ""),
        "quantization_level": metadata.get("general.file_type", ""),
    }


def tag_entry(path: Path, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    stat = path.stat()
    return {
        "name": model_name(path),
        "model": model_name(path),
        "modified_at": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat().replace("+00:00", "Z"),
        "size": stat.st_size,
        "digest": f"{stat.st_size:x}{int(stat.st_mtime):x}",
        "details": _details(metadata or {}),
    }


def template_for(fmt: PromptFormat) -> str:
    """An Ollama template showing the format; Continue uses FIM only when it contains `.Suffix`."""
    spelled = {PREFIX: "{{ .Prompt }}", SUFFIX: "{{ .Suffix }}"}
    if not fmt.infill:
        return "{{ .Prompt }}"
    return "".join(spelled.get(part, f"<{part[1:]}>" if part.startswith("@") else part) for part in fmt.parts)


def show_body(path: Path, fmt: PromptFormat, metadata: dict[str, str], n_ctx: int) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for key, value in metadata.items():
        if key.startswith("tokenizer.chat_template"):
            continue
        info[key] = int(value) if value.lstrip("-").isdigit() else value
    return {
        "modelfile": f"FROM {path}\n",
        "parameters": f"num_ctx {n_ctx}",  # Continue reads each line as `key value`
        "template": template_for(fmt),
        "details": _details(metadata),
        "model_info": info,
        "capabilities": ["completion", "insert"] if fmt.infill else ["completion"],
        "modified_at": tag_entry(path)["modified_at"],
    }


def ps_entry(path: Path, metadata: dict[str, str], n_ctx: int, expires_in: float | None) -> dict[str, Any]:
    expires = time.time() + (expires_in if expires_in is not None and expires_in >= 0 else 10 * 365 * 86400)
    return {
        **tag_entry(path, metadata),
        "expires_at": datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z"),
        "size_vram": 0,
        "context_length": n_ctx,
    }
