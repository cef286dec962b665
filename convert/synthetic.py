"""Randomly initialised checkpoints in the exact file layout of a real CodeGen2.5 repo.

Real weights cannot be downloaded everywhere, so the demo and the conversion
benchmark build one of these: config.json, generation_config.json,
tokenizer_config.json and `pytorch_model-0000N-of-0000M.bin` shards with
their index, rotary `inv_freq` buffers included, written without torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert.checkpoint.torch_bin import write_torch_bin
from ggufkit.vocab.codegen25 import VOCAB_SIZE


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


@dataclass(frozen=True)
class _RandomTensor:
    """A tensor made only when it is written, so a 27 GB checkpoint needs one tensor of memory."""

    shape: tuple[int, ...]
    dtype: np.dtype
    seed: tuple[int, int]
    kind: str  # "weight" | "norm" | "inv_freq"

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        if self.kind == "inv_freq":
            head_dim = self.shape[0] * 2
            values = 1.0 / 10000 ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim)
        elif self.kind == "norm":
            values = 1.0 + 0.1 * rng.standard_normal(self.shape, dtype=np.float32)
        else:
            values = rng.standard_normal(self.shape, dtype=np.float32) * np.float32(0.02)
        return values.astype(dtype or self.dtype, copy=False)


def _state_dict(shape: LlamaShape, seed: int, dtype: np.dtype) -> Iterator[tuple[str, _RandomTensor]]:
    h, i = shape.hidden, shape.intermediate
    layer_tensors = [
        ("self_attn.q_proj.weight", (h, h), "weight"),
        ("self_attn.k_proj.weight", (h, h), "weight"),
        ("self_attn.v_proj.weight", (h, h), "weight"),
        ("self_attn.o_proj.weight", (h, h), "weight"),
        ("self_attn.rotary_emb.inv_freq", (h // shape.heads // 2,), "inv_freq"),
        ("mlp.gate_proj.weight", (i, h), "weight"),
        ("mlp.down_proj.weight", (h, i), "weight"),
        ("mlp.up_proj.weight", (i, h), "weight"),
        ("input_layernorm.weight", (h,), "norm"),
        ("post_attention_layernorm.weight", (h,), "norm"),
    ]
    names = [("model.embed_tokens.weight", (VOCAB_SIZE, h), "weight")]
    for n in range(shape.layers):
        names += [(f"model.layers.{n}.{suffix}", dims, kind) for suffix, dims, kind in layer_tensors]
    names += [("model.norm.weight", (h,), "norm"), ("lm_head.weight", (VOCAB_SIZE, h), "weight")]
    for index, (name, dims, kind) in enumerate(names):
        tensor_dtype = np.dtype(np.float32) if kind == "inv_freq" else dtype
        yield name, _RandomTensor(dims, tensor_dtype, (seed, index), kind)


def write_codegen25_checkpoint(
    directory: Path, shape: LlamaShape, shards: int = 3, seed: int = 0, dtype: str = "float32"
) -> Path:
    """Write a random CodeGen2.5-layout checkpoint, tensors split in order into about equal shards."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = list(_state_dict(shape, seed, np.dtype(dtype)))
    total = sum(tensor.nbytes for _, tensor in tensors)
    groups: list[dict[str, _RandomTensor]] = [{} for _ in range(shards)]
    written = 0
    for key, tensor in tensors:
        middle = written + tensor.nbytes // 2  # a tensor goes where most of its bytes fall
        groups[min(shards - 1, middle * shards // total)][key] = tensor
        written += tensor.nbytes
    groups = [group for group in groups if group]
    weight_map: dict[str, str] = {}
    for number, group in enumerate(groups, start=1):
        name = f"pytorch_model-{number:05d}-of-{len(groups):05d}.bin"
        write_torch_bin(directory / name, group)
        weight_map.update(dict.fromkeys(group, name))

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


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
