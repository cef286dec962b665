"""CodeGen1/2 checkpoints converted to llama.cpp's phi2 graph give transformers' logits.

Tiny `CodeGenForCausalLM` checkpoints are built by transformers and saved as
the real repos are (pytorch_model.bin, config.json, GPT-2 tokenizer files
with the 38 whitespace tokens). transformers hard-codes mp_num 4, so the
mp_num 8 layout is checked against a numpy forward pass written from the
CodeGen code, which is itself checked against transformers at mp_num 4.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from convert.architectures import codegen as codegen_arch
from convert.errors import ConvertError
from convert.pipeline import ConvertOptions, convert
from ggufkit.vocab.codegen25 import codegen25_tokenizer
from tests.codegen1 import SPECS, VOCAB_SIZE, CodeGenSpec, build_model, save_checkpoint
from tests.llama_run import assert_argmax_agrees, llama_logits

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
llama_cpp = pytest.importorskip("llama_cpp")

PROMPT = (
    "import numpy as np\n\n\ndef moving_average(values, window):\n"
    '    """Mean of each run of `window` values."""\n\tresult = []\n        # 8 spaces\n'
)
GREEDY_TOKENS = 12
def gelu_new(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def numpy_forward(state: dict[str, np.ndarray], spec: CodeGenSpec, ids: list[int], mp_num: int) -> np.ndarray:
    """CodeGen's forward pass (float64), as modeling_codegen.py computes it but with mp_num a parameter."""
    hidden, heads, rot = spec.n_embd, spec.n_head, spec.rotary_dim
    head_dim, count = hidden // heads, len(ids)
    inv_freq = 1.0 / 10000 ** (np.arange(0, rot, 2) / rot)
    angles = np.arange(count)[:, None] * inv_freq  # GPT-J: pair (2i, 2i+1) turns at inv_freq[i]
    sin, cos = (np.repeat(f(angles), 2, axis=1)[:, None, :] for f in (np.sin, np.cos))

    def rotate(x: np.ndarray) -> np.ndarray:  # (tokens, heads, head_dim)
        part = x[..., :rot]
        every_two = np.stack([-part[..., 1::2], part[..., 0::2]], axis=-1).reshape(part.shape)
        return np.concatenate([part * cos + every_two * sin, x[..., rot:]], axis=-1)

    future = np.triu(np.full((count, count), -np.inf), k=1)
    x = state["transformer.wte.weight"][ids]
    for layer in range(spec.n_layer):
        p = f"transformer.h.{layer}."
        h = layer_norm(x, state[p + "ln_1.weight"], state[p + "ln_1.bias"])
        qkv = (h @ state[p + "attn.qkv_proj.weight"].T).reshape(count, mp_num, 3, hidden // mp_num)
        query, value, key = (qkv[:, :, part].reshape(count, heads, head_dim) for part in range(3))
        query, key = rotate(query), rotate(key)
        scores = np.einsum("thd,shd->hts", query, key) / np.sqrt(head_dim) + future
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        attn = np.einsum("hts,shd->thd", weights, value).reshape(count, hidden) @ state[p + "attn.out_proj.weight"].T
        inner = gelu_new(h @ state[p + "mlp.fc_in.weight"].T + state[p + "mlp.fc_in.bias"])
        mlp = inner @ state[p + "mlp.fc_out.weight"].T + state[p + "mlp.fc_out.bias"]
        x = x + attn + mlp
    x = layer_norm(x, state["transformer.ln_f.weight"], state["transformer.ln_f.bias"])
    return x @ state["lm_head.weight"].T + state["lm_head.bias"]


def numpy_state(spec: CodeGenSpec) -> dict[str, np.ndarray]:
    return {k: v.double().numpy() for k, v in build_model(spec).state_dict().items()}


def numpy_reference(spec: CodeGenSpec, ids: list[int], mp_num: int) -> tuple[np.ndarray, list[int]]:
    """Logits over `ids` plus the reference's own greedy continuation, and that whole sequence."""
    state = numpy_state(spec)
    sequence = list(ids)
    for _ in range(GREEDY_TOKENS):
        sequence.append(int(np.argmax(numpy_forward(state, spec, sequence, mp_num)[-1])))
    return numpy_forward(state, spec, sequence, mp_num), sequence


def transformers_reference(spec: CodeGenSpec, ids: list[int]) -> tuple[np.ndarray, list[int]]:
    """Logits over `ids` plus transformers' own greedy continuation, and that whole sequence."""
    model = build_model(spec)
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=GREEDY_TOKENS, do_sample=False, pad_token_id=50256)
        sequence = out[0].tolist()
        logits = model(torch.tensor([sequence])).logits[0].numpy()
    return logits, sequence


