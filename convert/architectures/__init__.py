"""Source architectures, one module each, registered by config.json's name."""

from convert.architectures import codegen, codegen25  # noqa: F401  (register themselves)
from convert.architectures.base import (
    ArchitectureOptions,
    SourceArchitecture,
    TensorPlan,
    architecture_for,
    supported_architectures,
)

__all__ = ["ArchitectureOptions", "SourceArchitecture", "TensorPlan", "architecture_for", "supported_architectures"]
