"""CodeGen1 and CodeGen2 (Salesforce/codegen-*, codegen2-*): a GPT-J block on llama.cpp's `phi2` graph.

CodeGen has no llama.cpp graph of its own, but PHI2's block is the same: one
LayerNorm feeding attention and a gelu-tanh MLP in parallel, partial rotary,
a final LayerNorm and an output bias. Three things need care:

- the fused `qkv_proj` rows are split into `mp_num` model-parallel shards,
  each holding query, VALUE, key (in that order); see `split_fused_qkv`;
- GPT-J rotates adjacent pairs, PHI2's NEOX rope rotates halves; see
  `gptj_rotary_to_neox`;
- PHI2 requires biases that CodeGen lacks (QKV, attention output): zeros.

`mp_num` is not in config.json. transformers' CodeGen hard-codes 4; CodeGen2
repos ship their own modeling file, which is read as text (never imported or
run) for its `mp_num = N`.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
from gguf import GGUFWriter

from convert.architectures.base import SourceArchitecture, TensorPlan, register
from convert.checkpoint.tensors import TensorRecord
from convert.errors import ConvertError
from convert.vocab.hf_tokenizer import CheckpointVocab, read_checkpoint_vocab

SUPPORTED_MP_NUM = (4, 8)
TRANSFORMERS_MP_NUM = 4  # hard-coded in transformers' modeling_codegen.py
ROPE_FREQ_BASE = 10000.0

_LAYER_TENSORS = {
    "ln_1.weight": "attn_norm.weight",
    "ln_1.bias": "attn_norm.bias",
    "attn.qkv_proj.weight": "attn_qkv.weight",
    "attn.out_proj.weight": "attn_output.weight",
    "mlp.fc_in.weight": "ffn_up.weight",
    "mlp.fc_in.bias": "ffn_up.bias",
    "mlp.fc_out.weight": "ffn_down.weight",
    "mlp.fc_out.bias": "ffn_down.bias",
}
_GLOBAL_TENSORS = {
    "transformer.wte.weight": "token_embd.weight",
    "transformer.ln_f.weight": "output_norm.weight",
    "transformer.ln_f.bias": "output_norm.bias",
    "lm_head.weight": "output.weight",
    "lm_head.bias": "output.bias",
}
_LAYER_NAME = re.compile(r"^transformer\.h\.(\d+)\.(.+)$")
# Buffers some checkpoints carry: attention masks and rotary tables, rebuilt by llama.cpp.
_IGNORED_SUFFIXES = (
    ".attn.causal_mask",
    ".attn.masked_bias",
    ".attn.bias",
    ".attn.embed_positions",
    "rotary_emb.inv_freq",
)
# An assignment `mp_num = 8` (or `self.mp_num = 8`) outside a comment.
_MP_NUM_ASSIGNMENT = re.compile(r"^[^#\n]*\bmp_num\s*=\s*(\d+)\b", re.MULTILINE)


def split_fused_qkv(weight: np.ndarray, mp_num: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split CodeGen's fused QKV rows into query, key and value, each in head order.

    The rows are laid out (mp_num, 3, n_embd / mp_num) with the three parts in
    the order query, value, key; shard s holds heads s * n_head / mp_num onward.
    """
    columns = weight.shape[-1]
    shards = weight.reshape(mp_num, 3, -1, columns)
    query, value, key = (shards[:, part].reshape(-1, columns) for part in range(3))
    return query, key, value


def gptj_rotary_to_neox(weight: np.ndarray, n_heads: int, rotary_dim: int) -> np.ndarray:
    """Reorder Q or K rows so NEOX rope (PHI2) computes what GPT-J rope (CodeGen) does.

    GPT-J rotates dimension 2i of a head with 2i + 1; NEOX rotates i with
    i + rotary_dim / 2, at the same frequency. Within each head the first
    rotary_dim rows become 0, 2, 4, ..., 1, 3, 5, ...; the rest stay. Without
    this the model runs and is silently wrong.
    """
    head_dim = weight.shape[0] // n_heads
    order = np.concatenate([np.arange(0, rotary_dim, 2), np.arange(1, rotary_dim, 2), np.arange(rotary_dim, head_dim)])
    heads = weight.reshape(n_heads, head_dim, *weight.shape[1:])
    return np.ascontiguousarray(heads[:, order]).reshape(weight.shape)


