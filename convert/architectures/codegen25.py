"""CodeGen2.5 (Salesforce/codegen25-7b-*): a LLaMA body with a tiktoken GPT-2 vocabulary.

The weights map onto llama.cpp's `llama` graph one to one. Two things are
CodeGen2.5's own: the tokenizer, rebuilt from the GPT-2 files shipped in
ggufkit/vocab (the checkpoint carries only Python code for it, which is never
run), and the Q/K row order (see `interleave_rotary_halves`).
"""

from __future__ import annotations

import re

import numpy as np
from gguf import GGUFWriter

from convert.architectures.base import SourceArchitecture, TensorPlan, register
from convert.checkpoint.tensors import TensorRecord
from convert.errors import ConvertError
from ggufkit.vocab import codegen25 as vocab

_LAYER_TENSORS = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_GLOBAL_TENSORS = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
_LAYER_NAME = re.compile(r"^model\.layers\.(\d+)\.(.+)$")


def interleave_rotary_halves(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder Q or K rows from Hugging Face's half-split rotary layout to adjacent pairs.

    Hugging Face LLaMA rotates dimension i of a head with dimension i + d/2;
    llama.cpp's `llama` graph rotates dimension 2i with 2i + 1. Within each
    head, rows [0..d/2) and [d/2..d) are therefore interleaved as
    0, d/2, 1, d/2 + 1, ... Without this the model runs and is silently wrong.
    """
    rows = weight.shape[0]
    head_dim = rows // n_heads
    split = weight.reshape(n_heads, 2, head_dim // 2, *weight.shape[1:])
    return np.ascontiguousarray(split.swapaxes(1, 2)).reshape(weight.shape)


@register
class CodeGen25(SourceArchitecture):
    hf_architecture = "LlamaForCausalLM"
    gguf_architecture = "llama"
    family = "codegen2.5"
    prompt_format = "codegen-infill"

    def validate(self) -> None:
        tokenizer_class = self.checkpoint.tokenizer_config.get("tokenizer_class")
        if tokenizer_class not in (None, "CodeGen25Tokenizer"):
            raise ConvertError(
                f"LlamaForCausalLM is supported for CodeGen2.5 only; this checkpoint's tokenizer is {tokenizer_class}"
            )
        vocab_size = self.config_int("vocab_size")
        if vocab_size != vocab.VOCAB_SIZE:
            raise ConvertError(f"config.json: vocab_size {vocab_size}; CodeGen2.5 checkpoints have {vocab.VOCAB_SIZE}")
        act = self.config.get("hidden_act", "silu")
        if act != "silu":
            raise ConvertError(f"config.json: hidden_act {act!r}; CodeGen2.5 uses silu")
        if self.config.get("rope_scaling"):
            raise ConvertError("config.json: rope_scaling is set; CodeGen2.5 checkpoints use none")
        hidden, heads, kv_heads = self.hidden, self.n_heads, self.n_kv_heads
        if hidden % heads or (hidden // heads) % 2 or heads % kv_heads:
            raise ConvertError(
                f"config.json: hidden_size {hidden} does not split into {heads} heads"
                f" / {kv_heads} KV heads of even size"
            )
        self.config_int("num_hidden_layers")
        self.config_int("intermediate_size")

    @property
    def hidden(self) -> int:
        return self.config_int("hidden_size")

    @property
    def n_heads(self) -> int:
        return self.config_int("num_attention_heads")

    @property
    def n_kv_heads(self) -> int:
        return self.config_int("num_key_value_heads", self.n_heads)

    @property
    def tied_embeddings(self) -> bool:
        return bool(self.config.get("tie_word_embeddings", False))

    def expected_tensors(self) -> dict[str, tuple[int, ...]]:
        hidden, inter = self.hidden, self.config_int("intermediate_size")
        kv_rows = hidden // self.n_heads * self.n_kv_heads
        layer_shapes = {
            "input_layernorm.weight": (hidden,),
            "self_attn.q_proj.weight": (hidden, hidden),
            "self_attn.k_proj.weight": (kv_rows, hidden),
            "self_attn.v_proj.weight": (kv_rows, hidden),
            "self_attn.o_proj.weight": (hidden, hidden),
            "post_attention_layernorm.weight": (hidden,),
            "mlp.gate_proj.weight": (inter, hidden),
            "mlp.up_proj.weight": (inter, hidden),
            "mlp.down_proj.weight": (hidden, inter),
        }
        shapes = {"model.embed_tokens.weight": (vocab.VOCAB_SIZE, hidden)}
        for layer in range(self.config_int("num_hidden_layers")):
            for suffix, shape in layer_shapes.items():
                shapes[f"model.layers.{layer}.{suffix}"] = shape
        shapes["model.norm.weight"] = (hidden,)
        if not self.tied_embeddings:
            shapes["lm_head.weight"] = (vocab.VOCAB_SIZE, hidden)
        return shapes

    def ignored_tensor(self, name: str) -> bool:
        return name.endswith("rotary_emb.inv_freq")

    def plan_tensor(self, name: str, record: TensorRecord) -> TensorPlan:
        if name in _GLOBAL_TENSORS:
            return TensorPlan(_GLOBAL_TENSORS[name], record)
        match = _LAYER_NAME.match(name)
        assert match, name  # expected_tensors() only names these two kinds
        layer, suffix = match.groups()
        gguf_name = f"blk.{layer}.{_LAYER_TENSORS[suffix]}"
        if suffix == "self_attn.q_proj.weight":
            return TensorPlan(gguf_name, record, lambda w: interleave_rotary_halves(w, self.n_heads))
        if suffix == "self_attn.k_proj.weight":
            return TensorPlan(gguf_name, record, lambda w: interleave_rotary_halves(w, self.n_kv_heads))
        return TensorPlan(gguf_name, record)

    def add_hparams(self, writer: GGUFWriter) -> None:
        writer.add_context_length(self.context_length)
        writer.add_embedding_length(self.hidden)
        writer.add_block_count(self.config_int("num_hidden_layers"))
        writer.add_feed_forward_length(self.config_int("intermediate_size"))
        writer.add_head_count(self.n_heads)
        writer.add_head_count_kv(self.n_kv_heads)
        writer.add_rope_dimension_count(self.hidden // self.n_heads)
        writer.add_rope_freq_base(float(self.config.get("rope_theta", 10000.0)))
        writer.add_layer_norm_rms_eps(float(self.config.get("rms_norm_eps", 1e-6)))
        writer.add_vocab_size(vocab.VOCAB_SIZE)

    def add_vocab(self, writer: GGUFWriter) -> None:
        vocab.add_to_gguf(writer)
