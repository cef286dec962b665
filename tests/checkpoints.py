"""Tiny CodeGen2.5 checkpoints built by transformers, saved in the exact layout of the real repos.

The real Salesforce/codegen25-7b-* repos hold config.json, generation_config.json,
tokenizer_config.json, tokenization_codegen25.py and three torch.save'd
`pytorch_model-0000N-of-00003.bin` shards (with rotary inv_freq buffers)
plus pytorch_model.bin.index.json. These are the same, tiny and random.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from convert.synthetic import TOKENIZER_CONFIG, LlamaShape, codegen25_config

if TYPE_CHECKING:
    import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# If anything ever imports or runs this file, it leaves a marker beside itself.
POISONED_TOKENIZER = """\
import pathlib
pathlib.Path(__file__).with_name("TOKENIZER_CODE_RAN").write_text("ran")
raise RuntimeError("checkpoint code must never run")
"""


@dataclass(frozen=True)
class TinySpec:
    shape: LlamaShape
    kv_heads: int | None = None
    shards: int = 3
    fmt: str = "bin"  # "bin" | "safetensors"
    scale: float = 4.0  # widen the random init so logits are large enough for a strict comparison
    seed: int = 0


def seeded_normal(seed: int, name: str, shape) -> torch.Tensor:
    """A standard normal tensor that depends only on the seed and the parameter's name.

    The tiny models must not depend on transformers' own initialisation: transformers 5.24
    creates CodeGen's attention projections in another order, so the same torch seed gave a
    different model (and a different test) from 5.23's.
    """
    import torch

    generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    return torch.randn(tuple(shape), generator=generator)


def build_model(spec: TinySpec):
    import torch
    import transformers

    config = codegen25_config(spec.shape)
    if spec.kv_heads:
        config["num_key_value_heads"] = spec.kv_heads
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**config))
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = seeded_normal(spec.seed, name, param.shape)
            if param.ndim == 2:  # transformers' own init is N(0, 0.02); widened by spec.scale
                param.copy_(0.02 * spec.scale * noise)
            else:  # norms: away from 1.0 so a dropped or misplaced norm shows
                param.copy_(1.0 + 0.2 * noise)
    return model.eval(), config


def save_checkpoint(spec: TinySpec, directory: Path) -> Path:
    """Save like the 2023 repos: sharded torch.save files with an index, or safetensors."""
    import torch

    model, config = build_model(spec)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    head_dim = spec.shape.hidden // spec.shape.heads
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    for layer in range(spec.shape.layers):
        state[f"model.layers.{layer}.self_attn.rotary_emb.inv_freq"] = inv_freq.clone()

    names = list(state)
    per_shard = -(-len(names) // spec.shards)
    weight_map = {}
    if spec.shards == 1:
        if spec.fmt == "safetensors":
            from safetensors.torch import save_file

            save_file(state, directory / "model.safetensors")
        else:
            torch.save(state, directory / "pytorch_model.bin")
    else:
        stem, index_name = (
            ("model", "model.safetensors.index.json")
            if spec.fmt == "safetensors"
            else ("pytorch_model", "pytorch_model.bin.index.json")
        )
        suffix = "safetensors" if spec.fmt == "safetensors" else "bin"
        for number in range(spec.shards):
            chunk = names[number * per_shard : (number + 1) * per_shard]
            shard = f"{stem}-{number + 1:05d}-of-{spec.shards:05d}.{suffix}"
            part = {k: state[k] for k in chunk}
            if spec.fmt == "safetensors":
                from safetensors.torch import save_file

                save_file(part, directory / shard)
            else:
                torch.save(part, directory / shard)
            weight_map.update(dict.fromkeys(chunk, shard))
        total = sum(t.numel() * t.element_size() for t in state.values())
        (directory / index_name).write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
        )
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    (directory / "generation_config.json").write_text(json.dumps({"bos_token_id": 50256, "eos_token_id": 50256}))
    (directory / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2))
    (directory / "tokenization_codegen25.py").write_text(POISONED_TOKENIZER)
    return directory
