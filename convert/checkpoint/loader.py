"""Read a checkpoint directory: config, tokenizer config and a lazy tensor table.

Nothing here loads tensor data: each TensorRecord maps its bytes only when
the writer asks for them, so memory stays near one tensor. Files that real
repos ship, in the order they are preferred:

    model.safetensors.index.json + shards, or model.safetensors
    pytorch_model.bin.index.json + shards, or pytorch_model.bin
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convert.checkpoint.safetensors_file import read_safetensors
from convert.checkpoint.source import ResolvedSource
from convert.checkpoint.tensors import TensorRecord
from convert.checkpoint.torch_bin import read_torch_bin
from convert.errors import ConvertError

_LAYOUTS = (
    ("model.safetensors.index.json", "model.safetensors", read_safetensors),
    ("pytorch_model.bin.index.json", "pytorch_model.bin", read_torch_bin),
)


@dataclass
class Checkpoint:
    directory: Path
    config: dict[str, Any]
    tokenizer_config: dict[str, Any]
    tensors: dict[str, TensorRecord]
    repo_id: str | None = None
    revision: str | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def architecture(self) -> str:
        names = self.config.get("architectures") or []
        return names[0] if names else str(self.config.get("model_type", "unknown"))

    @property
    def name(self) -> str:
        if self.repo_id:
            return self.repo_id.split("/")[-1]
        return self.directory.name

    @property
    def total_bytes(self) -> int:
        return sum(record.nbytes for record in self.tensors.values())


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConvertError(
            f"{path.parent}: no {path.name} ({what}); is this a Hugging Face checkpoint directory?"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConvertError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConvertError(f"{path}: expected a JSON object")
    return data


def load_checkpoint(source: ResolvedSource) -> Checkpoint:
    directory = source.directory
    config = read_json(directory / "config.json", "the model configuration")
    tokenizer_path = directory / "tokenizer_config.json"
    tokenizer_config = read_json(tokenizer_path, "the tokenizer configuration") if tokenizer_path.exists() else {}
    tensors, files = _read_tensor_table(directory)
    return Checkpoint(
        directory=directory,
        config=config,
        tokenizer_config=tokenizer_config,
        tensors=tensors,
        repo_id=source.repo_id,
        revision=source.revision,
        files=files,
    )


def _read_tensor_table(directory: Path) -> tuple[dict[str, TensorRecord], list[Path]]:
    for index_name, single_name, reader in _LAYOUTS:
        index_path = directory / index_name
        if index_path.exists():
            return _read_sharded(index_path, reader)
        single = directory / single_name
        if single.exists():
            return reader(single), [single]
    raise ConvertError(
        f"{directory}: no weights found (expected pytorch_model.bin.index.json with its shards,"
        " pytorch_model.bin, or *.safetensors)"
    )


def _read_sharded(index_path: Path, reader) -> tuple[dict[str, TensorRecord], list[Path]]:
    index = read_json(index_path, "the shard index")
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ConvertError(f"{index_path}: no weight_map")
    shard_names = sorted(set(weight_map.values()))
    tensors: dict[str, TensorRecord] = {}
    files: list[Path] = []
    for shard_name in shard_names:
        shard = index_path.parent / shard_name
        if not shard.is_file():
            raise ConvertError(f"{index_path.name} names shard {shard_name}, which is missing from {index_path.parent}")
        files.append(shard)
        for name, record in reader(shard).items():
            tensors[name] = record
    for name, shard_name in weight_map.items():
        record = tensors.get(name)
        if record is None or record.path.name != Path(shard_name).name:
            raise ConvertError(
                f"{index_path.name} says tensor {name} is in {shard_name}, but that shard does not hold it"
            )
    return tensors, files
