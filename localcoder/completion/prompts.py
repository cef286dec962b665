"""Prompt formats as data, and the one function that turns prefix + suffix into token ids.

A format is a sequence of parts: the placeholders {prefix} and {suffix}, a
special token's text (looked up as one token in the model's vocabulary), or
"@name", a token id the GGUF names in its metadata (tokenizer.ggml.name_token_id).
"@eog" in a stop list means the model's own end-of-generation set. A format also
names its end-of-middle token (what ends an infill as finished, not cut short);
budget.PromptBudget is the one place the window is split between prompt, snippets and generation.

Prompts are built as token ids, never as one string handed to llama.cpp:
llama-cpp-python's `suffix=` path puts token id 0 where FIM tokens belong.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
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


def check_layout(name: str) -> str:
    """`name` when it is a prompt layout, else the one-line error every front end shows."""
    if name not in PROMPT_LAYOUTS:
        raise LocalcoderError(f"prompt layout must be one of {', '.join(PROMPT_LAYOUTS)}, not {name!r}")
    return name


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

    @functools.cached_property
    def count_tokens(self) -> Callable[[str], int]:
        """A text's length in tokens, remembered for recent texts: the context stage weighs the same snippets at
        every keystroke, and llama.cpp's tokenizer behind `tokenize` is the slow part of a warm request."""
        return functools.lru_cache(maxsize=8192)(lambda text: len(self.tokenize(text)))

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
    lead: tuple[int, ...] = ()  # the context snippets' ids before it (infill.prepare)


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


# A token covers a handful of characters; a text of more than this many characters a token is tokenized only in
# part to learn that it does not fit, so that a huge line or file costs what is near the cursor, not its size.
_CHARS_PER_TOKEN_CAP = 16


@dataclass
class _Block:
    text: str
    lines: int
    cost: int


def _count(vocab: Vocabulary, text: str, limit: int) -> int:
    """Tokens of `text`, exactly when at most `limit`; past it, any number above `limit`."""
    if not text:
        return 0
    cap = (limit + 1) * _CHARS_PER_TOKEN_CAP
    if len(text) > cap:
        head = len(vocab.tokenize(text[:cap]))
        if head > limit:
            return head
    return len(vocab.tokenize(text))


def _line_starts_back(text: str, end: int, count: int) -> int:
    """The index where the line `count` lines above the one starting at `end` starts (`end` is a line start)."""
    for _ in range(count):
        end = text.rfind("\n", 0, end - 1) + 1 if end > 0 else 0
    return end


def _blocks_above(text: str, lines: int, step: int) -> Iterator[tuple[str, int]]:
    """(text, line count) of the blocks above the cursor, nearest first. `text` is whole lines; the grid of
    `step` lines counts from the top of the file, so that lines typed at the cursor do not move it."""
    end, index = len(text), lines
    while index > 0:
        first = (index - 1) // step * step if step > 1 else index - 1
        start = _line_starts_back(text, end, index - first)
        yield text[start:end], index - first
        end, index = start, first


def _blocks_below(text: str, lines: int, step: int) -> Iterator[tuple[str, int]]:
    """The same below the cursor, nearest first; the grid counts from the end of the file."""
    start, index = 0, 0
    while index < lines:
        count = ((lines - index) % step or step) if step > 1 else 1
        end = start
        for _ in range(count):
            found = text.find("\n", end)
            end = len(text) if found == -1 else found + 1
        yield text[start:end], count
        start, index = end, index + count


