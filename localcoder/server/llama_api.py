"""llama-server's POST /infill and GET /props, as llama.vim and llama.vscode use them.

The body: input_prefix (the lines above the cursor's), prompt (the cursor's line up to the cursor),
input_suffix (the rest), input_extra ([{text, filename, time}] chunks from other files, placed before the
prefix as snippets), n_predict (0: read the prompt into the cache and generate nothing, a warm-up), n_indent,
t_max_predict_ms, top_k, top_p, temperature, stop, n_cmpl (that many alternatives, answered as an array) and
response_fields (answer only those keys, flat: "timings/prompt_n"). samplers, cache_prompt,
t_max_prompt_ms and lora are accepted and have no effect: the prompt is always cached, and the cache slot
is the one holding the longest prefix of the prompt (serve --cache-slots), whatever id_slot asks. id_slot
says whom the request is for: a newer one with the same id_slot supersedes it (supersede.py).

Answers are compact JSON on one line: llama.vim checks them with the regex "content"\\s*:" before decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from localcoder.completion.generate import Sampling
from localcoder.completion.infill import Filled, FillResult, InfillInput
from localcoder.completion.truncate import Chained, Deadline, IndentFloor, StopStrings
from localcoder.server.fields import BadRequest, Fields
from localcoder.server.wire import MAX_N, MAX_TOKENS_CAP, snippets_from

KEYS = ("input_prefix", "input_suffix", "input_extra", "prompt", "n_predict")  # what tells this body apart


@dataclass(frozen=True)
class LlamaInfillRequest:
    source: InfillInput
    sampling: Sampling
    n_predict: int
    n_cmpl: int
    n_indent: int
    stop: tuple[str, ...]
    t_max_predict_ms: int
    response_fields: tuple[str, ...] | None
    model: str | None
    stream: bool
    id_slot: int | None = None  # whom it is for: a newer request with the same id_slot supersedes it

    def cut(self) -> Chained:
        cuts: list[Any] = [StopStrings(self.stop)]
        if self.n_indent > 0:
            cuts.append(IndentFloor(self.n_indent))
        if self.t_max_predict_ms > 0:
            cuts.append(Deadline(self.t_max_predict_ms))
        return Chained(*cuts)


def is_llama_body(body: Any) -> bool:
    return isinstance(body, dict) and "text" not in body and any(key in body for key in KEYS)


def parse_llama_infill(body: Any) -> LlamaInfillRequest:
    fields = Fields(body)
    for key in ("input_prefix", "input_suffix", "prompt"):
        if not isinstance(fields.body.get(key, ""), str):
            raise BadRequest(f"{key} must be a string (token arrays are not supported)")
    prefix = fields.get("input_prefix", str, "") + fields.get("prompt", str, "")
    n_predict = fields.token_count("n_predict", Sampling().max_tokens, MAX_TOKENS_CAP)
    sampling = replace(fields.sampling(MAX_TOKENS_CAP, Sampling(), max_tokens_key=None), max_tokens=max(n_predict, 1))
    fields_wanted = fields.get("response_fields", list)
    if fields_wanted is not None and not all(isinstance(key, str) for key in fields_wanted):
        raise BadRequest("response_fields must be a list of strings")
    model = fields.get("model", str) or None
    return LlamaInfillRequest(
        source=InfillInput(prefix, fields.get("input_suffix", str, ""), snippets_from(fields, "input_extra")),
        sampling=sampling,
        n_predict=n_predict,
        n_cmpl=fields.integer("n_cmpl", 1, 1, MAX_N),  # type: ignore[arg-type]
        n_indent=fields.integer("n_indent", 0, 0, 10**4),  # type: ignore[arg-type]
        stop=fields.stops(),
        t_max_predict_ms=fields.integer("t_max_predict_ms", 0, -(10**9), 10**9),  # type: ignore[arg-type]
        response_fields=tuple(fields_wanted) if fields_wanted is not None else None,
        model=model,
        stream=fields.get("stream", bool, False),
        id_slot=_id_slot(fields),
    )


def _id_slot(fields: Fields) -> int | None:
    value = fields.body.get("id_slot")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def superseded_body(request: LlamaInfillRequest) -> dict[str, Any]:
    """llama-server's last answer of a completion that ended with nothing: what a superseded request gets."""
    timings = {"prompt_n": 0, "prompt_ms": 0.0, "predicted_n": 0, "predicted_ms": 0.0}
    body = {"index": 0, "content": "", "tokens": [], "stop": True, "stop_type": "none", "tokens_predicted": 0}
    return _only({**body, "superseded": True, "timings": timings}, request.response_fields)


def _stop_type(filled: Filled) -> str:
    if filled.run.stop_reason in ("eom", "end_of_text"):
        return "eos"
    return "word" if filled.cut else "limit"


def completion_bodies(request: LlamaInfillRequest, result: FillResult, model_name: str) -> list[dict[str, Any]]:
    """One llama-server completion result per alternative (a warm-up has one, with no content)."""
    bodies = []
    prompt_ms = result.alternatives[0].run.prompt_ms if result.alternatives else 0.0
    for index, filled in enumerate(result.alternatives):
        run = filled.run
        read = result.read_tokens if index == 0 else 0
        generate_ms = run.generate_ms
        timings = {
            "prompt_n": read,
            "prompt_ms": round(prompt_ms if index == 0 else 0.0, 3),
            "prompt_per_token_ms": round(prompt_ms / read, 3) if read else 0.0,
            "prompt_per_second": round(read * 1000 / prompt_ms, 3) if prompt_ms and read else 0.0,
            "predicted_n": run.tokens,
            "predicted_ms": round(generate_ms, 3),
            "predicted_per_token_ms": round(generate_ms / run.tokens, 3) if run.tokens else 0.0,
            "predicted_per_second": round(run.tokens * 1000 / generate_ms, 3) if generate_ms and run.tokens else 0.0,
        }
        body = {
            "index": index,
            "content": filled.text,
            "tokens": [],
            "id_slot": result.slot,
            "stop": True,
            "model": model_name,
            "tokens_predicted": run.tokens,
            "tokens_evaluated": result.prompt_tokens,
            "tokens_cached": result.cached_tokens,
            "typed_through": result.typed_through,  # localcoder's: the rest of an earlier suggestion, model not run
            "truncated": bool(result.prompt.trimmed_prefix_lines or result.prompt.trimmed_suffix_lines),
            "has_new_line": "\n" in filled.text,
            "stop_type": "limit" if request.n_predict == 0 else _stop_type(filled),
            "stopping_word": "",
            "generation_settings": {"n_predict": request.n_predict, "temperature": request.sampling.temperature},
            "timings": timings,
        }
        bodies.append(_only(body, request.response_fields))
    return bodies


def _only(body: dict[str, Any], wanted: tuple[str, ...] | None) -> dict[str, Any]:
    """llama-server's response_fields: the named keys, nested ones as "outer/inner", flat."""
    if wanted is None:
        return body
    picked = {}
    for path in wanted:
        value: Any = body
        for part in path.split("/"):
            if not isinstance(value, dict) or part not in value:
                break
            value = value[part]
        else:
            picked[path] = value
    return picked


def props_body(n_ctx: int, model_path: str, slots: int, max_tokens: int) -> dict[str, Any]:
    settings = {"n_ctx": n_ctx, "n_predict": max_tokens, "model": model_path, "params": {"n_predict": max_tokens}}
    return {
        "default_generation_settings": settings,
        "generation_settings": settings,  # what llama.vscode reads
        "total_slots": slots,
        "model_path": model_path,
        "n_ctx": n_ctx,
        "build_info": "localcoder",
    }
