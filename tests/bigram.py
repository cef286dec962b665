"""Deterministic tiny CodeGen2.5 models: each position's logits depend only on its own token.

Attention and MLP output projections are zero, so the residual stream at a
position is just its token's embedding. Embeddings are one-hot "slots" and
lm_head is a bigram table over them, so greedy (and low-temperature) decoding
follows a chain we choose: after token chain[i] comes chain[i + 1]. Any token
not in the chain predicts GARBAGE, which predicts itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from convert.checkpoint.torch_bin import write_torch_bin
from convert.pipeline import ConvertOptions, convert
from convert.synthetic import TOKENIZER_CONFIG, LlamaShape, codegen25_config
from ggufkit.vocab.codegen25 import EOM_ID, MASK1_ID, VOCAB_SIZE, codegen25_tokenizer

GARBAGE = codegen25_tokenizer().encode("GARBAGE")[0]
NEWLINE = codegen25_tokenizer().encode("\n")[0]
CHAT_CODE = "print(42)"  # chat models: every turn's prompt ends in "\n", and the chain from it spells this
SHAPE = LlamaShape(hidden=256, intermediate=256, layers=1, heads=4)
LOGIT = 10.0


def chain_for(completion: str, start: int = MASK1_ID, end: int = EOM_ID) -> list[int]:
    """start -> tokens of `completion` -> end -> GARBAGE."""
    return [start, *codegen25_tokenizer().encode(completion), end, GARBAGE]


def write_bigram_checkpoint(directory: Path, chain: list[int]) -> Path:
    sources = chain[:-1]
    if len(set(sources)) != len(sources):
        raise ValueError("a bigram chain cannot repeat a token (each token has one successor)")
    hidden = SHAPE.hidden
    if len(sources) + 1 > hidden:
        raise ValueError("chain longer than the hidden size")
    slot = {token: index + 1 for index, token in enumerate(sources)}  # slot 0: every other token
    embed = np.zeros((VOCAB_SIZE, hidden), np.float32)
    embed[:, 0] = 1.0
    head = np.zeros((VOCAB_SIZE, hidden), np.float32)
    for token, index in slot.items():
        embed[token] = 0.0
        embed[token, index] = 1.0
    for token, successor in zip(chain[:-1], chain[1:], strict=True):
        head[successor, slot[token]] = LOGIT
    head[GARBAGE, 0] = LOGIT
    rng = np.random.default_rng(0)
    state = {"model.embed_tokens.weight": embed}
    h, i = hidden, SHAPE.intermediate
    for name, shape in (("q_proj", (h, h)), ("k_proj", (h, h)), ("v_proj", (h, h))):
        state[f"model.layers.0.self_attn.{name}.weight"] = rng.standard_normal(shape, dtype=np.float32) * 0.02
    state["model.layers.0.self_attn.o_proj.weight"] = np.zeros((h, h), np.float32)
    state["model.layers.0.mlp.gate_proj.weight"] = rng.standard_normal((i, h), dtype=np.float32) * 0.02
    state["model.layers.0.mlp.up_proj.weight"] = rng.standard_normal((i, h), dtype=np.float32) * 0.02
    state["model.layers.0.mlp.down_proj.weight"] = np.zeros((h, i), np.float32)
    state["model.layers.0.input_layernorm.weight"] = np.ones(h, np.float32)
    state["model.layers.0.post_attention_layernorm.weight"] = np.ones(h, np.float32)
    state["model.norm.weight"] = np.ones(h, np.float32)
    state["lm_head.weight"] = head
    directory.mkdir(parents=True, exist_ok=True)
    write_torch_bin(directory / "pytorch_model.bin", state)
    (directory / "config.json").write_text(json.dumps(codegen25_config(SHAPE)))
    (directory / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG))
    return directory


def bigram_model(directory: Path, completion: str, **chain_options: int) -> Path:
    """A GGUF whose infill after <mask_1> is `completion`, then <eom>, then garbage."""
    checkpoint = write_bigram_checkpoint(directory / "checkpoint", chain_for(completion, **chain_options))
    return convert(ConvertOptions(source=str(checkpoint), output=directory / "bigram.gguf", outtype="f32")).output
