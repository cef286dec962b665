"""safetensors files, read from their JSON header alone.

The format is an 8-byte little-endian header length, a JSON header naming
each tensor's dtype, shape and byte range, then the raw data. Parsing it here
(rather than through the safetensors package) keeps the converter on numpy
and the standard library and yields the same lazy `TensorRecord`s as the
PyTorch reader, with every range checked against the file before use.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

from convert.checkpoint.tensors import NUMPY_DTYPES, TensorRecord
from convert.errors import ConvertError

_MAX_HEADER = 100 << 20  # the format's own limit; a larger length means corruption


def read_safetensors(path: Path) -> dict[str, TensorRecord]:
    """Locate every tensor of a safetensors file without reading its data.

    Raises ConvertError, naming the file, for a truncated or corrupt header, an
    unsupported dtype, or a byte range that does not fit the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            prefix = file.read(8)
            if len(prefix) < 8:
                raise _corrupt(path, "it is shorter than its 8-byte header length")
            (header_length,) = struct.unpack("<Q", prefix)
            if header_length > min(size - 8, _MAX_HEADER):
                raise _corrupt(path, f"its header length {header_length} exceeds the file")
            raw_header = file.read(header_length)
    except OSError as error:
        raise ConvertError(f"cannot read {path}: {error.strerror}") from None
    try:
        header = json.loads(raw_header)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _corrupt(path, "its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "its header is not a JSON object")
    data_start = 8 + header_length
    records = {}
    for name, entry in header.items():
        if name != "__metadata__":
            records[name] = _record(path, name, entry, data_start, size - data_start)
    return records


def _record(path: Path, name: str, entry: Any, data_start: int, data_size: int) -> TensorRecord:
    try:
        dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
    except (TypeError, KeyError, ValueError):
        raise _corrupt(path, f"tensor {name!r} has a malformed header entry") from None
    if dtype not in NUMPY_DTYPES:
        raise ConvertError(f"{path.name}: tensor {name!r} has dtype {dtype}, which is not supported")
    if not (
        isinstance(shape, list)
        and all(type(n) is int and n >= 0 for n in shape)
        and all(type(n) is int for n in (begin, end))
    ):
        raise _corrupt(path, f"tensor {name!r} has a malformed shape or offsets")
    nbytes = math.prod(shape) * NUMPY_DTYPES[dtype].itemsize
    if end - begin != nbytes:
        raise _corrupt(path, f"tensor {name!r} has {end - begin} bytes for shape {shape}")
    if not 0 <= begin <= end <= data_size:
        raise _corrupt(path, f"tensor {name!r} lies outside the file (truncated?)")
    return TensorRecord(name, path, dtype, tuple(shape), data_start + begin, nbytes)


def _corrupt(path: Path, problem: str) -> ConvertError:
    return ConvertError(f"{path.name} is not a valid safetensors file: {problem}")
