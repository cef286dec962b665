"""A chat session: instructions in, code out, the program growing turn by turn.

Base code models (every CodeGen) continue the program: each instruction is
appended as a comment and the model writes that turn's code, cut by MTPB's
multi-turn rules (localcoder.chat.turns). Models whose GGUF carries a chat
template get the conversation as messages instead. The KV cache is reused
across turns: llama.cpp keeps what it has read, and a turn evaluates only the
tokens that differ from the previous context.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from localcoder.chat.turns import Program, Turn, truncate_turn
from localcoder.completion.backends import run_job
from localcoder.completion.generate import SAMPLING_BOUNDS, AskCut, Job, Sampling
from localcoder.completion.model import LoadedModel
from localcoder.completion.prompts import FORMATS, stop_ids
from localcoder.errors import LocalcoderError
from localcoder.files import write_atomically
from localcoder.sandbox import Limits, RunResult, run_program
from localcoder.source import read_source

_FENCE = re.compile(r"```[\w+-]*\n(.*?)(?:```|\Z)", re.DOTALL)


@dataclass
class TurnStats:
    instruction: str
    prompt_tokens: int
    evaluated_tokens: int  # prompt tokens llama.cpp had to read: the rest came from the KV cache
    generated_tokens: int
    prompt_ms: float
    generate_ms: float
    left_out_turns: int  # oldest turns not in the model's context because the program outgrew the window


@dataclass(frozen=True)
class TurnResult:
    """One answered instruction: the turn as the program holds it, its figures, and why generation stopped."""

    turn: Turn
    stats: TurnStats
    stop_reason: str


@dataclass
class ChatState:
    """Everything /undo can go back to: the text the turns build on, and the answered turns, in order."""

    base: str
    answered: list[TurnResult] = field(default_factory=list)

    @property
    def turns(self) -> list[Turn]:
        return [answer.turn for answer in self.answered]


class ChatSession:
    def __init__(
        self,
        model: LoadedModel,
        lang: str = "python",
        preamble: str = "",
        sampling: Sampling | None = None,
        unsafe_no_sandbox: bool = False,
    ):
        self.model = model
        self.lang = lang
        self.sampling = sampling or Sampling(temperature=0.2, top_p=0.95, max_tokens=256)
        self.state = ChatState(preamble)
        self.history: list[ChatState] = []  # states replaced by /edit, /load, /reset, for /undo
        self.stats: list[TurnStats] = []  # every turn ever generated, undone and retried ones too (/stats)
        self.run_limits = Limits(seconds=10.0, memory_mb=1024)
        self.unsafe_no_sandbox = unsafe_no_sandbox  # /run without the OS sandbox: the user said so
        self._seed_offset = 0

    # The program ---------------------------------------------------------------------------

    @property
    def program(self) -> Program:
        return Program(self.lang, list(self.state.turns))

    def text(self) -> str:
        return self.program.text(self.state.base)

    def replace_text(self, text: str) -> None:
        """The program becomes `text` (from /edit or /load); later turns build on it."""
        self.history.append(self.state)
        self.state = ChatState(text)

    def reset(self, preamble: str = "") -> None:
        self.replace_text(preamble)

    def undo(self) -> str:
        if self.state.answered:
            turn = self.state.answered.pop().turn
            return f"removed the turn {turn.instruction!r}"
        if self.history:
            self.state = self.history.pop()
            return "restored the program as it was before the last edit, load or reset"
        raise LocalcoderError("nothing to undo")

    def save(self, path: Path, overwrite: bool = False) -> None:
        """Write the program atomically; refuse to replace a file unless told to."""
        if path.is_dir():
            raise LocalcoderError(f"{path} is a directory")
        if path.exists() and not overwrite:
            raise LocalcoderError(f"{path} exists")
        try:
            write_atomically(path, self.text().encode("utf-8"))
        except OSError as exc:
            raise LocalcoderError(f"cannot save to {path}: {exc.strerror or exc}") from None

    def load(self, path: Path) -> None:
        """Start from the program in `path` (missing, binary or non-UTF-8 files are refused by read_source)."""
        text = read_source(path).text
        self.replace_text(text if text.endswith("\n") or not text else text + "\n")

    def run(self) -> RunResult:
        """Run the program in the OS sandbox (localcoder.sandbox); SandboxUnavailable where there is none."""
        return run_program(self.text(), self.run_limits, unsafe_no_sandbox=self.unsafe_no_sandbox)

    def set_option(self, key: str, value: str) -> None:
        """/set temperature|top_p|max_tokens VALUE; ValueError for a bad value."""
        low, high = SAMPLING_BOUNDS.get(key, (0.0, 0.0))
        if key == "temperature" and low <= float(value) <= high:
            self.sampling = replace(self.sampling, temperature=float(value))
        elif key == "top_p" and low < float(value) <= high:  # 0 would keep no token at all
            self.sampling = replace(self.sampling, top_p=float(value))
        elif key == "max_tokens" and 0 < int(value) < self.model.n_ctx:
            self.sampling = replace(self.sampling, max_tokens=int(value))
        elif key in ("temperature", "top_p", "max_tokens"):
            raise ValueError(value)
        else:
            raise LocalcoderError(f"/set knows temperature, top_p and max_tokens, not {key!r}")

    # Generation ----------------------------------------------------------------------------

    def ask(self, instruction: str, on_text: Callable[[str], None] | None = None) -> TurnResult:
        """Generate the code for one instruction and append it to the program."""
        instruction = instruction.strip()
        if not instruction:
            raise LocalcoderError("an empty instruction")
        if self.model.chat_template:
            code, stats, reason = self._ask_with_template(instruction, on_text)
        else:
            code, stats, reason = self._continue_program(instruction, on_text)
        answer = TurnResult(Turn(instruction, code), stats, reason)
        self.state.answered.append(answer)
        self.stats.append(stats)
        return answer

    def retry(self, on_text: Callable[[str], None] | None = None) -> TurnResult:
        """Resample the last turn (with another seed)."""
        if not self.state.answered:
            raise LocalcoderError("no turn to retry yet")
        last = self.state.answered.pop()
        self._seed_offset += 1
        try:
            return self.ask(last.turn.instruction, on_text)
        except BaseException:
            self.state.answered.append(last)
            raise

    def _sampling(self) -> Sampling:
        return self.sampling.offset_seed(self._seed_offset)

    def _context(self, instruction: str) -> tuple[list[int], int]:
        """Prompt ids for the next turn; the oldest turns leave the context when the window is full."""
        budget = self.model.budget(self.sampling.max_tokens).window
        turns = self.state.turns
        for left_out in range(len(turns) + 1):
            text = Program(self.lang, turns[left_out:]).prompt_for(instruction, self.state.base)
            ids = self.model.vocab.tokenize(text)
            if len(ids) <= budget:
                return ids, left_out
        raise LocalcoderError(
            f"the program's start and this instruction alone exceed the {budget}-token window; /reset or /edit it"
        )

    def _continue_program(self, instruction: str, on_text: Callable[[str], None] | None) -> tuple[str, TurnStats, str]:
        ids, left_out = self._context(instruction)
        streamer = _LineStreamer(self.lang, on_text)
        stop = stop_ids(FORMATS["left-to-right"], self.model.vocab)  # the model's end-of-text tokens
        run = run_job(self.model.backend, Job(self.model.llm, ids, self._sampling(), stop), AskCut(streamer.feed))
        code = streamer.finish()
        reason = "cut" if run.stop_reason == "scope" else run.stop_reason
        evaluated = len(ids) - run.cached_tokens
        stats = TurnStats(instruction, len(ids), evaluated, run.tokens, run.prompt_ms, run.generate_ms, left_out)
        return code, stats, reason

    def _ask_with_template(self, instruction: str, on_text: Callable[[str], None] | None) -> tuple[str, TurnStats, str]:
        messages = [{"role": "system", "content": f"You write {self.lang} code. Reply with code only."}]
        if self.state.base:
            messages.append({"role": "user", "content": f"The program so far:\n{self.state.base}"})
        for turn in self.state.turns:
            messages += [{"role": "user", "content": turn.instruction}, {"role": "assistant", "content": turn.code}]
        messages.append({"role": "user", "content": instruction})
        job = Job(self.model.llm, [], self._sampling(), messages=messages)
        run = run_job(self.model.backend, job, _WholeReply(), on_text)
        fenced = _FENCE.search(run.text)
        code = (fenced.group(1) if fenced else run.text).strip("\n")
        stats = TurnStats(instruction, 0, 0, len(self.model.vocab.tokenize(run.text)), run.prompt_ms,
                          run.generate_ms, 0)  # fmt: skip
        return code, stats, "max_tokens" if run.stop_reason == "max_tokens" else "stop"


class _WholeReply:
    """A chat reply is kept whole (its code is taken from it afterwards) and shown as it comes."""

    stopped = False

    def feed(self, chunk: str) -> str:
        return chunk

    def finish(self) -> str:
        return ""


class _LineStreamer:
    """Shows complete lines of the turn as MTPB's truncation will keep them; asks to stop once it cuts."""

    def __init__(self, lang: str, on_text: Callable[[str], None] | None) -> None:
        self.lang = lang
        self.on_text = on_text
        self.raw = ""
        self.shown = ""

    def _show(self, text: str) -> None:
        if text.startswith(self.shown) and len(text) > len(self.shown):
            if self.on_text:
                self.on_text(text[len(self.shown) :])
            self.shown = text

    def feed(self, chunk: str) -> bool:
        self.raw += chunk
        complete = self.raw[: self.raw.rfind("\n") + 1]
        kept = truncate_turn(complete, self.lang)
        self._show(kept.rstrip("\n"))
        return len(kept) == len(complete)  # a cut inside the complete lines ends the turn

    def finish(self) -> str:
        """The turn's code exactly as MTPB keeps it (trailing newlines included; the display drops them)."""
        final = truncate_turn(self.raw, self.lang)
        self._show(final.rstrip("\n"))
        return final
