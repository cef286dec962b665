"""Prompt formats as data, and the one function that turns prefix + suffix into token ids.

A format is a sequence of parts: the placeholders {prefix} and {suffix}, a
special token's text (looked up as one token in the model's vocabulary), or
"@name", a token id the GGUF names in its metadata (tokenizer.ggml.name_token_id).
"@eog" in a stop list means the model's own end-of-generation set. A format also
names its end-of-middle token (what ends an infill as finished, not cut short);
`prompt_budget` is the one place the window is split between prompt and generation.

Prompts are built as token ids, never as one string handed to llama.cpp:
llama-cpp-python's `suffix=` path puts token id 0 where FIM tokens belong.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from ggufkit import metadata
from localcoder.errors import LocalcoderError

PREFIX = "{prefix}"
STABLE_LINES = 8  # the grid of the stable layout: small enough that the model sees the usual infill shape
STABLE_SLACK = 64  # tokens a trimmed stable prompt leaves free for typing
SUFFIX = "{suffix}"


@dataclass(frozen=True)
class PromptFormat:
    name: str
    parts: tuple[str, ...]
    stop: tuple[str, ...]
    infill: bool
    description: str
    end_of_middle: str | None = None  # the stop token that means "the middle is complete"


FORMATS: dict[str, PromptFormat] = {
    format.name: format
    for format in (
        PromptFormat(
            "codegen-infill",
            (PREFIX, "<mask_1>", SUFFIX, "<|endoftext|>", "<sep>", "<mask_1>"),
            ("<eom>", "<|endoftext|>"),
            infill=True,
            description="CodeGen2 / CodeGen2.5: prefix <mask_1> suffix <|endoftext|> <sep> <mask_1>, ended by <eom>",
            end_of_middle="<eom>",
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
PROMPT_LAYOUTS = {"stable": STABLE_LINES, "cursor": 0}  # the stable_lines of build_prompt, by name
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
    recorded = vocab.metadata.get(metadata.PROMPT_FORMAT)
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


def end_of_middle_id(fmt: PromptFormat, vocab: Vocabulary) -> int | None:
    return _part_ids(fmt.end_of_middle, vocab)[0] if fmt.end_of_middle else None


def prompt_budget(n_ctx: int, max_tokens: int) -> int:
    """Tokens the prompt may take: the window less what generation may add."""
    return n_ctx - max_tokens


@dataclass
class Prompt:
    ids: list[int]
    prefix: str
    suffix: str
    format: PromptFormat
    trimmed_prefix_lines: int = 0
    trimmed_suffix_lines: int = 0
    notes: list[str] = field(default_factory=list)
    written: str = ""  # the start of the middle, already in the file: follows the format's last part


def assemble(
    fmt: PromptFormat, vocab: Vocabulary, prefix: str, suffix: str, written: str = "", lead: list[int] | None = None
) -> list[int]:
    """The prompt's ids: `lead` (context snippets, see snippets.py), then the format's parts, then `written`."""
    ids: list[int] = list(lead or [])
    for part in fmt.parts:
        if part == PREFIX:
            ids += vocab.tokenize(prefix) if prefix else []
        elif part == SUFFIX:
            ids += vocab.tokenize(suffix) if suffix else []
        else:
            ids += _part_ids(part, vocab)
    return ids + (vocab.tokenize(written) if written else [])


@dataclass
class _Block:
    text: str
    lines: int
    cost: int


def _blocks(lines: list[str], step: int, vocab: Vocabulary, from_end: bool = False) -> list[_Block]:
    """Lines grouped into the blocks that trimming removes whole: single lines, or a grid of `step` lines.

    The grid counts from the top of the file above the cursor and from its end below, so that lines typed
    at the cursor move neither.
    """
    groups: list[list[str]] = []
    for index, line in enumerate(lines):
        position = len(lines) - index if from_end else index
        if not groups or step <= 1 or position % step == 0:
            groups.append([])
        groups[-1].append(line)
    return [_Block("".join(group), len(group), len(vocab.tokenize("".join(group)))) for group in groups]


def build_prompt(
    fmt: PromptFormat,
    vocab: Vocabulary,
    prefix: str,
    suffix: str,
    budget: int,
    stable_lines: int = 0,
    lead: list[int] | None = None,
) -> Prompt:
    """Token ids of the prompt, at most `budget` long; `lead` ids (context snippets) come first, untrimmed.

    stable_lines = 0 splits at the cursor, exactly as the model card shows. With
    stable_lines = N (infill formats only) the split moves up to the last line
    whose number is a multiple of N: the lines from there to the cursor go after
    the format's last token, as the start of the middle the model is writing.
    Typing, or pressing Enter, then only appends tokens to the prompt, so a
    resident model (`localcoder serve`) re-reads just those.

    When the text is too long, whole lines farthest from the cursor leave first
    (top of the prefix, bottom of the suffix), in blocks of N lines when N > 0
    so that the window does not move while the cursor does; the cursor's own
    line stays.
    """
    if not fmt.infill:
        suffix = ""
        stable_lines = 0
    fixed = len(assemble(fmt, vocab, "", "", lead=lead))
    if fixed >= budget:
        raise LocalcoderError(f"no room for the prompt: the window leaves {budget} tokens after generation")
    head = prefix.splitlines(keepends=True)
    cursor_head = head.pop() if head and not head[-1].endswith("\n") else ""
    written = ""
    if stable_lines > 0:
        anchor = len(head) - len(head) % stable_lines
        written = "".join(head[anchor:]) + cursor_head
        head, cursor_head = head[:anchor], ""
    whole_prefix = "".join(head) + cursor_head
    whole = assemble(fmt, vocab, whole_prefix, suffix, written, lead)
    if len(whole) <= budget:  # the common case: no per-line accounting needed
        return _prompt(Prompt(whole, whole_prefix, suffix, fmt, written=written))
    tail = suffix.splitlines(keepends=True)
    cursor_tail = tail.pop(0) if tail else ""
    above = _blocks(head, stable_lines, vocab)
    below = _blocks(tail, stable_lines, vocab, from_end=True)
    estimate = fixed + sum(b.cost for b in above) + sum(b.cost for b in below)
    estimate += len(vocab.tokenize(cursor_head + cursor_tail + written))
    # Trimmed stable prompts leave room to type before the next block must go, so the window holds still.
    target = max(fixed + 1, budget - min(STABLE_SLACK, budget // 8)) if stable_lines else budget
    first, last = 0, len(below)  # above[first:] and below[:last] are kept
    while True:
        kept_prefix = "".join(b.text for b in above[first:]) + cursor_head
        kept_suffix = cursor_tail + "".join(b.text for b in below[:last])
        if estimate <= target:
            ids = assemble(fmt, vocab, kept_prefix, kept_suffix, written, lead)
            if len(ids) <= target:
                break
        if first == len(above) and last == 0:
            raise LocalcoderError(
                f"the cursor's line alone is longer than the {budget}-token window; lower --max-tokens or raise --ctx"
            )
        distance_above = sum(b.lines for b in above[first:])  # lines between the top kept line and the cursor
        distance_below = sum(b.lines for b in below[:last])
        if first < len(above) and (last == 0 or distance_above >= distance_below):
            estimate -= above[first].cost
            first += 1
        else:
            last -= 1
            estimate -= below[last].cost
        estimate = max(estimate, 0)
    trimmed_above = sum(b.lines for b in above[:first])
    trimmed_below = sum(b.lines for b in below[last:])
    return _prompt(Prompt(ids, kept_prefix, kept_suffix, fmt, trimmed_above, trimmed_below, written=written))


def _prompt(prompt: Prompt) -> Prompt:
    if not prompt.format.infill:
        prompt.notes.append("this model cannot infill: completing left to right from the text before the cursor")
    if prompt.trimmed_prefix_lines or prompt.trimmed_suffix_lines:
        prompt.notes.append(
            f"the file is longer than the window: left out {prompt.trimmed_prefix_lines} line(s) above"
            f" and {prompt.trimmed_suffix_lines} below"
        )
    return prompt