# llama.cpp's CPU GELU is a lookup table indexed by the input rounded to
# float16 and holding float16 outputs, so every MLP activation carries a
# relative error up to ~2^-11; the rest of the graph is f32. Measured on these
# models (largest logit 6.9..9.8): max |Δlogit| 2.8e-3..5.6e-3, i.e.
# 3.3e-4..5.8e-4 of the largest logit. Against a numpy reference that rounds
# GELU the same way the gap shrinks to 0.35e-4..1.3e-4 of it, so the table is
# most of the error. The bound is 1e-3 of the largest logit; the negative
# controls (no rotary reordering, mp_num misread) miss by 0.41..0.85 of it.
RELATIVE_TOLERANCE = 1e-3


def assert_logits_match(expected: np.ndarray, actual: np.ndarray) -> float:
    """Every logit within the bound, and the argmax equal wherever that bound decides it."""
    scale = np.abs(expected).max()
    assert scale > 5.0, "logits too small for the bound to mean anything"
    diff = np.abs(actual - expected).max()
    bound = RELATIVE_TOLERANCE * scale
    assert diff <= bound, f"max |Δlogit| {diff:.3g} with logits up to {scale:.3g}"
    assert_argmax_agrees(expected, actual, bound)
    return float(diff)


@pytest.fixture(scope="module")
def prompt_ids() -> list[int]:
    # CodeGen1's ids are GPT-2's plus the whitespace runs, a subset of CodeGen2.5's.
    ids = codegen25_tokenizer().encode(PROMPT)
    assert any(50257 <= i <= 50294 for i in ids) and max(ids) < 50295
    return ids


def gguf_metadata(path: Path) -> dict[str, str]:
    """The file's scalar metadata as llama.cpp reads it (GGUFReader takes seconds over 51,200 tokens)."""
    return llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False).metadata


@pytest.mark.parametrize("name", list(SPECS))
def test_f32_logits_match_transformers(name: str, tmp_path: Path, prompt_ids: list[int]) -> None:
    spec = SPECS[name]
    checkpoint = save_checkpoint(spec, tmp_path / "ckpt")
    result = convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "m.gguf", outtype="f32"))
    expected_logits, sequence = transformers_reference(spec, prompt_ids)
    logits, _ = llama_logits(result.output, sequence, greedy_tokens=0)

    assert_logits_match(expected_logits, logits)
    assert (result.family, result.architecture) == ("codegen1", "CodeGenForCausalLM")