def mp_num_from_source(text: str) -> int | None:
    """The `mp_num = N` a modeling file assigns, read as text; None when it assigns none."""
    values = {int(value) for value in _MP_NUM_ASSIGNMENT.findall(text)}
    if len(values) > 1:
        raise ConvertError(f"the modeling file assigns mp_num several values ({sorted(values)}); pass mp_num")
    return values.pop() if values else None


@register
class CodeGen(SourceArchitecture):
    hf_architecture = "CodeGenForCausalLM"
    gguf_architecture = "phi2"
    accepts_mp_num = True

    def validate(self) -> None:
        act = self.config.get("activation_function", "gelu_new")
        if act != "gelu_new":
            raise ConvertError(f"config.json: activation_function {act!r}; CodeGen uses gelu_new")
        if self.config.get("tie_word_embeddings"):
            raise ConvertError("config.json: tie_word_embeddings is set; CodeGen checkpoints have their own lm_head")
        hidden, heads, rotary = self.hidden, self.n_heads, self.rotary_dim
        if hidden % heads:
            raise ConvertError(f"config.json: n_embd {hidden} does not split into {heads} heads")
        if rotary % 2 or rotary > hidden // heads:
            raise ConvertError(
                f"config.json: rotary_dim {rotary} must be even and at most the head size {hidden // heads}"
            )
        mp_num = self.mp_num
        if heads % mp_num:
            raise ConvertError(f"n_head {heads} (n_embd {hidden}) does not split into mp_num {mp_num} shards")
        self.config_int("n_layer")
        self.config_int("vocab_size")

    @property
    def hidden(self) -> int:
        return self.config_int("n_embd")

    @property
    def n_heads(self) -> int:
        return self.config_int("n_head")

    @property
    def rotary_dim(self) -> int:
        return self.config_int("rotary_dim")

    @property
    def n_inner(self) -> int:
        if self.config.get("n_inner") is None:
            return 4 * self.hidden
        return self.config_int("n_inner")

    @property
    def context_length(self) -> int:
        key = "n_positions" if "n_positions" in self.config else "n_ctx"
        return self.config_int(key, 2048)

    @functools.cached_property
    def mp_num(self) -> int:
        if self.options.mp_num is not None:
            value, origin = self.options.mp_num, "the mp_num option"
        else:
            value, origin = self._mp_num_from_checkpoint()
        if value not in SUPPORTED_MP_NUM:
            raise ConvertError(f"{origin} gives mp_num {value}; supported: {', '.join(map(str, SUPPORTED_MP_NUM))}")
        return value

    def _mp_num_from_checkpoint(self) -> tuple[int, str]:
        path = self._modeling_file()
        if path is None:
            return TRANSFORMERS_MP_NUM, "transformers' CodeGen"
        if not path.is_file():
            raise ConvertError(
                f"config.json's auto_map names {path.name}, which is missing, so the fused QKV layout (mp_num)"
                " is unknown; add the file or pass mp_num"
            )
        value = mp_num_from_source(path.read_text(encoding="utf-8", errors="replace"))
        if value is None:
            raise ConvertError(f"{path.name} assigns no mp_num, so the fused QKV layout is unknown; pass mp_num")
        return value, path.name

    def _modeling_file(self) -> Path | None:
        """The checkpoint's own modeling code, if it has any: named by auto_map, else modeling_codegen.py."""
        directory = self.checkpoint.directory
        auto_map = self.config.get("auto_map") or {}
        reference = auto_map.get("AutoModelForCausalLM") if isinstance(auto_map, dict) else None
        if isinstance(reference, str):
            module = reference.split("--")[-1].rsplit(".", 1)[0]  # "repo--module.Class" or "module.Class"
            if not module.isidentifier():
                raise ConvertError(f"config.json: auto_map names an unexpected module {reference!r}")
            return directory / f"{module}.py"
        default = directory / "modeling_codegen.py"
        return default if default.is_file() else None

    def expected_tensors(self) -> dict[str, tuple[int, ...]]:
        hidden, inner, vocab_size = self.hidden, self.n_inner, self.config_int("vocab_size")
        layer_shapes = {
            "ln_1.weight": (hidden,),
            "ln_1.bias": (hidden,),
            "attn.qkv_proj.weight": (3 * hidden, hidden),
            "attn.out_proj.weight": (hidden, hidden),
            "mlp.fc_in.weight": (inner, hidden),
            "mlp.fc_in.bias": (inner,),
            "mlp.fc_out.weight": (hidden, inner),
            "mlp.fc_out.bias": (hidden,),
        }
        shapes = {"transformer.wte.weight": (vocab_size, hidden)}
        for layer in range(self.config_int("n_layer")):
            for suffix, shape in layer_shapes.items():
                shapes[f"transformer.h.{layer}.{suffix}"] = shape
        shapes["transformer.ln_f.weight"] = (hidden,)
        shapes["transformer.ln_f.bias"] = (hidden,)
        shapes["lm_head.weight"] = (vocab_size, hidden)
        shapes["lm_head.bias"] = (vocab_size,)
        return shapes

    def ignored_tensor(self, name: str) -> bool:
        return name.endswith(_IGNORED_SUFFIXES)

    def plan_tensor(self, name: str, record: TensorRecord) -> TensorPlan:
        if name in _GLOBAL_TENSORS:
            return TensorPlan(_GLOBAL_TENSORS[name], record)
        match = _LAYER_NAME.match(name)
        assert match, name  # expected_tensors() only names these two kinds
        layer, suffix = match.groups()
        gguf_name = f"blk.{layer}.{_LAYER_TENSORS[suffix]}"
        if suffix == "attn.qkv_proj.weight":
            return TensorPlan(gguf_name, record, self._phi2_qkv)
        return TensorPlan(gguf_name, record)

    def _phi2_qkv(self, weight: np.ndarray) -> np.ndarray:
        """PHI2's fused attn_qkv: rows Q, K, V one after another, Q and K in NEOX rotary order."""
        query, key, value = split_fused_qkv(weight, self.mp_num)
        query = gptj_rotary_to_neox(query, self.n_heads, self.rotary_dim)
        key = gptj_rotary_to_neox(key, self.n_heads, self.rotary_dim)
        return np.concatenate([query, key, value])

    def added_plans(self) -> list[TensorPlan]:
        hidden = self.hidden
        plans = []
        for layer in range(self.config_int("n_layer")):
            plans.append(TensorPlan.zeros(f"blk.{layer}.attn_qkv.bias", (3 * hidden,)))
            plans.append(TensorPlan.zeros(f"blk.{layer}.attn_output.bias", (hidden,)))
        return plans

    def add_hparams(self, writer: GGUFWriter) -> None:
        writer.add_context_length(self.context_length)
        writer.add_embedding_length(self.hidden)
        writer.add_block_count(self.config_int("n_layer"))
        writer.add_feed_forward_length(self.n_inner)
        writer.add_head_count(self.n_heads)
        writer.add_head_count_kv(self.n_heads)
        writer.add_rope_dimension_count(self.rotary_dim)
        writer.add_rope_freq_base(ROPE_FREQ_BASE)
        writer.add_layer_norm_eps(float(self.config.get("layer_norm_epsilon", 1e-5)))
        writer.add_vocab_size(self.config_int("vocab_size"))

    @functools.cached_property
    def checkpoint_vocab(self) -> CheckpointVocab:
        return read_checkpoint_vocab(self.checkpoint.directory, self.config_int("vocab_size"))

    @property
    def family(self) -> str:
        return "codegen2" if self.checkpoint_vocab.has_infill else "codegen1"

    @property
    def prompt_format(self) -> str:
        return "codegen-infill" if self.checkpoint_vocab.has_infill else "left-to-right"

    def add_vocab(self, writer: GGUFWriter) -> None:
        vocab = self.checkpoint_vocab
        table = vocab.vocab
        vocab_size = self.config_int("vocab_size")
        if len(table.tokens) != vocab_size:
            raise ConvertError(f"the tokenizer has {len(table.tokens)} tokens, but config.json says {vocab_size}")
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("gpt-2")
        writer.add_token_list(table.tokens)
        writer.add_token_types(table.token_types)
        writer.add_token_merges(table.merges)
        if vocab.bos_id is not None:
            writer.add_bos_token_id(vocab.bos_id)
        writer.add_eos_token_id(vocab.eos_id)
        if vocab.eom_id is not None:
            writer.add_eom_token_id(vocab.eom_id)
        writer.add_add_bos_token(False)
