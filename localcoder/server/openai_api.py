"""OpenAI's POST /v1/completions and GET /v1/models: `suffix` makes a completion an infill in the model's format.

minuet-ai.nvim (openai_fim_compatible), llama.vscode's OpenAI mode and the official `openai` client speak it.
A stream is server-sent events, every chunk carrying the one id of its completion, then `data: [DONE]`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcoder.completion.generate import Sampling
from localcoder.completion.infill import FillResult, InfillInput
from localcoder.server.fields import BadRequest, Fields
from localcoder.server.wire import MAX_N, MAX_TOKENS_CAP, layout


@dataclass(frozen=True)
class OpenAICompletion:
    """POST /v1/completions, checked: a prompt (and with a suffix, an infill) in OpenAI's terms."""

    prompt: str
    suffix: str | None
    n: int
    sampling: Sampling
    stop: tuple[str, ...]
    layout: str
    model: str | None
    stream: bool
    user: str | None = None  # whom it is for: a newer request from the same user supersedes it

    @property
    def source(self) -> InfillInput:
        """With a suffix, an infill in the model's own format; without, left to right from the prompt."""
        return InfillInput(self.prompt, self.suffix or "", layout=self.layout, infill=self.suffix is not None)


def parse_completion(body: Any) -> OpenAICompletion:
    fields = Fields(body)
    prompt = fields.body.get("prompt", "")
    if isinstance(prompt, list):  # OpenAI allows a batch; one prompt per request here
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise BadRequest("prompt must be a string (or a list holding one string); token arrays are not supported")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest(f"prompt must be a string, not {type(prompt).__name__}")
    body = fields.body
    if body.get("logprobs") is not None or body.get("echo") or body.get("logit_bias") or body.get("best_of", 1) != 1:
        raise BadRequest("logprobs, echo, best_of and logit_bias are not supported by this server")
    # OpenAI's defaults: 16 tokens, temperature 1, top_p 1.
    openai = Sampling(temperature=1.0, top_p=1.0, max_tokens=min(16, MAX_TOKENS_CAP))
    return OpenAICompletion(
        prompt=prompt,
        suffix=fields.get("suffix", str),
        n=fields.integer("n", 1, 1, MAX_N),  # type: ignore[arg-type]
        sampling=fields.sampling(MAX_TOKENS_CAP, openai),
        stop=fields.stops(),
        layout=layout(fields),
        model=fields.get("model", str),
        stream=fields.get("stream", bool, False),
        user=fields.get("user", str) or None,
    )


def superseded_body(request: OpenAICompletion) -> dict[str, Any]:
    """An empty completion for a request a newer one superseded (a stream's last chunk, then [DONE])."""
    choice = {"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return {"id": "cmpl-superseded", "object": "text_completion", "choices": [choice], "usage": usage}


class Envelope:
    """The parts every body of one completion shares: its id, creation time and model."""

    def __init__(self, model_path: Path) -> None:
        self.id = f"cmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = model_path.name

    def body(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage is not None:
            body["usage"] = usage
        return body

    def chunk(self, index: int, text: str, finish_reason: str | None = None) -> dict[str, Any]:
        return self.body([{"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}])


def finish_reason(filled: Any) -> str:
    return "length" if filled.run.stop_reason == "max_tokens" and not filled.cut else "stop"


def completion_body(envelope: Envelope, result: FillResult) -> dict[str, Any]:
    choices = [
        {"text": f.text, "index": i, "logprobs": None, "finish_reason": finish_reason(f)}
        for i, f in enumerate(result.alternatives)
    ]
    usage = {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.generated_tokens,
        "total_tokens": result.prompt_tokens + result.generated_tokens,
        "prompt_tokens_details": {"cached_tokens": result.cached_tokens},
    }
    return envelope.body(choices, usage)


def models_body(names: list[str]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": Path(n).name, "object": "model", "owned_by": "localcoder", "path": n} for n in names],
    }
