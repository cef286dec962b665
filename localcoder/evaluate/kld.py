"""How far a quantized GGUF's next-token distributions are from a base GGUF's, on the same token sequences.

The base is loaded once: for every scored position its top-k token ids and log-probabilities and the
log-probability of the token that really comes next are kept (numpy arrays, positions x k), then it is freed
and each model is loaded in turn, so only one model is ever in memory.

KL(base || model) is taken over the base's top-k tokens plus one "rest" bucket holding the remaining mass of
each distribution. That coarsened distribution is a function of the full one, so by the data-processing
inequality the figure is a lower bound of the full-vocabulary KL (llama.cpp's --kl-divergence stores all
logits instead); it is exactly 0 when the two models give bit-identical logits. Log-softmax is in float64.

Infill sequences are the model's own infill prompt (prompts.FORMATS through infill.prepare, split at the
cursor) followed by the middle's tokens: only the positions predicting middle tokens are scored; the `<eom>`
after the middle is not part of the sequence and is not scored.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from localcoder.completion.model import LoadedModel
from localcoder.errors import LocalcoderError
from localcoder.evaluate.corpus import CorpusFile, infill_cases
from localcoder.runtime import LoadOptions, load_model

MODES = ("left-to-right", "infill", "both")
Progress = Callable[[str, int, int], None]  # (what, sequences done, sequences in all)


@dataclass(frozen=True)
class Sequence:
    mode: str  # "left-to-right" | "infill"
    ids: tuple[int, ...]
    scored: tuple[int, ...]  # indices i into ids whose token is predicted from the logits at i - 1


@dataclass
class BaseDistributions:
    """What is kept of the base: per scored position (in sequence order), top-k ids and log-probs."""

    path: Path
    top_ids: np.ndarray  # (positions, k) int32, most likely first
    top_logp: np.ndarray  # (positions, k) float64
    actual_logp: np.ndarray  # (positions,) float64
    modes: np.ndarray  # (positions,) bool: True for infill positions
    seconds: float

    @property
    def stored_bytes(self) -> int:
        return sum(a.nbytes for a in (self.top_ids, self.top_logp, self.actual_logp, self.modes))


@dataclass
class ModeScore:
    mode: str
    tokens: int
    mean_kld: float
    p99_kld: float
    top1_agreement: float
    ppl_ratio: float


@dataclass
class ModelScore:
    model: str
    path: str
    seconds: float
    peak_rss_bytes: int  # this process's peak so far (one model loaded at a time)
    modes: list[ModeScore] = field(default_factory=list)


@dataclass
class KldReport:
    base: str
    corpus: str
    mode: str
    top_k: int
    ctx: int
    sequences: int
    tokens: int
    base_seconds: float
    base_stored_bytes: int
    models: list[ModelScore] = field(default_factory=list)


@dataclass(frozen=True)
class KldRequest:
    base: Path
    models: tuple[Path, ...]
    corpus: list[CorpusFile]
    corpus_name: str
    mode: str = "both"
    top_k: int = 32
    ctx: int = 512
    limit: int = 4096  # most tokens scored per mode
    threads: int | None = None
    gpu_layers: int | None = None


def build_sequences(model: LoadedModel, request: KldRequest) -> list[Sequence]:
    """The token sequences and scored positions: the same for every model with the same vocabulary."""
    sequences: list[Sequence] = []
    if request.mode in ("left-to-right", "both"):
        sequences += _left_to_right(model, request)
    if request.mode in ("infill", "both"):
        if not model.format.infill:
            raise LocalcoderError(f"{model.path.name}: its prompt format {model.format.name} has no infill")
        sequences += _infill(model, request)
    if not sequences:
        raise LocalcoderError("the corpus gave no tokens to score")
    return sequences


def _left_to_right(model: LoadedModel, request: KldRequest) -> list[Sequence]:
    out, budget = [], request.limit
    for item in request.corpus:
        ids = model.vocab.tokenize(item.text)
        for start in range(0, len(ids), request.ctx):
            chunk = ids[start : start + request.ctx]
            scored = tuple(range(1, min(len(chunk), budget + 1)))
            if not scored:
                continue
            out.append(Sequence("left-to-right", tuple(chunk[: scored[-1] + 1]), scored))
            budget -= len(scored)
            if budget <= 0:
                return out
    return out


def _infill(model: LoadedModel, request: KldRequest) -> list[Sequence]:
    from localcoder.completion.infill import InfillInput, prepare

    out, budget = [], request.limit
    for case in infill_cases(request.corpus):
        middle = model.vocab.tokenize(case.middle)[:budget]
        if not middle or len(middle) >= request.ctx // 2:
            continue
        prompt = prepare(model, InfillInput(case.prefix, case.suffix, layout="cursor"), model.budget(len(middle) + 1))
        ids = tuple(prompt.ids) + tuple(middle)
        out.append(Sequence("infill", ids, tuple(range(len(prompt.ids), len(ids)))))
        budget -= len(middle)
        if budget <= 0:
            break
    return out


def log_softmax_rows(model: LoadedModel, sequence: Sequence) -> np.ndarray:
    """float64 log-probabilities of the next token at every scored position: (len(scored), n_vocab)."""
    llm = model.llm
    llm.reset()
    llm.eval(list(sequence.ids))
    rows = np.asarray(llm.scores[: len(sequence.ids)])[[i - 1 for i in sequence.scored]].astype(np.float64)
    rows -= rows.max(axis=1, keepdims=True)
    return rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))


def collect_base(model: LoadedModel, sequences: list[Sequence], top_k: int, progress: Progress) -> BaseDistributions:
    started = time.perf_counter()
    ids, logps, actual, modes = [], [], [], []
    for done, sequence in enumerate(sequences):
        logp = log_softmax_rows(model, sequence)
        k = min(top_k, logp.shape[1])
        top = np.argpartition(-logp, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(logp, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        ids.append(top.astype(np.int32))
        logps.append(np.take_along_axis(logp, top, axis=1))
        actual.append(logp[np.arange(len(sequence.scored)), [sequence.ids[i] for i in sequence.scored]])
        modes.append(np.full(len(sequence.scored), sequence.mode == "infill"))
        progress(f"base {model.path.name}", done + 1, len(sequences))
    return BaseDistributions(
        model.path, np.concatenate(ids), np.concatenate(logps), np.concatenate(actual), np.concatenate(modes),
        time.perf_counter() - started,
    )  # fmt: skip


def _rest(logp: np.ndarray) -> np.ndarray:
    """log of the mass outside the given tokens (-inf where there is none)."""
    with np.errstate(divide="ignore"):
        return np.log(np.clip(1.0 - np.exp(logp).sum(axis=1), 0.0, 1.0))


def kl_top_k(base_logp: np.ndarray, model_logp: np.ndarray) -> np.ndarray:
    """Per position KL(base || model) over the base's top-k tokens and one rest bucket; both (positions, k)."""
    p_rest, q_rest = _rest(base_logp), _rest(model_logp)
    terms = np.exp(base_logp) * (base_logp - model_logp)
    with np.errstate(invalid="ignore", divide="ignore"):
        rest = np.where(p_rest == -np.inf, 0.0, np.exp(p_rest) * (p_rest - np.maximum(q_rest, -745.0)))
    return np.maximum(terms.sum(axis=1) + rest, 0.0)


