"""localcoder: an offline code assistant for the CodeGen model family on llama.cpp."""

__version__ = "0.1.0"
