"""Prompt formats as data, and the one function that turns prefix + suffix into token ids.

A format is a sequence of parts: the placeholders {prefix} and {suffix}, a
special token's text (looked up as one token in the model's vocabulary), or
"@name", a token id the GGUF names in its metadata (tokenizer.ggml.name_token_id).
"@eog" in a stop list means the model's own end-of-generation set.

Prompts are built as token ids, never as one string handed to llama.cpp:
llama-cpp-python's `suffix=` path puts token id 0 where FIM tokens belong.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from localcoder.errors import LocalcoderError

PREFIX = "{prefix}"
SUFFIX = "{suffix}"


@dataclass(frozen=True)
class PromptFormat:
    name: str
    parts: tuple[str, ...]
    stop: tuple[str, ...]
    infill: bool
    description: str


FORMATS: dict[str, PromptFormat] = {
    format.name: format
    for format in (
        PromptFormat(
            "codegen-infill",
            (PREFIX, "<mask_1>", SUFFIX, "<|endoftext|>", "<sep>", "<mask_1>"),
            ("<eom>", "<|endoftext|>"),
            infill=True,
            description="CodeGen2 / CodeGen2.5: prefix <mask_1> suffix <|endoftext|> <sep> <mask_1>, ended by <eom>",
        ),
        PromptFormat(
            "fim",
            ("@fim_pre", PREFIX, "@fim_suf", SUFFIX, "@fim_mid"),
            ("@eog",),
            infill=True,
            description="fill-in-the-middle tokens named in the GGUF (StarCoder style, prefix-suffix-middle)",
        ),
        PromptFormat(
            "left-to-right",
            (PREFIX,),
            ("@eog",),
            infill=False,
            description="no infill: continue from the prefix (CodeGen1, plain causal LMs)",
        ),
    )
}
_CODEGEN_SENTINELS = ("<mask_1>", "<sep>", "<eom>")
_FIM_KEYS = ("fim_pre", "fim_suf", "fim_mid")


@dataclass
class Vocabulary:
    """What prompt building needs from a model: tokenizer, metadata, end-of-generation ids."""

    tokenize: Callable[[str], list[int]]
    metadata: dict[str, str]
    find_end_of_generation: Callable[[], frozenset[int]]

    @functools.cached_property
    def end_of_generation(self) -> frozenset[int]:
        """Asked of llama.cpp only when a format needs it: it means one call per vocabulary entry."""
        return self.find_end_of_generation()

    def single_token(self, text: str) -> int | None:
        ids = self.tokenize(text)
        return ids[0] if len(ids) == 1 else None

    def metadata_token(self, name: str) -> int | None:
        value = self.metadata.get(f"tokenizer.ggml.{name}_token_id")
        return int(value) if value is not None and int(value) >= 0 else None


def detect_format(vocab: Vocabulary) -> PromptFormat:
    """The format the converter recorded; else recognise CodeGen sentinels or FIM metadata; else left to right."""
    recorded = vocab.metadata.get("localcoder.prompt_format")
    if recorded is not None:
        if recorded not in FORMATS:
            raise LocalcoderError(f"this model's prompt format {recorded!r} is not one localcoder knows")
        return FORMATS[recorded]
    if all(vocab.single_token(text) is not None for text in _CODEGEN_SENTINELS):
        return FORMATS["codegen-infill"]
    if all(vocab.metadata_token(key) is not None for key in _FIM_KEYS):
        return FORMATS["fim"]
    return FORMATS["left-to-right"]


def _part_ids(part: str, vocab: Vocabulary) -> list[int]:
    if part.startswith("@"):
        token = vocab.metadata_token(part[1:])
        if token is None:
            raise LocalcoderError(f"the model's GGUF names no {part[1:]} token")
        return [token]
    token = vocab.single_token(part)
    if token is None:
        raise LocalcoderError(f"the model's vocabulary has no single token {part!r}")
    return [token]


def stop_ids(fmt: PromptFormat, vocab: Vocabulary) -> frozenset[int]:
    ids: set[int] = set()
    for part in fmt.stop:
        ids |= vocab.end_of_generation if part == "@eog" else set(_part_ids(part, vocab))
    return frozenset(ids)


@dataclass
class Prompt:
    ids: list[int]
    prefix: str
    suffix: str
    format: PromptFormat
    trimmed_prefix_lines: int = 0
    trimmed_suffix_lines: int = 0
    notes: list[str] = field(default_factory=list)


def assemble(fmt: PromptFormat, vocab: Vocabulary, prefix: str, suffix: str) -> list[int]:
    ids: list[int] = []
    for part in fmt.parts:
        if part == PREFIX:
            ids += vocab.tokenize(prefix) if prefix else []
        elif part == SUFFIX:
            ids += vocab.tokenize(suffix) if suffix else []
        else:
            ids += _part_ids(part, vocab)
    return ids


def build_prompt(fmt: PromptFormat, vocab: Vocabulary, prefix: str, suffix: str, budget: int) -> Prompt:
    """Token ids of the prompt, at most `budget` long.

    When the text is too long, whole lines farthest from the cursor leave first
    (top of the prefix, bottom of the suffix); the cursor's own line stays.
    """
    if not fmt.infill:
        suffix = ""
    fixed = len(assemble(fmt, vocab, "", ""))
    if fixed >= budget:
        raise LocalcoderError(f"no room for the prompt: the window leaves {budget} tokens after generation")
    whole = assemble(fmt, vocab, prefix, suffix)
    if len(whole) <= budget:  # the common case: no per-line accounting needed
        return _prompt(Prompt(whole, prefix, suffix, fmt))
    head = prefix.splitlines(keepends=True)
    cursor_head = head.pop() if head and not head[-1].endswith("\n") else ""
    tail = suffix.splitlines(keepends=True)
    cursor_tail = tail.pop(0) if tail else ""
    costs_head = [len(vocab.tokenize(line)) for line in head]
    costs_tail = [len(vocab.tokenize(line)) for line in tail]
    estimate = fixed + sum(costs_head) + sum(costs_tail) + len(vocab.tokenize(cursor_head + cursor_tail))
    first, last = 0, len(tail)  # head[first:] and tail[:last] are kept
    while True:
        kept_prefix = "".join(head[first:]) + cursor_head
        kept_suffix = cursor_tail + "".join(tail[:last])
        if estimate <= budget:
            ids = assemble(fmt, vocab, kept_prefix, kept_suffix)
            if len(ids) <= budget:
                break
        if first == len(head) and last == 0:
            raise LocalcoderError(
                f"the cursor's line alone is longer than the {budget}-token window; lower --max-tokens or raise --ctx"
            )
        head_distance = len(head) - first  # lines between the top kept prefix line and the cursor
        if first < len(head) and (last == 0 or head_distance >= last):
            estimate -= costs_head[first]
            first += 1
        else:
            last -= 1
            estimate -= costs_tail[last]
        estimate = max(estimate, 0)
    return _prompt(Prompt(ids, kept_prefix, kept_suffix, fmt, first, len(tail) - last))


def _prompt(prompt: Prompt) -> Prompt:
    if not prompt.format.infill:
        prompt.notes.append("this model cannot infill: completing left to right from the text before the cursor")
    if prompt.trimmed_prefix_lines or prompt.trimmed_suffix_lines:
        prompt.notes.append(
            f"the file is longer than the window: left out {prompt.trimmed_prefix_lines} line(s) above"
            f" and {prompt.trimmed_suffix_lines} below"
        )
    return prompt
