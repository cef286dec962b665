"""The built-in default: a tiny random CodeGen2.5-layout checkpoint, converted end to end.

Real weights can't be assumed to be present, so `make demo` builds a
checkpoint in the exact file layout of Salesforce/codegen25-7b-mono_P (with
random weights), converts it to f16 and to Q4_K_M and summarises the files.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from convert.pipeline import ConvertEvents, ConvertOptions, ConvertResult, convert
from convert.synthetic import SHAPES, write_codegen25_checkpoint

DEMO_NAME = "codegen25-tiny-random"


@dataclass
class DemoResult:
    checkpoint: Path
    conversions: list[ConvertResult]


def run_demo(directory: Path, events: ConvertEvents | None = None) -> DemoResult:
    checkpoint = directory / DEMO_NAME
    if checkpoint.exists():
        shutil.rmtree(checkpoint)
    write_codegen25_checkpoint(checkpoint, SHAPES["tiny"], shards=3, seed=0)
    conversions = [
        convert(ConvertOptions(source=str(checkpoint), output_dir=directory, outtype="f16", force=True), events),
        convert(ConvertOptions(source=str(checkpoint), output_dir=directory, quant="Q4_K_M", force=True), events),
    ]
    return DemoResult(checkpoint, conversions)
