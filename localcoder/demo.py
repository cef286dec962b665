"""The built-in default: a tiny random CodeGen2.5-layout checkpoint, converted end to end.

Real weights can't be assumed to be present, so `make demo` builds a
checkpoint in the exact file layout of Salesforce/codegen25-7b-mono_P (with
random weights), converts it to f16 and to Q4_K_M, summarises the files, and completes a
sample file and runs a two-turn scripted chat with the Q4_K_M model (random
weights write random code).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from convert.pipeline import ConvertEvents, ConvertOptions, ConvertResult, convert
from convert.synthetic import SHAPES, write_codegen25_checkpoint
from localcoder.chat.session import ChatSession
from localcoder.completion.generate import Sampling
from localcoder.pipeline import CompletionRequest, CompletionResult, complete
from localcoder.runtime import load_model
from localcoder.source import read_source

DEMO_NAME = "codegen25-tiny-random"
SAMPLE = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    \n\n\nprint(fibonacci(10))\n'
SAMPLE_LINE = 3
CHAT_SCRIPT = ("read numbers from a file called data.txt", "print their mean")


@dataclass
class DemoResult:
    checkpoint: Path
    conversions: list[ConvertResult]
    sample: Path
    completion: CompletionResult
    chat_program: str


def run_demo(directory: Path, events: ConvertEvents | None = None) -> DemoResult:
    checkpoint = directory / DEMO_NAME
    if checkpoint.exists():
        shutil.rmtree(checkpoint)
    write_codegen25_checkpoint(checkpoint, SHAPES["tiny"], shards=3, seed=0)
    conversions = [
        convert(ConvertOptions(source=str(checkpoint), output_dir=directory, outtype="f16", force=True), events),
        convert(ConvertOptions(source=str(checkpoint), output_dir=directory, quant="Q4_K_M", force=True), events),
    ]
    sample = directory / "sample.py"
    sample.write_text(SAMPLE)
    buffer = read_source(sample)
    model = load_model(conversions[-1].output)
    request = CompletionRequest.build(buffer, SAMPLE_LINE, sampling=Sampling(temperature=0, max_tokens=16))
    completion = complete(model, request)
    chat = ChatSession(model, sampling=Sampling(temperature=0, max_tokens=12))
    for instruction in CHAT_SCRIPT:
        chat.ask(instruction)
    return DemoResult(checkpoint, conversions, sample, completion, chat.text())
