"""`eval kld`: KL divergence of quantized GGUFs from a base, with real conversions and real llama.cpp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convert.synthetic import LlamaShape
from localcoder.evaluate.corpus import CorpusFile, infill_cases, load_corpus
from localcoder.evaluate.kld import KldRequest, build_sequences, kl_top_k, run_kld
from localcoder.runtime import LoadOptions, load_model
from tests.checkpoints import TinySpec, save_checkpoint
from tests.helpers import localcoder
from tests.soft_bigram import head_table, logits, soft_bigram_model

pytest.importorskip("llama_cpp")
pytest.importorskip("torch")

QUANTS = ("F16", "Q8_0", "Q6_K", "Q4_K_M", "Q2_K")
# Rows of 256 and 512: every K-quant applies (no fallback to another type; checked below).
ORDER_SPEC = TinySpec(LlamaShape(hidden=256, intermediate=512, layers=2, heads=4), shards=1)
SOURCE = "".join(
    f"def f{n}(x):\n    y = x * {n} + {n % 7}\n    return y - {n}\n\n" for n in range(4)
)  # 16 lines: one infill case


def silent(*_: object) -> None:
    pass


def request(base: Path, *models: Path, corpus: list[CorpusFile] | None = None, **options) -> KldRequest:
    files = corpus or load_corpus(None)
    return KldRequest(base, models, files, "test", **options)


def test_a_file_against_itself_is_zero(tiny_f32_gguf: Path) -> None:
    # llama.cpp's CPU forward is deterministic for the same tokens and threads: the logits are bit-identical,
    # so KL is exactly 0 (the clamp at 0 cannot hide a negative: the top-k terms are each exactly 0).
    report = run_kld(request(tiny_f32_gguf, tiny_f32_gguf, limit=256, ctx=256), silent)
    (score,) = report.models
    assert [m.mode for m in score.modes] == ["left-to-right", "infill"]
    for mode in score.modes:
        assert mode.tokens > 50
        assert mode.mean_kld == 0.0 and mode.p99_kld == 0.0
        assert mode.top1_agreement == 1.0 and mode.ppl_ratio == 1.0
    assert report.base_stored_bytes == report.tokens * (32 * (4 + 8) + 8 + 1)


def test_top_k_kl_is_a_lower_bound_and_zero_for_the_same() -> None:
    rng = np.random.default_rng(0)
    p = rng.standard_normal((50, 1000)) * 3
    q = p + rng.standard_normal(p.shape) * 0.5
    lp, lq = (x - np.log(np.exp(x).sum(axis=1, keepdims=True)) for x in (p, q))
    full = (np.exp(lp) * (lp - lq)).sum(axis=1)
    top = np.argsort(-lp, axis=1)[:, :16]
    coarse = kl_top_k(np.take_along_axis(lp, top, 1), np.take_along_axis(lq, top, 1))
    assert np.all(coarse <= full + 1e-12) and coarse.mean() > 0.1 * full.mean()
    assert np.all(kl_top_k(np.take_along_axis(lp, top, 1), np.take_along_axis(lp, top, 1)) == 0.0)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from convert.pipeline import ConvertOptions, convert

    directory = tmp_path_factory.mktemp("kld-order")
    checkpoint = save_checkpoint(ORDER_SPEC, directory / "checkpoint")
    files = {"F32": convert(ConvertOptions(str(checkpoint), directory / "F32.gguf", outtype="f32")).output}
    for name in QUANTS:
        options = (
            ConvertOptions(str(checkpoint), directory / f"{name}.gguf", outtype="f16")
            if name == "F16"
            else (ConvertOptions(str(checkpoint), directory / f"{name}.gguf", outtype="f32", quant=name))
        )
        result = convert(options)
        assert not result.fallbacks, f"{name}: tensors written in another type: {result.fallbacks}"
        files[name] = result.output
    return files


def test_divergence_rises_with_coarser_quantization(quantized: dict[str, Path]) -> None:
    models = tuple(quantized[name] for name in QUANTS)
    report = run_kld(request(quantized["F32"], *models, limit=1024, ctx=256), silent)
    for mode in ("left-to-right", "infill"):
        klds = [next(m for m in model.modes if m.mode == mode).mean_kld for model in report.models]
        # Each step down roughly quadruples the quantization error's variance (and KL grows with it); on the same
        # ~1000 tokens for every model (a paired comparison) the means are far apart, so a factor of 1.5 between
        # neighbours is a wide margin, not a knife-edge.
        assert all(b > 1.5 * a for a, b in zip(klds, klds[1:], strict=False)), dict(zip(QUANTS, klds, strict=True))
        agreement = [next(m for m in model.modes if m.mode == mode).top1_agreement for model in report.models]
        assert agreement[0] > agreement[-1]


def test_infill_scores_only_the_middle(tmp_path: Path) -> None:
    base_head = head_table(1)
    base = soft_bigram_model(tmp_path / "base", base_head)
    corpus = [CorpusFile("f.py", SOURCE)]
    (case,) = infill_cases(corpus)
    options = dict(corpus=corpus, mode="infill", top_k=base_head.shape[0], ctx=512, limit=1000)
    loaded = load_model(base, LoadOptions(ctx=512))
    (sequence,) = build_sequences(loaded, request(base, base, **options))
    tok = loaded.vocab.tokenize
    prompt = tok(case.prefix) + tok("<mask_1>") + tok(case.suffix) + tok("<|endoftext|>") + tok("<sep><mask_1>")
    middle = tok(case.middle)
    assert list(sequence.ids) == prompt + middle and list(sequence.scored) == list(
        range(len(prompt), len(sequence.ids))
    )
    # The model differs from the base only after the tokens that precede a middle token, so a figure that took
    # in the prompt's positions too would be diluted by their zeros (most of them have other slots).
    before_middle = {sequence.ids[i - 1] for i in sequence.scored}
    model_head = head_table(1, noise_seed=2, noise=0.05, after=before_middle)
    model = soft_bigram_model(tmp_path / "model", model_head)
    report = run_kld(request(base, model, **options), silent)
    (score,) = report.models[0].modes

    def by_hand(positions: range) -> tuple[float, float]:
        kls, nlls = [], []
        for i in positions:
            previous = sequence.ids[i - 1]
            lp, lq = (x - np.logaddexp.reduce(x) for x in (logits(base_head, previous), logits(model_head, previous)))
            kls.append(float((np.exp(lp) * (lp - lq)).sum()))
            nlls.append(-lq[sequence.ids[i]] + lp[sequence.ids[i]])
        return float(np.mean(kls)), float(np.exp(np.mean(nlls)))

    expected_kl, expected_ratio = by_hand(range(len(prompt), len(sequence.ids)))
    assert score.tokens == len(middle) and report.sequences == 1
    # llama.cpp computes the logits in float32 (relative error ~1e-6); a KL of ~0.1 nats agrees far inside 1e-3.
    assert expected_kl > 0.01
    assert score.mean_kld == pytest.approx(expected_kl, rel=1e-3)
    assert score.ppl_ratio == pytest.approx(expected_ratio, rel=1e-3)
    # Negative control: scoring the prompt's positions too gives a clearly different figure.
    everything, _ = by_hand(range(1, len(sequence.ids)))
    assert everything < 0.8 * expected_kl


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return localcoder("eval", "kld", *args)


def test_cli_json(tiny_f32_gguf: Path) -> None:
    result = run_cli("--base", tiny_f32_gguf, tiny_f32_gguf, "--limit", "64", "--ctx", "128", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tokens"] > 0 and report["base_stored_bytes"] > 0
    (model,) = report["models"]
    assert {"model", "seconds", "peak_rss_bytes", "modes"} <= set(model)
    assert {m["mode"] for m in model["modes"]} == {"left-to-right", "infill"}
    assert set(model["modes"][0]) == {"mode", "tokens", "mean_kld", "p99_kld", "top1_agreement", "ppl_ratio"}


def test_cli_bad_input(tiny_f32_gguf: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from convert.pipeline import ConvertOptions, convert
    from tests.codegen1 import SPECS
    from tests.codegen1 import save_checkpoint as save_codegen

    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_text("hello")
    (tmp_path / "empty").mkdir()
    codegen1 = save_codegen(replace(SPECS["64-4heads-rot8"], n_layer=1), tmp_path / "codegen1")
    other_vocab = convert(ConvertOptions(str(codegen1), tmp_path / "codegen1.gguf", outtype="f32")).output
    cases = [
        (("--base", tmp_path / "missing.gguf", tiny_f32_gguf), "missing.gguf"),
        (("--base", not_gguf, tiny_f32_gguf), "not a GGUF"),
        (("--base", tiny_f32_gguf, tiny_f32_gguf, "--corpus", tmp_path / "empty"), "no non-empty"),
        (("--base", tiny_f32_gguf, tiny_f32_gguf, "--mode", "sideways"), "--mode"),
        (("--base", tiny_f32_gguf, other_vocab, "--limit", "32"), "different vocabularies"),
    ]
    for args, words in cases:
        result = run_cli(*args)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]  # one line
        assert words in error, result.stderr


def test_eval_help_mentions_kld_and_benchmarks_still_parse() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "localcoder", "eval", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    assert "eval kld" in help_text
    kld_help = run_cli("--help").stdout
    assert "Examples" in kld_help and "--base" in kld_help
    wrong = subprocess.run([sys.executable, "-m", "localcoder", "eval", "nosuchbench"], capture_output=True, text=True)
    assert wrong.returncode != 0 and "nosuchbench" in wrong.stderr and "kld" not in wrong.stderr.split(":")[0]


def test_the_table_shows_tiny_divergences_and_whole_model_names_at_80_columns() -> None:
    """A near-lossless quant's KLD is a few millionths: it must not print as 0.00000, and the model names, which
    differ only at their ends, must not be cut to "codegen…" on an 80-column terminal."""
    from io import StringIO

    from rich.console import Console

    from localcoder.evaluate.kld import KldReport, ModelScore, ModeScore
    from localcoder.render import render_kld

    names = ["codegen25-7b-multi_P.Q8_0.gguf", "codegen25-7b-multi_P.Q4_K_M.gguf"]
    report = KldReport("codegen25-7b-multi_P.F16.gguf", "built-in", "left-to-right", 32, 2048, 4, 4000, 1.0, 1 << 20)
    for name, kld in zip(names, (2.4e-06, 0.0123), strict=True):
        report.models.append(ModelScore(name, f"/m/{name}", 1.0, 1 << 30,
                                        [ModeScore("left-to-right", 4000, kld, kld * 9, 0.999, 1.0001)]))  # fmt: skip
    screen = StringIO()
    render_kld(Console(file=screen, width=80, highlight=False, emoji=False), report)
    text = screen.getvalue()
    assert "2.4e-06" in text and "0.0123" in text and "0.00000" not in text and "…" not in text, text
    assert max(map(len, text.splitlines())) <= 80 and "seconds" in text  # no column cropped off the right
    first_column = "".join(line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│"))
    assert names[0] + names[1] in first_column, text  # each name whole, folded over lines


def test_the_title_shows_a_corpus_path_with_brackets_as_written() -> None:
    """The title holds the user's corpus path: Rich markup in it is text, not style (negative control below)."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    from localcoder.evaluate.kld import KldReport
    from localcoder.render import render_kld

    corpus = "/src/[bold]app[/bold]"
    report = KldReport("/m/[red]base.gguf", corpus, "left-to-right", 32, 2048, 4, 4000, 1.0, 1 << 20)
    screen = StringIO()
    render_kld(Console(file=screen, width=200, highlight=False, emoji=False), report)
    assert f"[red]base.gguf: {corpus} corpus" in screen.getvalue(), screen.getvalue()
    control = StringIO()
    Console(file=control, width=200).print(Table(title=f"from {corpus}"))
    assert corpus not in control.getvalue()  # a plain f-string title would have eaten the markup