def test_gguf_layout_and_hyperparameters(tmp_path: Path) -> None:
    spec = SPECS["96-4heads-full-rotary"]
    checkpoint = save_checkpoint(spec, tmp_path / "ckpt")
    output = convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "m.gguf", outtype="f32")).output
    values = gguf_metadata(output)
    assert values["general.architecture"] == "phi2"
    assert values["phi2.context_length"] == "2048"
    assert values["phi2.embedding_length"] == "96"
    assert values["phi2.feed_forward_length"] == "160"
    assert values["phi2.block_count"] == "2"
    assert values["phi2.attention.head_count"] == values["phi2.attention.head_count_kv"] == "4"
    assert values["phi2.rope.dimension_count"] == "24"
    assert float(values["phi2.rope.freq_base"]) == 10000.0
    assert float(values["phi2.attention.layer_norm_epsilon"]) == pytest.approx(1e-5)
    assert values["localcoder.family"] == "codegen1"
    assert values["localcoder.prompt_format"] == "left-to-right"
    assert values["localcoder.source.dtype"] == "F32"
    assert "tokenizer.ggml.eom_token_id" not in values
    shapes = {t.name: tuple(int(d) for d in t.shape) for t in GGUFReader(output).tensors}
    # GGUF lists dimensions innermost first.
    assert shapes["blk.0.attn_qkv.weight"] == (96, 3 * 96)
    assert shapes["blk.1.attn_qkv.bias"] == (3 * 96,)
    assert shapes["blk.1.attn_output.bias"] == (96,)
    assert shapes["output.bias"] == (VOCAB_SIZE,)
    per_layer = [
        f"{t}.{kind}"
        for t in ("attn_norm", "attn_qkv", "attn_output", "ffn_up", "ffn_down")
        for kind in ("weight", "bias")
    ]
    globals_ = {"token_embd.weight", "output_norm.weight", "output_norm.bias", "output.weight", "output.bias"}
    assert set(shapes) == globals_ | {f"blk.{n}.{t}" for n in range(2) for t in per_layer}