def _line_count(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


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
    resident model (`localcoder serve`) re-reads just those. When those lines
    alone are longer than the window, the prompt splits at the cursor instead.

    When the text is too long, whole lines farthest from the cursor leave first
    (top of the prefix, bottom of the suffix), in blocks of N lines when N > 0
    so that the window does not move while the cursor does; the cursor's own
    line stays. Lines are tokenized from the cursor outward until the window is
    full, so the cost follows the window, not the file's size.
    """
    if not fmt.infill:
        suffix = ""
        stable_lines = 0
    fixed = len(assemble(fmt, vocab, "", "", lead=lead))
    if fixed >= budget:
        raise LocalcoderError(f"no room for the prompt: the window leaves {budget} tokens after generation")
    cut = prefix.rfind("\n") + 1
    head, cursor_head = prefix[:cut], prefix[cut:]
    head_lines = head.count("\n")
    written = ""
    if stable_lines > 0:
        anchor = head_lines - head_lines % stable_lines
        start = _line_starts_back(head, len(head), head_lines - anchor)
        written = head[start:] + cursor_head
        head, cursor_head, head_lines = head[:start], "", anchor
    if len(prefix) + len(suffix) <= budget * _CHARS_PER_TOKEN_CAP:  # small enough to try whole
        whole_prefix = head + cursor_head
        whole = assemble(fmt, vocab, whole_prefix, suffix, written, lead)
        if len(whole) <= budget:  # the common case: no per-line accounting needed
            return _prompt(Prompt(whole, whole_prefix, suffix, fmt, written=written))
    newline = suffix.find("\n")
    cursor_tail, tail = (suffix, "") if newline == -1 else (suffix[: newline + 1], suffix[newline + 1 :])
    # Trimmed stable prompts leave room to type before the next block must go, so the window holds still.
    target = max(fixed + 1, budget - min(STABLE_SLACK, budget // 8)) if stable_lines else budget
    core = fixed + _count(vocab, cursor_head + cursor_tail + written, target)
    if core > target:
        if written:
            prompt = build_prompt(fmt, vocab, prefix, suffix, budget, 0, lead)
            prompt.notes.insert(
                0,
                f"the {_line_count(written)} line(s) from the stable layout's last multiple-of-{stable_lines} line"
                " to the cursor are longer than the window: split at the cursor instead",
            )
            return prompt
        raise LocalcoderError(
            f"the cursor's line alone is longer than the {budget}-token window; lower --max-tokens or raise --ctx"
        )
    above: list[_Block] = []
    below: list[_Block] = []
    added: list[list[_Block]] = []  # which list each block went to, in the order they were added
    upward = _blocks_above(head, head_lines, stable_lines)
    downward = _blocks_below(tail, _line_count(tail), stable_lines)
    next_above, next_below = next(upward, None), next(downward, None)
    estimate = core
    lines_above = lines_below = 0  # lines kept on each side so far
    while next_above is not None or next_below is not None:
        distance_above = lines_above + (next_above[1] if next_above else 0)
        distance_below = lines_below + (next_below[1] if next_below else 0)
        take_above = next_below is None or (next_above is not None and distance_above < distance_below)
        text, lines = next_above if take_above else next_below  # type: ignore[misc]
        cost = _count(vocab, text, target - estimate)
        if estimate + cost > target:
            break
        block, side = _Block(text, lines, cost), above if take_above else below
        side.append(block)
        added.append(side)
        estimate += cost
        if take_above:
            lines_above += lines
            next_above = next(upward, None)
        else:
            lines_below += lines
            next_below = next(downward, None)
    while True:  # blocks tokenized apart may take a few more tokens joined: drop the last ones added until it fits
        kept_prefix = "".join(b.text for b in reversed(above)) + cursor_head
        kept_suffix = cursor_tail + "".join(b.text for b in below)
        ids = assemble(fmt, vocab, kept_prefix, kept_suffix, written, lead)
        over = len(ids) - target
        if over <= 0:
            break
        if not added:
            raise LocalcoderError(
                f"the cursor's line alone is longer than the {budget}-token window; lower --max-tokens or raise --ctx"
            )
        while over > 0 and added:
            over -= added.pop().pop().cost or 1
    trimmed_above = head_lines - sum(b.lines for b in above)
    trimmed_below = _line_count(tail) - sum(b.lines for b in below)
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
