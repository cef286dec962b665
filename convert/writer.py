"""Stream mapped tensors into a GGUF file, one tensor (and one row chunk) at a time.

The header and tensor table are written first from shapes alone; then each
tensor is read from its mapped shard, reshuffled, converted in row chunks
and appended. Peak memory is about one source tensor plus one chunk.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType, quants
from gguf.constants import GGML_QUANT_SIZES

from convert.architectures.base import TensorPlan
from convert.errors import ConvertError
from convert.fastcast import to_float16

# Output types written directly by numpy; everything else goes through llama.cpp.
DIRECT_TYPES: dict[str, tuple[GGMLQuantizationType, LlamaFileType]] = {
    "f32": (GGMLQuantizationType.F32, LlamaFileType.ALL_F32),
    "f16": (GGMLQuantizationType.F16, LlamaFileType.MOSTLY_F16),
    "bf16": (GGMLQuantizationType.BF16, LlamaFileType.MOSTLY_BF16),
    "q8_0": (GGMLQuantizationType.Q8_0, LlamaFileType.MOSTLY_Q8_0),
}
_CHUNK_BYTES = 64 << 20
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@dataclass
class TensorLayout:
    plan: TensorPlan
    qtype: GGMLQuantizationType
    nbytes: int


def choose_type(plan: TensorPlan, outtype: str) -> GGMLQuantizationType:
    """1-D tensors (norms) stay f32 as llama.cpp expects; rows that don't fill a block fall back to f16."""
    wanted = DIRECT_TYPES[outtype][0]
    if len(plan.shape) == 1:
        return GGMLQuantizationType.F32
    block, _ = GGML_QUANT_SIZES[wanted]
    if plan.shape[-1] % block:
        return GGMLQuantizationType.F16
    return wanted


def layout(plans: list[TensorPlan], outtype: str) -> list[TensorLayout]:
    result = []
    for plan in plans:
        qtype = choose_type(plan, outtype)
        block, type_size = GGML_QUANT_SIZES[qtype]
        rows = int(np.prod(plan.shape[:-1], dtype=np.int64))
        result.append(TensorLayout(plan, qtype, rows * plan.shape[-1] // block * type_size))
    return result


def header_writer(path: Path, arch: str, tensors: list[TensorLayout]) -> GGUFWriter:
    writer = GGUFWriter(path, arch)
    for item in tensors:
        writer.add_tensor_info(item.plan.name, item.plan.shape, np.dtype(np.float32), item.nbytes, raw_dtype=item.qtype)
    return writer


def _encode_chunks(data: np.ndarray, qtype: GGMLQuantizationType) -> Iterator[np.ndarray]:
    rows = data.reshape(-1, data.shape[-1]) if data.ndim > 1 else data.reshape(1, -1)
    step = max(1, _CHUNK_BYTES // max(1, rows.shape[1] * 4))
    for start in range(0, rows.shape[0], step):
        chunk = np.asarray(rows[start : start + step], dtype=np.float32)
        yield to_float16(chunk) if qtype == GGMLQuantizationType.F16 else quants.quantize(chunk, qtype)


def write_tensor_data(
    writer: GGUFWriter,
    tensors: list[TensorLayout],
    on_tensor: Callable[[TensorLayout], None] | None = None,
) -> None:
    """Append every tensor's data after the header, in table order."""
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        assert writer.fout is not None
        out = writer.fout[0]
        for item in tensors:
            writer.write_padding(out, out.tell())
            start = out.tell()
            data = item.plan.load()
            for encoded in _encode_chunks(data, item.qtype):
                # file.write, unlike ndarray.tofile, reports a full disk with its errno.
                out.write(memoryview(np.ascontiguousarray(encoded)).cast("B"))
            del data  # drops the shard mapping before the next tensor is read
            written = out.tell() - start
            if written != item.nbytes:
                raise ConvertError(f"internal error: {item.plan.name} wrote {written} bytes, expected {item.nbytes}")
            writer.write_padding(out, item.nbytes)
            if on_tensor:
                on_tensor(item)
        out.flush()
        os.fsync(out.fileno())
    finally:
        with contextlib.suppress(OSError):  # after a failure the caller removes the file anyway
            writer.close()
