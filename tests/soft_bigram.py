"""Tiny CodeGen2.5 GGUFs whose next-token distribution depends only on the current token, with soft logits.

As in tests/bigram.py, attention and MLP outputs are zero, so the residual stream at a position is its token's
embedding: token t is one-hot at slot t % SLOTS. The final RMSNorm scales that one-hot to NORMED (its weight
is 1), so the logits after token t are NORMED * head[:, t % SLOTS]: `logits(t)` below, known exactly, so a test
can compute by hand what any position's distribution is. The head is N(0, SPREAD^2): probabilities are soft.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from convert.checkpoint.torch_bin import write_torch_bin
from convert.pipeline import ConvertOptions, convert
from convert.synthetic import TOKENIZER_CONFIG, LlamaShape, codegen25_config
from ggufkit.vocab.codegen25 import VOCAB_SIZE

SHAPE = LlamaShape(hidden=256, intermediate=256, layers=1, heads=4)
SLOTS = SHAPE.hidden
EPS = codegen25_config(SHAPE)["rms_norm_eps"]
NORMED = 1.0 / np.sqrt(1.0 / SLOTS + EPS)  # RMSNorm of a one-hot vector of length SLOTS
SPREAD = 0.25


def head_table(
    seed: int, noise_seed: int | None = None, noise: float = 0.0, after: set[int] | None = None
) -> np.ndarray:
    """The lm_head; with noise_seed, N(0, noise^2) added to the logits after the tokens `after` (default all)."""
    head = np.random.default_rng(seed).standard_normal((VOCAB_SIZE, SLOTS)) * SPREAD
    if noise_seed is not None:
        delta = np.random.default_rng(noise_seed).standard_normal(head.shape) * noise
        if after is not None:
            delta[:, sorted({token % SLOTS for token in after} ^ set(range(SLOTS)))] = 0.0
        head += delta
    return head.astype(np.float32)


def logits(head: np.ndarray, token: int) -> np.ndarray:
    return NORMED * head[:, token % SLOTS].astype(np.float64)


def soft_bigram_model(directory: Path, head: np.ndarray) -> Path:
    h, i = SHAPE.hidden, SHAPE.intermediate
    embed = np.zeros((VOCAB_SIZE, h), np.float32)
    embed[np.arange(VOCAB_SIZE), np.arange(VOCAB_SIZE) % SLOTS] = 1.0
    rng = np.random.default_rng(0)
    layer = "model.layers.0"
    state = {"model.embed_tokens.weight": embed, "lm_head.weight": head, "model.norm.weight": np.ones(h, np.float32)}
    for name in ("q_proj", "k_proj", "v_proj"):
        state[f"{layer}.self_attn.{name}.weight"] = rng.standard_normal((h, h), dtype=np.float32) * 0.02
    state[f"{layer}.self_attn.o_proj.weight"] = np.zeros((h, h), np.float32)
    state[f"{layer}.mlp.gate_proj.weight"] = rng.standard_normal((i, h), dtype=np.float32) * 0.02
    state[f"{layer}.mlp.up_proj.weight"] = rng.standard_normal((i, h), dtype=np.float32) * 0.02
    state[f"{layer}.mlp.down_proj.weight"] = np.zeros((h, i), np.float32)
    state[f"{layer}.input_layernorm.weight"] = np.ones(h, np.float32)
    state[f"{layer}.post_attention_layernorm.weight"] = np.ones(h, np.float32)
    checkpoint = directory / "checkpoint"
    checkpoint.mkdir(parents=True, exist_ok=True)
    write_torch_bin(checkpoint / "pytorch_model.bin", state)
    (checkpoint / "config.json").write_text(json.dumps(codegen25_config(SHAPE)))
    (checkpoint / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG))
    return convert(ConvertOptions(source=str(checkpoint), output=directory / "soft.gguf", outtype="f32")).output
