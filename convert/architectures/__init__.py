"""Source architectures, one module each, registered by config.json's name."""

from convert.architectures import codegen25  # noqa: F401  (registers itself)
from convert.architectures.base import (
    SourceArchitecture,
    TensorPlan,
    architecture_for,
    supported_architectures,
)

__all__ = ["SourceArchitecture", "TensorPlan", "architecture_for", "supported_architectures"]
