"""Hugging Face CodeGen checkpoints -> GGUF for llama.cpp.

The pipeline, one module per stage:
    checkpoint/    read a checkpoint directory or Hub repo, lazily and safely
    architectures/ map one source architecture's tensors and hyperparameters
    vocab/         rebuild the tokenizer exactly, from data shipped here
    writer.py      stream tensors into a GGUF file
    quantize.py    llama.cpp's own quantizer for K-quants and friends
    verify.py      parity checks of a written GGUF against its source
"""

CONVERTER_VERSION = "0.1.0"
