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
    """One GGUF tensor: where its data comes from and how it is reshuffled.

    Most plans read one checkpoint tensor (`source`) and may reshuffle it
    (`transform`, which must keep its shape unless `shape_override` says
    otherwise). A plan with no source builds its data with `make` instead:
    the zero biases a llama.cpp graph requires where the checkpoint has none.
    """

    name: str
    source: TensorRecord | None
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    make: Callable[[], np.ndarray] | None = None
    shape_override: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.source is None and (self.make is None or self.shape_override is None):
            raise ValueError(f"{self.name}: a plan without a source needs `make` and `shape_override`")

    @classmethod
    def zeros(cls, name: str, shape: tuple[int, ...]) -> TensorPlan:
        return cls(name, None, make=lambda: np.zeros(shape, np.float32), shape_override=shape)

    @property
    def shape(self) -> tuple[int, ...]:
        if self.shape_override is not None:
            return self.shape_override
        assert self.source is not None
        return self.source.shape

    @property
    def source_bytes(self) -> int:
        """Checkpoint bytes this tensor consumes (0 when synthesized), for progress."""
        return self.source.nbytes if self.source else 0

    @property
    def source_dtype(self) -> str | None:
        return self.source.dtype if self.source else None

    def load(self) -> np.ndarray:
        if self.make is not None:
            data = self.make()
        else:
            assert self.source is not None
            data = self.source.read()
        data = self.transform(data) if self.transform else data
        if tuple(data.shape) != self.shape:
            raise ConvertError(f"internal error: {self.name} came out as {tuple(data.shape)}, planned {self.shape}")
        return data


@dataclass(frozen=True)
class ArchitectureOptions:
    """User choices a source architecture may need beyond the checkpoint itself."""

    mp_num: int | None = None  # CodeGen1/2's fused-QKV shard count, when the checkpoint cannot tell


class SourceArchitecture(ABC):
    hf_architecture: ClassVar[str]
    gguf_architecture: ClassVar[str]
    # Class attributes for most architectures; an instance property where the
    # checkpoint decides (CodeGen1 vs CodeGen2 share one architecture name).
    family: str
    prompt_format: str
    accepts_mp_num: ClassVar[bool] = False

    def __init__(self, checkpoint: Checkpoint, options: ArchitectureOptions | None = None) -> None:
        self.checkpoint = checkpoint
        self.config = checkpoint.config
        self.options = options or ArchitectureOptions()

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
        return [self.plan_tensor(name, available[name]) for name in expected] + self.added_plans()

    def added_plans(self) -> list[TensorPlan]:
        """GGUF tensors no checkpoint tensor maps to (zero biases), written after the mapped ones."""
        return []

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


def architecture_for(checkpoint: Checkpoint, options: ArchitectureOptions | None = None) -> SourceArchitecture:
    name = checkpoint.architecture
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ConvertError(f"unsupported architecture {name!r}; supported: {', '.join(supported_architectures())}")
    if options and options.mp_num is not None and not cls.accepts_mp_num:
        raise ConvertError(f"mp_num applies to CodeGen1/2 (CodeGenForCausalLM) checkpoints, not {name}")
    arch = cls(checkpoint, options)
    arch.validate()
    return arch
