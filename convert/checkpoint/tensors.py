"""One tensor in a checkpoint file, described by where its bytes lie.

Readers of every checkpoint format produce `TensorRecord`s and nothing else,
so later stages never care whether a tensor came from a PyTorch zip or a
safetensors file. A record holds no data: `read()` maps just its byte range
when the tensor is needed, so converting a 27 GB checkpoint keeps about one
tensor resident at a time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert.errors import ConvertError

# Little-endian numpy dtypes for the safetensors dtype names. BF16 has no
# numpy type: it is read as its raw 16-bit patterns and widened on read.
NUMPY_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


@dataclass(frozen=True)
class TensorRecord:
    """Name, type, shape and byte range of one C-contiguous tensor in a file."""

    name: str
    path: Path
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int

    def read(self) -> np.ndarray:
        """Map this tensor's bytes read-only and return them as an array.

        The array owns its own mapping, so dropping it unmaps the file range
        and its pages can leave memory. F32/F16 come back as that mapping
        itself (no copy); BF16 is widened to float32 (exact), a new array.
        """
        size = os.stat(self.path).st_size
        if size < self.offset + self.nbytes:
            raise ConvertError(
                f"{self.path.name} is truncated: tensor {self.name!r} needs bytes "
                f"{self.offset}..{self.offset + self.nbytes} but the file has {size}"
            )
        dtype = NUMPY_DTYPES[self.dtype]
        count = self.nbytes // dtype.itemsize
        if count == 0:
            # A zero-length mmap would map the whole file; nothing to map here.
            data = np.zeros(self.shape, dtype)
        else:
            data = np.memmap(self.path, dtype, mode="r", offset=self.offset, shape=(count,))
            data = data.reshape(self.shape)
        if self.dtype == "BF16":
            # bfloat16 is the top half of a float32: shifting the bits back
            # into place reproduces the value exactly.
            return (np.asarray(data).astype(np.uint32) << 16).view(np.float32)
        return data
