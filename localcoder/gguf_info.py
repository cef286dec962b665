"""Read a GGUF file's metadata and tensor table into a small typed summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ggufkit import metadata
from localcoder.errors import LocalcoderError

_ARRAY_PREVIEW = 8


@dataclass
class TensorInfo:
    name: str
    type: str
    shape: list[int]
    nbytes: int


@dataclass
class GGUFSummary:
    path: str
    file_bytes: int
    architecture: str
    name: str | None
    family: str | None
    prompt_format: str | None
    file_type: str | None
    context_length: int | None
    parameters: int
    tensor_count: int
    tensor_types: dict[str, int]
    metadata: dict[str, Any]
    tensors: list[TensorInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _field_value(field_: Any) -> Any:
    """A metadata value as plain Python; long arrays are summarised, not dumped."""
    from gguf import GGUFValueType

    if not field_.types:
        return None
    kind = field_.types[0]
    if kind == GGUFValueType.ARRAY:
        count = len(field_.data)
        items = [_scalar(field_, i) for i in field_.data[:_ARRAY_PREVIEW]]
        return items if count <= _ARRAY_PREVIEW else {"length": count, "first": items}
    return _scalar(field_, field_.data[0])


def _scalar(field_: Any, index: int) -> Any:
    from gguf import GGUFValueType

    part = field_.parts[index]
    if field_.types[-1] == GGUFValueType.STRING:
        return bytes(part).decode("utf-8", errors="replace")
    value = part.tolist()
    value = value[0] if isinstance(value, list) and len(value) == 1 else value
    return value


def read_gguf(path: Path) -> GGUFSummary:
    from gguf import GGUFReader, LlamaFileType

    if not path.exists():
        raise LocalcoderError(f"{path}: no such file")
    if path.is_dir():
        raise LocalcoderError(f"{path} is a directory, not a GGUF file")
    try:
        reader = GGUFReader(path, "r")
    except (ValueError, OSError, IndexError, KeyError, TypeError) as exc:
        raise LocalcoderError(
            f"{path}: not a valid GGUF file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None

    values = {name: _field_value(f) for name, f in reader.fields.items() if not name.startswith("GGUF.")}
    arch = str(values.get("general.architecture", "unknown"))
    tensors = [
        TensorInfo(t.name, t.tensor_type.name, [int(x) for x in reversed(t.shape.tolist())], int(t.n_bytes))
        for t in reader.tensors
    ]
    file_type = values.get("general.file_type")
    try:
        file_type_name = LlamaFileType(file_type).name.removeprefix("MOSTLY_") if file_type is not None else None
    except ValueError:
        file_type_name = str(file_type)
    return GGUFSummary(
        path=str(path),
        file_bytes=path.stat().st_size,
        architecture=arch,
        name=values.get("general.name"),
        family=values.get(metadata.FAMILY),
        prompt_format=values.get(metadata.PROMPT_FORMAT),
        file_type=file_type_name,
        context_length=values.get(f"{arch}.context_length"),
        parameters=int(sum(int(np.prod(t.shape, dtype=np.int64)) for t in tensors)),
        tensor_count=len(tensors),
        tensor_types=dict(Counter(t.type for t in tensors)),
        metadata=values,
        tensors=tensors,
    )
