"""What every source architecture provides, and the registry that finds one.

An architecture class is registered under the `architectures` name found in
config.json. It checks the config, says which GGUF tensors come from which
checkpoint tensors (with any reshuffle), and writes hyperparameters and the
tokenizer. Everything else (reading, writing, quantizing) is shared.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from gguf import GGUFWriter

from convert.checkpoint.loader import Checkpoint
from convert.checkpoint.tensors import TensorRecord
from convert.errors import ConvertError


@dataclass(frozen=True)
class TensorPlan:
    """One GGUF tensor: where its data comes from and how it is reshuffled."""

    name: str
    source: TensorRecord
    transform: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.source.shape

    def load(self) -> np.ndarray:
        data = self.source.read()
        return self.transform(data) if self.transform else data


class SourceArchitecture(ABC):
    hf_architecture: ClassVar[str]
    gguf_architecture: ClassVar[str]
    family: ClassVar[str]
    prompt_format: ClassVar[str]

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self.config = checkpoint.config

    @abstractmethod
    def validate(self) -> None:
        """Refuse configs this class cannot convert exactly."""

    @abstractmethod
    def expected_tensors(self) -> dict[str, tuple[int, ...]]:
        """Checkpoint tensor name -> shape implied by config.json."""

    @abstractmethod
    def ignored_tensor(self, name: str) -> bool:
        """Checkpoint tensors that carry nothing the GGUF needs (rotary buffers)."""

    @abstractmethod
    def plan_tensor(self, name: str, record: TensorRecord) -> TensorPlan:
        """Map one checkpoint tensor to its GGUF tensor."""

    @abstractmethod
    def add_hparams(self, writer: GGUFWriter) -> None: ...

    @abstractmethod
    def add_vocab(self, writer: GGUFWriter) -> None: ...

    @property
    def context_length(self) -> int:
        return int(self.config.get("max_position_embeddings", 2048))

    def tensor_plans(self) -> list[TensorPlan]:
        """Check the checkpoint's tensors against the config and map them, in file order."""
        available = self.checkpoint.tensors
        expected = self.expected_tensors()
        for name, shape in expected.items():
            record = available.get(name)
            if record is None:
                raise ConvertError(f"checkpoint lacks tensor {name}")
            if tuple(record.shape) != shape:
                raise ConvertError(f"tensor {name} has shape {tuple(record.shape)}, but config.json implies {shape}")
        unexpected = [n for n in available if n not in expected and not self.ignored_tensor(n)]
        if unexpected:
            raise ConvertError(
                f"checkpoint has {len(unexpected)} tensor(s) a {self.hf_architecture} does not, e.g. {unexpected[0]}"
            )
        return [self.plan_tensor(name, available[name]) for name in expected]

    def config_int(self, key: str, default: int | None = None) -> int:
        value: Any = self.config.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConvertError(f"config.json: {key} must be a positive integer (got {value!r})")
        return value


_REGISTRY: dict[str, type[SourceArchitecture]] = {}


def register(cls: type[SourceArchitecture]) -> type[SourceArchitecture]:
    _REGISTRY[cls.hf_architecture] = cls
    return cls


def supported_architectures() -> list[str]:
    return sorted(_REGISTRY)


def architecture_for(checkpoint: Checkpoint) -> SourceArchitecture:
    name = checkpoint.architecture
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ConvertError(f"unsupported architecture {name!r}; supported: {', '.join(supported_architectures())}")
    arch = cls(checkpoint)
    arch.validate()
    return arch
