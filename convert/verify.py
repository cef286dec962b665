"""Parity checks of a written GGUF against the package's reference and the source checkpoint.

Tokenizer: llama.cpp's tokenization of the GGUF vs the pure-Python CodeGen2.5
reference (itself tested against tiktoken) on a built-in corpus.
Logits (when torch and transformers are installed): llama.cpp vs the
transformers forward pass of the source checkpoint on a short prompt.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convert.errors import ConvertError
from convert.vocab.added_tokens import tokenizer_from_gguf_tokens
from convert.vocab.corpus import verification_corpus
from ggufkit import metadata
from ggufkit.llamacpp import detokenize, load_llama, tokenize
from ggufkit.vocab.codegen25 import codegen25_tokenizer

LOGIT_PROMPT = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n        return n\n'
F32_TOLERANCE = 1e-4
# At least this share of positions must have a reference top-1/top-2 margin above twice the bound,
# or the argmax check would say little.
MIN_DECISIVE_SHARE = 0.5


@dataclass
class TokenizerParity:
    strings: int
    equal: int
    round_trips: int
    first_mismatch: str | None = None

    @property
    def ok(self) -> bool:
        return self.equal == self.strings and self.round_trips == self.strings


@dataclass
class LogitParity:
    """Both models read the same tokens: the prompt and the reference's greedy continuation.

    Within a bound b on every logit, the argmax can only differ where the reference's top-1/top-2
    margin is at most 2b, so the argmax is compared at the positions with a larger margin (the
    decisive ones); a free-running greedy comparison would instead diverge for good at the first
    near-tie that rounding flips.
    """

    positions: int
    max_abs_diff: float
    argmax_agreement: float  # over all positions
    tolerance: float | None  # None: the file is lossy (f16, quantized); figures are informational
    decisive_positions: int | None = None
    decisive_argmax_equal: bool | None = None

    @property
    def ok(self) -> bool:
        if self.tolerance is None:
            return True
        return (
            self.max_abs_diff <= self.tolerance
            and bool(self.decisive_argmax_equal)
            and (self.decisive_positions or 0) >= MIN_DECISIVE_SHARE * self.positions
        )


@dataclass
class VerifyReport:
    gguf: str
    tokenizer: TokenizerParity
    logits: LogitParity | None
    logits_skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.tokenizer.ok and (self.logits is None or self.logits.ok)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


@dataclass
class _GGUFFacts:
    architecture: str
    family: str | None
    all_f32: bool
    tokens: list[str]
    token_types: list[int]


def _read_facts(gguf_path: Path) -> _GGUFFacts:
    from gguf import GGMLQuantizationType, GGUFReader

    try:
        reader = GGUFReader(gguf_path, "r")
    except (ValueError, OSError) as exc:
        raise ConvertError(f"{gguf_path}: not a valid GGUF file ({exc})") from None

    def text(key: str) -> str | None:
        field = reader.fields.get(key)
        return bytes(field.parts[field.data[0]]).decode() if field else None

    tokens_field, types_field = (
        reader.fields.get("tokenizer.ggml.tokens"),
        reader.fields.get("tokenizer.ggml.token_type"),
    )
    if tokens_field is None or types_field is None:
        raise ConvertError(f"{gguf_path}: has no tokenizer to verify")
    return _GGUFFacts(
        architecture=text("general.architecture") or "unknown",
        family=text(metadata.FAMILY),
        all_f32=all(t.tensor_type == GGMLQuantizationType.F32 for t in reader.tensors),
        tokens=[bytes(tokens_field.parts[i]).decode("utf-8", "replace") for i in tokens_field.data],
        token_types=[int(types_field.parts[i][0]) for i in types_field.data],
    )


def reference_tokenizer(facts: _GGUFFacts) -> Any:
    """CodeGen2.5: the package's own vocabulary. CodeGen1/2: GPT-2 plus the file's added tokens."""
    if facts.family == "codegen2.5":
        return codegen25_tokenizer()
    if facts.family in ("codegen1", "codegen2"):
        return tokenizer_from_gguf_tokens(facts.tokens, facts.token_types)
    raise ConvertError(
        f"no reference tokenizer for a GGUF of family {facts.family!r}; only CodeGen files can be verified"
    )


def verify_tokenizer(gguf_path: Path, facts: _GGUFFacts, corpus: list[str] | None = None) -> TokenizerParity:
    reference = reference_tokenizer(facts)
    llm = load_llama(gguf_path, vocab_only=True)
    strings = corpus if corpus is not None else verification_corpus()
    equal = round_trips = 0
    first_mismatch = None
    for text in strings:
        ids = tokenize(llm, text)
        if ids == reference.encode(text):
            equal += 1
        elif first_mismatch is None:
            first_mismatch = text
        if detokenize(llm, ids) == text.encode("utf-8"):
            round_trips += 1
    return TokenizerParity(len(strings), equal, round_trips, first_mismatch)


def verify_logits(gguf_path: Path, facts: _GGUFFacts, checkpoint_dir: Path, greedy_tokens: int = 8) -> LogitParity:
    import torch
    import transformers

    ids = reference_tokenizer(facts).encode(LOGIT_PROMPT)
    model = transformers.AutoModelForCausalLM.from_pretrained(checkpoint_dir, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        sequence = model.generate(
            torch.tensor([ids]), max_new_tokens=greedy_tokens, do_sample=False, pad_token_id=50256
        )[0].tolist()
        reference = model(torch.tensor([sequence])).logits[0].numpy()

    llm = load_llama(gguf_path, n_ctx=256, logits_all=True, type_k=0, type_v=0, n_threads=os.cpu_count() or 1)
    llm.eval(sequence)
    ours = np.asarray(llm.scores[: len(sequence)], dtype=np.float32)
    agree = ours.argmax(-1) == reference.argmax(-1)
    parity = LogitParity(
        positions=len(sequence),
        max_abs_diff=float(np.max(np.abs(ours - reference))),
        argmax_agreement=float(np.mean(agree)),
        tolerance=_tolerance(facts, reference) if facts.all_f32 else None,
    )
    if parity.tolerance is not None:
        top2 = np.partition(reference, -2, axis=-1)[:, -2:]
        decisive = top2[:, 1] - top2[:, 0] > 2 * parity.tolerance
        parity.decisive_positions = int(decisive.sum())
        parity.decisive_argmax_equal = bool(agree[decisive].all())
    return parity


def _tolerance(facts: _GGUFFacts, reference: np.ndarray) -> float:
    """1e-4 for the LLaMA graph; CodeGen1/2 run on phi2, whose CPU GELU reads a float16 table,
    which costs up to about 6e-4 of the largest logit on tiny models (see tests/test_codegen_convert.py)."""
    if facts.architecture == "llama":
        return F32_TOLERANCE
    return 1e-3 * float(np.abs(reference).max())


def verify(gguf_path: Path, checkpoint_dir: Path | None) -> VerifyReport:
    """Tokenizer parity always; logit parity when a checkpoint is given and torch is installed."""
    if not gguf_path.is_file():
        raise ConvertError(f"{gguf_path}: no such file")
    facts = _read_facts(gguf_path)  # parsing 51,200 tokens takes a while: once per verify
    tokenizer = verify_tokenizer(gguf_path, facts)
    if checkpoint_dir is None:
        return VerifyReport(str(gguf_path), tokenizer, None, "no checkpoint given")
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return VerifyReport(
            str(gguf_path),
            tokenizer,
            None,
            "install torch and transformers (pip install 'localcoder[verify]') to compare logits",
        )
    return VerifyReport(str(gguf_path), tokenizer, verify_logits(gguf_path, facts, checkpoint_dir))