def test_without_rotary_reordering_the_logits_are_wrong(
    tmp_path: Path, prompt_ids: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The negative control: the GPT-J -> NEOX row reordering is what makes the comparison pass."""
    spec = SPECS["64-4heads-rot8"]
    checkpoint = save_checkpoint(spec, tmp_path / "ckpt")
    monkeypatch.setattr(codegen_arch, "gptj_rotary_to_neox", lambda weight, n_heads, rotary_dim: weight)
    output = convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "wrong.gguf", outtype="f32")).output
    expected_logits, sequence = transformers_reference(spec, prompt_ids)
    logits, _ = llama_logits(output, sequence, greedy_tokens=0)
    assert np.abs(logits - expected_logits).max() > 100 * RELATIVE_TOLERANCE * np.abs(expected_logits).max()
    with pytest.raises(AssertionError, match="argmax differs"):
        assert_argmax_agrees(expected_logits, logits, RELATIVE_TOLERANCE * np.abs(expected_logits).max())


def test_numpy_reference_is_transformers_at_mp_num_4(prompt_ids: list[int]) -> None:
    spec = SPECS["128-8heads-rot16"]
    expected, sequence = transformers_reference(spec, prompt_ids)
    ours = numpy_forward(numpy_state(spec), spec, sequence, mp_num=4)
    assert np.abs(ours - expected).max() <= 1e-4 * np.abs(expected).max()


def test_mp_num_8_read_from_the_modeling_file_as_text(tmp_path: Path, prompt_ids: list[int]) -> None:
    spec = replace(SPECS["128-8heads-rot16"], mp_num_in_modeling_file=8)
    checkpoint = save_checkpoint(spec, tmp_path / "ckpt")
    output = convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "m.gguf", outtype="f32")).output
    expected_logits, sequence = numpy_reference(spec, prompt_ids, mp_num=8)
    logits, _ = llama_logits(output, sequence, greedy_tokens=0)

    assert_logits_match(expected_logits, logits)
    assert not (checkpoint / "MODELING_CODE_RAN").exists()

    # The layouts differ enough to matter: read as mp_num 4, the same weights compute something else.
    wrong = convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "w.gguf", outtype="f32", mp_num=4))
    wrong_logits, _ = llama_logits(wrong.output, sequence, greedy_tokens=0)
    assert np.abs(wrong_logits - expected_logits).max() > 100 * RELATIVE_TOLERANCE * np.abs(expected_logits).max()
    with pytest.raises(AssertionError, match="argmax differs"):
        assert_argmax_agrees(expected_logits, wrong_logits, RELATIVE_TOLERANCE * np.abs(expected_logits).max())


def test_mp_num_option_overrides_the_modeling_file(tmp_path: Path, prompt_ids: list[int]) -> None:
    spec = replace(SPECS["64-4heads-rot8"], mp_num_in_modeling_file=2)  # unsupported unless overridden
    checkpoint = save_checkpoint(spec, tmp_path / "ckpt")
    with pytest.raises(ConvertError, match="modeling_codegen.py gives mp_num 2; supported: 4, 8"):
        convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "m.gguf", outtype="f32"))
    result = convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "m.gguf", outtype="f32", mp_num=4))
    expected_logits, sequence = transformers_reference(spec, prompt_ids)
    assert_logits_match(expected_logits, llama_logits(result.output, sequence, greedy_tokens=0)[0])
    assert not (checkpoint / "MODELING_CODE_RAN").exists()


def test_codegen2_tokenizer_makes_an_infill_model(tmp_path: Path) -> None:
    spec = replace(SPECS["64-4heads-rot8"], infill_tokens=True, n_layer=1)
    checkpoint = save_checkpoint(spec, tmp_path / "ckpt")
    result = convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "m.gguf", outtype="f32"))
    values = gguf_metadata(result.output)
    assert result.family == values["localcoder.family"] == "codegen2"
    assert values["localcoder.prompt_format"] == "codegen-infill"
    assert values["tokenizer.ggml.eom_token_id"] == "50296"
    assert values["tokenizer.ggml.eos_token_id"] == values["tokenizer.ggml.bos_token_id"] == "50256"
    assert values["tokenizer.ggml.add_bos_token"] == "false"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mp_num = 4\n", 4),
        ("        mp_num = 8  # TPU-v4 cores\n", 8),
        ("self.mp_num=8\n", 8),
        ("# mp_num = 4\nmp_num = 8\n", 8),
        ("if mp_num == 4:\n    pass\nsplit(x, mp_num=mp_num)\n", None),
        ("", None),
    ],
)
def test_mp_num_from_source(text: str, expected: int | None) -> None:
    assert codegen_arch.mp_num_from_source(text) == expected


def test_mp_num_from_source_refuses_two_values() -> None:
    with pytest.raises(ConvertError, match="several values"):
        codegen_arch.mp_num_from_source("mp_num = 4\nmp_num = 8\n")


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(replace(SPECS["64-4heads-rot8"], n_layer=1), tmp_path_factory.mktemp("small") / "ckpt")


def _edited_copy(source: Path, target: Path, **config_changes: object) -> Path:
    shutil.copytree(source, target)
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps(config | config_changes))
    return target


@pytest.mark.parametrize(
    ("config_changes", "mp_num", "message"),
    [
        ({}, 6, "the mp_num option gives mp_num 6; supported: 4, 8"),
        ({}, 8, "n_head 4 \\(n_embd 64\\) does not split into mp_num 8 shards"),
        ({"n_head": 2}, 4, "n_head 2 \\(n_embd 64\\) does not split into mp_num 4 shards"),
        ({"auto_map": {"AutoModelForCausalLM": "modeling_codegen.CodeGenForCausalLM"}}, None, "pass mp_num"),
        ({"rotary_dim": 32}, None, "rotary_dim 32 must be even and at most the head size 16"),
        ({"activation_function": "gelu"}, None, "CodeGen uses gelu_new"),
        ({"n_layer": 2}, None, "checkpoint lacks tensor transformer.h.1.ln_1.weight"),
    ],
)
def test_refused(
    small_checkpoint: Path, tmp_path: Path, config_changes: dict, mp_num: int | None, message: str
) -> None:
    checkpoint = _edited_copy(small_checkpoint, tmp_path / "ckpt", **config_changes)
    with pytest.raises(ConvertError, match=message):
        convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "m.gguf", outtype="f32", mp_num=mp_num))
    assert not (tmp_path / "m.gguf").exists()


def test_mp_num_is_refused_for_codegen25(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="mp_num applies to CodeGen1/2"):
        convert(ConvertOptions(source=str(tiny_checkpoint), output=tmp_path / "m.gguf", mp_num=8))
