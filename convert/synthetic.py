"""Randomly initialised checkpoints in the exact file layout of a real CodeGen2.5 repo.

Real weights cannot be downloaded everywhere, so the demo and the conversion
benchmark build one of these: config.json, generation_config.json,
tokenizer_config.json and `pytorch_model-0000N-of-0000M.bin` shards with
their index, rotary `inv_freq` buffers included, written without torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert.checkpoint.torch_bin import write_torch_bin
from convert.vocab.codegen25 import VOCAB_SIZE


@dataclass(frozen=True)
class LlamaShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int

    @property
    def parameters(self) -> int:
        per_layer = 4 * self.hidden * self.hidden + 3 * self.hidden * self.intermediate + 2 * self.hidden
        return 2 * VOCAB_SIZE * self.hidden + self.layers * per_layer + self.hidden


SHAPES = {
    "tiny": LlamaShape(hidden=256, intermediate=768, layers=2, heads=4),  # the demo: K-quant friendly rows
    "1gb": LlamaShape(hidden=1024, intermediate=2816, layers=12, heads=16),
    "7b": LlamaShape(hidden=4096, intermediate=11008, layers=32, heads=32),  # CodeGen2.5-7B itself
}


def codegen25_config(shape: LlamaShape) -> dict:
    """config.json as Salesforce/codegen25-7b-mono ships it, with the given dimensions."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "bos_token_id": 50256,
        "eos_token_id": 50256,
        "hidden_act": "silu",
        "hidden_size": shape.hidden,
        "initializer_range": 0.02,
        "intermediate_size": shape.intermediate,
        "max_position_embeddings": 2048,
        "model_type": "llama",
        "num_attention_heads": shape.heads,
        "num_hidden_layers": shape.layers,
        "pad_token_id": 0,
        "rms_norm_eps": 1e-06,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": "4.29.2",
        "use_cache": True,
        "vocab_size": VOCAB_SIZE,
    }


TOKENIZER_CONFIG = {
    "name_or_path": "Salesforce/codegen25-7b-mono",
    "auto_map": {"AutoTokenizer": ["tokenization_codegen25.CodeGen25Tokenizer", None]},
    "tokenizer_class": "CodeGen25Tokenizer",
    "model_max_length": 2048,
    "padding_side": "left",
    "add_eos_token": False,
    "add_special_tokens": False,
}


def _state_dict(shape: LlamaShape, rng: np.random.Generator, dtype: np.dtype) -> Iterator[tuple[str, np.ndarray]]:
    def weight(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(dtype)

    def norm() -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(shape.hidden, dtype=np.float32)).astype(dtype)

    head_dim = shape.hidden // shape.heads
    inv_freq = (1.0 / 10000 ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim)).astype(np.float32)
    h, i = shape.hidden, shape.intermediate
    yield "model.embed_tokens.weight", weight(VOCAB_SIZE, h)
    for n in range(shape.layers):
        prefix = f"model.layers.{n}."
        yield prefix + "self_attn.q_proj.weight", weight(h, h)
        yield prefix + "self_attn.k_proj.weight", weight(h, h)
        yield prefix + "self_attn.v_proj.weight", weight(h, h)
        yield prefix + "self_attn.o_proj.weight", weight(h, h)
        yield prefix + "self_attn.rotary_emb.inv_freq", inv_freq
        yield prefix + "mlp.gate_proj.weight", weight(i, h)
        yield prefix + "mlp.down_proj.weight", weight(h, i)
        yield prefix + "mlp.up_proj.weight", weight(i, h)
        yield prefix + "input_layernorm.weight", norm()
        yield prefix + "post_attention_layernorm.weight", norm()
    yield "model.norm.weight", norm()
    yield "lm_head.weight", weight(VOCAB_SIZE, h)


def write_codegen25_checkpoint(
    directory: Path, shape: LlamaShape, shards: int = 3, seed: int = 0, dtype: str = "float32"
) -> Path:
    """Write a random CodeGen2.5-layout checkpoint; shards are filled in order, about equally."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    budget = shape.parameters * np.dtype(dtype).itemsize / shards
    weight_map: dict[str, str] = {}
    total = 0
    pending: dict[str, np.ndarray] = {}
    pending_bytes = 0
    shard_no = 1

    def flush() -> None:
        nonlocal pending, pending_bytes, shard_no
        name = f"pytorch_model-{shard_no:05d}-of-{shards:05d}.bin"
        write_torch_bin(directory / name, pending)
        weight_map.update({key: name for key in pending})
        pending, pending_bytes, shard_no = {}, 0, shard_no + 1

    for key, tensor in _state_dict(shape, rng, np.dtype(dtype)):
        pending[key] = tensor
        pending_bytes += tensor.nbytes
        total += tensor.nbytes
        if pending_bytes >= budget and shard_no < shards:
            flush()
    flush()
    if shard_no - 1 < shards:  # fewer tensors than shards: rename to the true count
        _renumber(directory, weight_map, shard_no - 1, shards)

    _write_json(
        directory / "pytorch_model.bin.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map}
    )
    _write_json(directory / "config.json", codegen25_config(shape))
    _write_json(
        directory / "generation_config.json",
        {"_from_model_config": True, "bos_token_id": 50256, "eos_token_id": 50256, "pad_token_id": 0},
    )
    _write_json(directory / "tokenizer_config.json", TOKENIZER_CONFIG)
    (directory / "README.md").write_text(
        "Randomly initialised weights in the CodeGen2.5 checkpoint layout, made by localcoder.\n"
        "They produce meaningless text; they exist to exercise the conversion pipeline.\n"
    )
    return directory


def _renumber(directory: Path, weight_map: dict[str, str], written: int, planned: int) -> None:
    for number in range(1, written + 1):
        old = f"pytorch_model-{number:05d}-of-{planned:05d}.bin"
        new = f"pytorch_model-{number:05d}-of-{written:05d}.bin"
        os.replace(directory / old, directory / new)
        for key, value in weight_map.items():
            if value == old:
                weight_map[key] = new


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
