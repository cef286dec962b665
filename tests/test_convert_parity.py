"""Converted GGUFs run in the real llama.cpp with the same logits as transformers' forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convert.architectures import codegen25 as codegen25_arch
from convert.pipeline import ConvertOptions, convert
from convert.synthetic import LlamaShape
from ggufkit.vocab.codegen25 import codegen25_tokenizer
from tests.checkpoints import TinySpec, build_model, save_checkpoint
from tests.llama_run import assert_argmax_agrees, llama_logits

torch = pytest.importorskip("torch")
llama_cpp = pytest.importorskip("llama_cpp")

PROMPT = (
    "import numpy as np\n\n\ndef moving_average(values, window):\n"
    '    """Mean of each run of `window` values."""\n\tresult = []\n        # 8 spaces<mask_1>\n'
)
GREEDY_TOKENS = 12
F32_BOUND = 1e-4  # max |Δlogit| of an f32 GGUF with an f32 KV cache

SPECS = {
    "4-heads-3-shards": TinySpec(LlamaShape(hidden=64, intermediate=128, layers=2, heads=4)),
    "2-heads-1-bin": TinySpec(LlamaShape(hidden=96, intermediate=160, layers=1, heads=2), shards=1, seed=1),
    "gqa-safetensors": TinySpec(
        LlamaShape(hidden=128, intermediate=96, layers=2, heads=8), kv_heads=2, fmt="safetensors", shards=1, seed=2
    ),
    "2-safetensors-shards": TinySpec(
        LlamaShape(hidden=64, intermediate=192, layers=2, heads=2), fmt="safetensors", shards=2, seed=3
    ),
}


def reference(spec: TinySpec, ids: list[int]) -> tuple[np.ndarray, list[int]]:
    """transformers' logits over `ids` plus its own greedy continuation, and that whole sequence."""
    model, _ = build_model(spec)
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=GREEDY_TOKENS, do_sample=False, pad_token_id=50256)
        sequence = out[0].tolist()
        logits = model(torch.tensor([sequence])).logits[0].numpy()
    return logits, sequence


@pytest.fixture(scope="module")
def prompt_ids() -> list[int]:
    return codegen25_tokenizer().encode(PROMPT)


@pytest.mark.parametrize("name", list(SPECS))
def test_f32_logits_match_transformers(name: str, tmp_path: Path, prompt_ids: list[int]) -> None:
    spec = SPECS[name]
    checkpoint = save_checkpoint(spec, tmp_path / "ckpt")
    result = convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "m.gguf", outtype="f32"))
    expected_logits, sequence = reference(spec, prompt_ids)
    logits, _ = llama_logits(result.output, sequence, greedy_tokens=0)

    assert np.abs(expected_logits).max() > 1.0, "logits too small for the bound to mean anything"
    assert np.abs(logits - expected_logits).max() <= F32_BOUND
    assert_argmax_agrees(expected_logits, logits, F32_BOUND)
    assert not (checkpoint / "TOKENIZER_CODE_RAN").exists()


def test_f16_is_close_and_argmax_equal(tiny_checkpoint: Path, tmp_path: Path, prompt_ids: list[int]) -> None:
    from tests.conftest import TINY

    result = convert(ConvertOptions(source=str(tiny_checkpoint), output=tmp_path / "m.gguf", outtype="f16"))
    expected_logits, sequence = reference(TINY, prompt_ids)
    logits, _ = llama_logits(result.output, sequence, greedy_tokens=0)
    bound = 2e-3 * np.abs(expected_logits).max()
    assert np.abs(logits - expected_logits).max() <= bound
    assert_argmax_agrees(expected_logits, logits, bound)


def test_without_rotary_interleave_the_logits_are_wrong(
    tiny_checkpoint: Path, tmp_path: Path, prompt_ids: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The negative control: the Q/K reordering is what makes the f32 comparison pass."""
    from tests.conftest import TINY

    monkeypatch.setattr(codegen25_arch, "interleave_rotary_halves", lambda weight, n_heads: weight)
    result = convert(ConvertOptions(source=str(tiny_checkpoint), output=tmp_path / "wrong.gguf", outtype="f32"))
    expected_logits, sequence = reference(TINY, prompt_ids)
    logits, _ = llama_logits(result.output, sequence, greedy_tokens=0)
    assert np.abs(logits - expected_logits).max() > 1e-2


# Correlation of all logits with the f32 reference; measured on this tiny model:
# Q8_0 0.9995, Q6_K 0.997, Q5_K_M 0.990, Q4_K_M 0.956, Q4_0 0.944 (a wrong layout gives ~0).
QUANT_FLOORS = {"q8_0": 0.999, "Q8_0": 0.999, "Q6_K": 0.99, "Q5_K_M": 0.98, "Q4_K_M": 0.9, "Q4_0": 0.9}


@pytest.mark.parametrize("quant", list(QUANT_FLOORS))
def test_quantized_files_load_and_generate(quant: str, tmp_path: Path, prompt_ids: list[int]) -> None:
    # Rows of 256 so K-quants apply rather than fall back.
    spec = TinySpec(LlamaShape(hidden=256, intermediate=512, layers=1, heads=4))
    checkpoint = save_checkpoint(spec, tmp_path / "ckpt")
    options = ConvertOptions(source=str(checkpoint), output=tmp_path / "q.gguf")
    if quant == "q8_0":
        options.outtype = "q8_0"
    else:
        options.quant = quant
    result = convert(options)
    assert result.output.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"

    from localcoder.gguf_info import read_gguf

    summary = read_gguf(result.output)
    assert summary.file_type == quant.upper()
    logits, greedy = llama_logits(result.output, prompt_ids)
    assert len(greedy) == GREEDY_TOKENS and all(0 <= t < 51200 for t in greedy)
    expected_logits = reference(spec, prompt_ids)[0][: len(prompt_ids)]
    assert np.corrcoef(logits.ravel(), expected_logits.ravel())[0, 1] >= QUANT_FLOORS[quant]
