"""`localcoder convert`: a Hugging Face checkpoint -> GGUF (and quantized GGUF)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from convert.pipeline import ConvertOptions, convert
from convert.verify import verify
from convert.writer import DIRECT_TYPES
from ggufkit.errors import InterruptedAfterWrite
from localcoder import paths
from localcoder.cli._common import fail, stderr, stdout, user_errors
from localcoder.cli.progress import RichConvertEvents
from localcoder.render import print_json, render_convert, render_verify

EPILOG = """\
[bold]Examples[/]

  localcoder convert ./codegen25-7b-mono_P                      [dim]# f16 into the model directory[/]
  localcoder convert Salesforce/codegen2-1B --quant Q8_0         [dim]# CodeGen2 (and CodeGen1) too[/]
  localcoder convert Salesforce/codegen25-7b-mono_P --quant Q4_K_M
  localcoder convert ./ckpt -o ckpt.f32.gguf --outtype f32 --verify
  HF_HUB_OFFLINE=1 localcoder convert Salesforce/codegen25-7b-multi_P   [dim]# from the local cache only[/]
"""


def register(app: typer.Typer) -> None:
    app.command("convert", epilog=EPILOG)(convert_command)


@user_errors
def convert_command(
    source: str = typer.Argument(
        ..., help="Checkpoint directory, or a Hugging Face repo id such as Salesforce/codegen25-7b-mono_P."
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Output .gguf file. Default: MODEL.TYPE.gguf in the model directory."
    ),
    outtype: str = typer.Option(
        "f16",
        "--outtype",
        "-t",
        help=f"Type written directly: {', '.join(DIRECT_TYPES)}. With --quant, the intermediate's type.",
    ),
    quant: Optional[str] = typer.Option(
        None, "--quant", "-q", help="Quantize with llama.cpp: Q4_0, Q4_K_M, Q5_K_M, Q6_K, Q8_0, ..."
    ),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision (branch, tag or commit)."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing output file."),
    do_verify: bool = typer.Option(
        False, "--verify", help="Check tokenizer (and, with torch installed, logit) parity after writing."
    ),
    threads: int = typer.Option(0, "--threads", min=0, help="Quantizer threads (0: all cores)."),
    mp_num: Optional[int] = typer.Option(
        None, "--mp-num", help="CodeGen1/2 only: the fused qkv layout's mp_num (4 or 8; default: from the repo)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Convert a CodeGen2.5, CodeGen2 or CodeGen1 checkpoint to GGUF, exactly, offline; optionally quantize it."""
    options = ConvertOptions(
        source=source,
        output=output,
        output_dir=paths.models_dir(),
        outtype=outtype.lower(),
        quant=quant,
        revision=revision,
        force=force,
        threads=threads,
        mp_num=mp_num,
    )
    run_convert(options, as_json, do_verify)


def run_convert(options: ConvertOptions, as_json: bool, do_verify: bool = False) -> None:
    """Convert with a progress bar on stderr, then print the result (and the parity report) on stdout."""
    result = None
    try:
        with RichConvertEvents(stderr) as events:
            result = convert(options, events)
        report = verify(result.output, result.source_directory) if do_verify else None
        if as_json:
            payload = {"result": result, "verify": report.to_dict() if report else None}
            print_json("convert", payload)
        else:
            render_convert(stdout, result)
            if report:
                render_verify(stdout, report)
    except KeyboardInterrupt:
        if result is not None:  # the file is in place: say so, not "nothing was written"
            raise InterruptedAfterWrite(result.output) from None
        raise
    if report and not report.ok:
        raise fail("parity check failed; see the report above")