def score_model(
    model: LoadedModel, sequences: list[Sequence], base: BaseDistributions, progress: Progress
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per scored position: KL, whether the argmax agrees with the base's, and the model's NLL."""
    kls, agree, nll, offset = [], [], [], 0
    for done, sequence in enumerate(sequences):
        logp = log_softmax_rows(model, sequence)
        n = len(sequence.scored)
        top = base.top_ids[offset : offset + n]
        kls.append(kl_top_k(base.top_logp[offset : offset + n], np.take_along_axis(logp, top, axis=1)))
        agree.append(logp.argmax(axis=1) == top[:, 0])
        nll.append(-logp[np.arange(n), [sequence.ids[i] for i in sequence.scored]])
        offset += n
        progress(model.path.name, done + 1, len(sequences))
    return np.concatenate(kls), np.concatenate(agree), np.concatenate(nll)


def summarise(base: BaseDistributions, kls: np.ndarray, agree: np.ndarray, nll: np.ndarray) -> list[ModeScore]:
    scores = []
    for mode, mask in (("left-to-right", ~base.modes), ("infill", base.modes)):
        if mask.any():
            ratio = float(np.exp(nll[mask].mean() + base.actual_logp[mask].mean()))
            scores.append(
                ModeScore(mode, int(mask.sum()), float(kls[mask].mean()), float(np.percentile(kls[mask], 99)),
                          float(agree[mask].mean()), ratio)
            )  # fmt: skip
    return scores


def peak_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _load(path: Path, request: KldRequest) -> LoadedModel:
    options = LoadOptions(ctx=request.ctx, threads=request.threads, gpu_layers=request.gpu_layers, logits_all=True)
    return load_model(path, options)


def run_kld(request: KldRequest, progress: Progress) -> KldReport:
    if request.mode not in MODES:
        raise LocalcoderError(f"--mode must be one of {', '.join(MODES)}, not {request.mode!r}")
    base_model = _load(request.base, request)
    sequences = build_sequences(base_model, request)
    base = collect_base(base_model, sequences, request.top_k, progress)
    base_info = (base_model.llm.n_vocab(), base_model.format.name, base_model.path)
    base_model.llm.close()  # free the base before the next model loads (its prompt cache holds llm too)
    del base_model
    report = KldReport(
        str(request.base), request.corpus_name, request.mode, request.top_k, request.ctx, len(sequences),
        len(base.actual_logp), base.seconds, base.stored_bytes,
    )  # fmt: skip
    for path in request.models:
        started = time.perf_counter()
        model = _load(path, request)
        _check_same_info(base_info, model, sequences, request)
        kls, agree, nll = score_model(model, sequences, base, progress)
        model.llm.close()
        del model
        score = ModelScore(path.name, str(path), time.perf_counter() - started, peak_rss())
        score.modes = summarise(base, kls, agree, nll)
        report.models.append(score)
    return report


def _check_same_info(base_info: tuple, model: LoadedModel, base_seqs: list[Sequence], request: KldRequest) -> None:
    n_vocab, fmt, path = base_info
    if model.llm.n_vocab() != n_vocab or model.format.name != fmt:
        raise LocalcoderError(
            f"{model.path.name} and the base {path.name} have different vocabularies or prompt formats"
            f" ({model.llm.n_vocab()} tokens, {model.format.name} vs {n_vocab} tokens, {fmt})"
        )
    if build_sequences(model, request) != base_seqs:
        raise LocalcoderError(f"{model.path.name} tokenizes the corpus differently from the base {path.name}")
