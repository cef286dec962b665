"""What both the converter (`convert/`) and the runtime (`localcoder/`) stand on, and nothing else.

    llamacpp.py  the few llama-cpp-python calls both make, with their sharp edges filed off
    metadata.py  the GGUF metadata keys the converter writes and the runtime reads
    errors.py    the base of the one-line errors the CLI prints

Completing a line imports this package, never the converter.
"""
