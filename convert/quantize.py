"""Quantize a GGUF with llama.cpp's own quantizer (K-quants and the rest).

gguf-py can only write f32/f16/bf16/q8_0-style types; K-quants (Q4_K_M, ...)
need llama.cpp. The quantizer runs in a child process so that Ctrl-C stops it
at once (a C call cannot be interrupted from Python) and its log lines can be
turned into progress.

    python -m convert.quantize IN.gguf OUT.gguf TYPE [THREADS]
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from convert.errors import ConvertError

_FTYPE_PREFIX = "LLAMA_FTYPE_MOSTLY_"
_PROGRESS = re.compile(r"\[\s*(\d+)/\s*(\d+)\]\s+(\S+)")
# "warning: blk.0.attn_q.weight - ncols 64 not divisible by 256 (required for type q4_K) -> falling back to q5_0"
_FALLBACK = re.compile(r"warning:\s+(\S+)\s+- ncols.*->\s*falling back to\s+(\S+)")


def quant_types() -> dict[str, int]:
    """Quantization type name -> llama.cpp ftype, as this llama.cpp build offers them."""
    import llama_cpp

    return {
        name[len(_FTYPE_PREFIX) :]: int(getattr(llama_cpp, name))
        for name in dir(llama_cpp)
        if name.startswith(_FTYPE_PREFIX)
    }


def check_quant_type(name: str) -> str:
    try:
        types = quant_types()
    except ImportError:
        raise ConvertError("--quant needs llama-cpp-python, which is not installed") from None
    upper = name.upper()
    if upper not in types:
        raise ConvertError(f"unknown quantization type {name!r}; choose from {', '.join(sorted(types))}")
    return upper


def run_quantizer(
    source: Path,
    target: Path,
    qtype: str,
    threads: int = 0,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, str]:
    """Quantize `source` into `target` in a child process; raise ConvertError on failure.

    Returns the tensors llama.cpp wrote in another type because their rows don't
    fill the requested type's blocks (tensor name -> the type used instead).
    """
    command = [sys.executable, "-m", "convert.quantize", str(source), str(target), qtype, str(threads)]
    log: list[str] = []
    fallbacks: dict[str, str] = {}
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace"
    ) as child:
        assert child.stderr is not None
        try:
            for line in child.stderr:
                log.append(line.rstrip())
                match = _PROGRESS.search(line)
                if match and on_progress:
                    on_progress(int(match.group(1)), int(match.group(2)), match.group(3))
                if fallback := _FALLBACK.search(line):
                    fallbacks[fallback.group(1)] = fallback.group(2).upper()
        except BaseException:
            child.kill()
            raise
    if child.returncode != 0:
        reason = next((line for line in reversed(log) if line.strip()), f"exit status {child.returncode}")
        raise ConvertError(f"llama.cpp could not quantize to {qtype}: {reason.strip()}")
    return fallbacks


def _quantize_in_this_process(source: str, target: str, qtype: str, threads: int) -> int:
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = quant_types()[qtype]
    params.nthread = threads
    status = llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params))
    if status != 0:
        print(f"llama_model_quantize returned {status}", file=sys.stderr)
    return 0 if status == 0 else 1


if __name__ == "__main__":
    in_path, out_path, type_name, n_threads = sys.argv[1:5]
    sys.exit(_quantize_in_this_process(in_path, out_path, type_name, int(n_threads)))
