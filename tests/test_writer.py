"""The writer's numeric paths: ggml's f16 cast equals numpy's, and type fallbacks are reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader

from convert.fastcast import _ggml_fp32_to_fp16, to_float16
from convert.pipeline import ConvertOptions, convert
from convert.synthetic import LlamaShape
from tests.checkpoints import TinySpec, save_checkpoint


def test_ggml_f16_cast_is_bit_identical_to_numpy() -> None:
    assert _ggml_fp32_to_fp16() is not None, "llama-cpp-python's ggml-cpu library was not found"
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.standard_normal(1 << 20, dtype=np.float32) * 10.0 ** rng.integers(-9, 6, 1 << 20),
            np.array([0.0, -0.0, np.inf, -np.inf, 65504, 65519.99, 65520, 1e-8, 5.96e-8, 2.98e-8, 6.1e-5], np.float32),
        ]
    ).astype(np.float32)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16)
    assert np.array_equal(to_float16(values).view(np.uint16), expected.view(np.uint16))


def test_rows_that_do_not_fill_a_q8_block_stay_f16_and_are_reported(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    # Rows of 48 (hidden) do not fill Q8_0 blocks of 32; rows of 64 (intermediate) do.
    spec = TinySpec(LlamaShape(hidden=48, intermediate=64, layers=1, heads=2))
    checkpoint = save_checkpoint(spec, tmp_path / "ckpt")
    result = convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "m.gguf", outtype="q8_0"))
    types = {t.name: t.tensor_type for t in GGUFReader(result.output).tensors}
    assert types["blk.0.ffn_down.weight"] == GGMLQuantizationType.Q8_0  # rows of 64
    assert types["blk.0.attn_q.weight"] == GGMLQuantizationType.F16  # rows of 48
    assert "blk.0.attn_q.weight" in result.fallbacks
    assert "blk.0.ffn_down.weight" not in result.fallbacks


@pytest.mark.parametrize("outtype, expected", [("bf16", GGMLQuantizationType.BF16), ("f16", GGMLQuantizationType.F16)])
def test_direct_types_round_trip_the_weights(outtype: str, expected: GGMLQuantizationType, tmp_path: Path) -> None:
    """Dequantizing the written tensor gives back the source weight (Q/K aside) within the type's precision."""
    pytest.importorskip("torch")
    from gguf.quants import dequantize

    spec = TinySpec(LlamaShape(hidden=64, intermediate=128, layers=1, heads=4))
    checkpoint = save_checkpoint(spec, tmp_path / "ckpt")
    result = convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "m.gguf", outtype=outtype))
    tensors = {t.name: t for t in GGUFReader(result.output).tensors}
    model_state = {
        k: v.numpy()
        for k, v in __import__("torch").load(checkpoint / "pytorch_model-00001-of-00003.bin", weights_only=True).items()
    }
    source = model_state["model.embed_tokens.weight"]
    written = tensors["token_embd.weight"]
    assert written.tensor_type == expected
    values = dequantize(written.data, written.tensor_type).reshape(source.shape)
    assert np.allclose(values, source, rtol=2**-7, atol=1e-6)
    assert tensors["blk.0.attn_norm.weight"].tensor_type == GGMLQuantizationType.F32


def test_llama_cpp_quantizer_fallbacks_are_reported(tmp_path: Path) -> None:
    """Rows of 64 cannot take Q4_K's 256-wide blocks: llama.cpp falls back, and the summary says so."""
    pytest.importorskip("torch")
    spec = TinySpec(LlamaShape(hidden=64, intermediate=128, layers=1, heads=4))
    checkpoint = save_checkpoint(spec, tmp_path / "ckpt")
    result = convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "q.gguf", quant="Q4_K_M"))
    types = {t.name: t.tensor_type.name for t in GGUFReader(result.output).tensors}
    assert result.fallbacks["blk.0.attn_q.weight"] == types["blk.0.attn_q.weight"] == "Q5_0"
    assert "output_norm.weight" not in result.fallbacks
