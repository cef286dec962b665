"""Tiny CodeGen1/2 checkpoints (`CodeGenForCausalLM`), built by transformers and saved as the Salesforce repos
are: one pytorch_model.bin with the attention-mask buffers, config.json, GPT-2's tokenizer files with the 38
whitespace tokens (and CodeGen2's infill sentinels). torch and transformers are imported when a model is built,
so importing this module never needs them."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.checkpoints import seeded_normal
from tests.references import GPT2_DIR

VOCAB_SIZE = 51200
WHITESPACE_TOKENS = [" " * n for n in range(31, 1, -1)] + ["\t" * n for n in range(9, 1, -1)]  # ids 50257..50294

# If anything ever imports or runs this file, it leaves a marker beside itself.
POISONED_MODELING = """\
import pathlib
pathlib.Path(__file__).with_name("MODELING_CODE_RAN").write_text("ran")
raise RuntimeError("checkpoint code must never run")


class CodeGenAttention:
    def forward(self, hidden_states):
        qkv = self.qkv_proj(hidden_states)
        # TODO(enijkamp): factor out number of logical TPU-v4 cores or make forward pass agnostic
        # mp_num = 4
        mp_num = {mp_num}
        qkv_split = qkv.reshape(qkv.shape[:-1] + (mp_num, -1))
"""


@dataclass(frozen=True)
class CodeGenSpec:
    n_embd: int
    n_head: int
    rotary_dim: int
    n_layer: int
    n_inner: int | None = None
    scale: float = 8.0  # widen the random init so logits are large enough for a strict comparison
    seed: int = 0
    mp_num_in_modeling_file: int | None = None  # ship a (poisoned) modeling_codegen.py saying this
    infill_tokens: bool = False  # CodeGen2's <mask_N>, <sep>, <eom>


SPECS = {
    "64-4heads-rot8": CodeGenSpec(n_embd=64, n_head=4, rotary_dim=8, n_layer=2),
    "128-8heads-rot16": CodeGenSpec(n_embd=128, n_head=8, rotary_dim=16, n_layer=3, seed=1),
    "96-4heads-full-rotary": CodeGenSpec(n_embd=96, n_head=4, rotary_dim=24, n_layer=2, n_inner=160, seed=2),
}


def build_model(spec: CodeGenSpec):
    import torch
    import transformers

    config = transformers.CodeGenConfig(
        vocab_size=VOCAB_SIZE,
        n_positions=2048,
        n_ctx=2048,
        n_embd=spec.n_embd,
        n_layer=spec.n_layer,
        n_head=spec.n_head,
        rotary_dim=spec.rotary_dim,
        n_inner=spec.n_inner,
        architectures=["CodeGenForCausalLM"],
    )
    model = transformers.CodeGenForCausalLM(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = seeded_normal(spec.seed, name, param.shape)  # the same model whatever transformers' init
            if param.ndim == 2:  # transformers' own init is N(0, 0.02); widened by spec.scale
                param.copy_(0.02 * spec.scale * noise)
            elif name.endswith("ln_1.weight") or name.endswith("ln_f.weight"):
                param.copy_(1.0 + 0.2 * noise)  # away from 1.0 so a dropped norm shows
            else:  # biases start at zero; make them count
                param.copy_(0.2 * noise)
    return model.eval()


def save_checkpoint(spec: CodeGenSpec, directory: Path) -> Path:
    """Save like the Salesforce repos: one torch.save'd pytorch_model.bin with the attention-mask buffers."""
    import torch

    model = build_model(spec)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    for layer in range(spec.n_layer):  # buffers the 2022 checkpoints carry
        state[f"transformer.h.{layer}.attn.causal_mask"] = torch.ones(1, 1, 16, 16, dtype=torch.bool).tril()
        state[f"transformer.h.{layer}.attn.masked_bias"] = torch.tensor(-1e9)
    torch.save(state, directory / "pytorch_model.bin")
    config = model.config.to_dict()
    if spec.mp_num_in_modeling_file is not None:
        config["auto_map"] = {"AutoModelForCausalLM": "modeling_codegen.CodeGenForCausalLM"}
        (directory / "modeling_codegen.py").write_text(POISONED_MODELING.format(mp_num=spec.mp_num_in_modeling_file))
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    write_tokenizer(directory, spec.infill_tokens)
    return directory


def write_tokenizer(directory: Path, infill_tokens: bool) -> None:
    """CodeGen1's files: GPT-2's vocab.json/merges.txt plus the whitespace runs as added tokens."""
    shutil.copyfile(GPT2_DIR / "encoder.json", directory / "vocab.json")
    shutil.copyfile(GPT2_DIR / "vocab.bpe", directory / "merges.txt")
    added = {run: 50257 + i for i, run in enumerate(WHITESPACE_TOKENS)}
    specials = []
    if infill_tokens:
        specials = ["<sep>", "<eom>", "<mask_1>"]
        added |= {text: 50295 + i for i, text in enumerate(specials)}
    (directory / "added_tokens.json").write_text(json.dumps(added))
    endoftext = "<|endoftext|>"
    special_map = {"bos_token": endoftext, "eos_token": endoftext, "unk_token": endoftext}
    (directory / "special_tokens_map.json").write_text(
        json.dumps(special_map | {"additional_special_tokens": specials})
    )
    tokenizer_config = {"tokenizer_class": "CodeGenTokenizer", "add_prefix_space": False} | special_map
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))


CODEGEN1 = CodeGenSpec(n_embd=64, n_head=4, rotary_dim=8, n_layer=2)
CODEGEN2 = CodeGenSpec(n_embd=64, n_head=4, rotary_dim=8, n_layer=2, infill_tokens=True, seed=3)
