"""`localcoder pull REPO`: download a Hugging Face checkpoint, convert and quantize it into the model directory."""

from __future__ import annotations

import re
from typing import Optional

import typer

from convert.checkpoint.source import HUB_FILE_PATTERNS
from convert.pipeline import ConvertOptions
from convert.writer import DIRECT_TYPES
from localcoder import paths
from localcoder.cli._common import fail, user_errors
from localcoder.cli.convert_cmd import run_convert
from localcoder.errors import LocalcoderError
from localcoder.models import check_name

DEFAULT_QUANT = "Q4_K_M"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

EPILOG = f"""\
[bold]Examples[/]

  localcoder pull Salesforce/codegen25-7b-mono_P                 [dim]# -> codegen25-7b-mono_P.{DEFAULT_QUANT}[/]
  localcoder pull Salesforce/codegen25-7b-mono_P --quant Q8_0
  localcoder pull Salesforce/codegen25-7b-instruct_P --name instruct
  localcoder pull Salesforce/codegen2-1B --quant f16             [dim]# CodeGen2 and CodeGen1 too[/]

Only the files the converter reads are downloaded ({", ".join(HUB_FILE_PATTERNS)}), into the Hugging Face
cache (HF_HOME); an interrupted download resumes when the same command runs again. The model is written as
NAME.gguf in the model directory (LOCALCODER_HOME/models; see `localcoder models`); the f16 intermediate of a
quantization is a temporary file, removed once the quantized file is in place. Gated repos need `hf auth login`.
"""


def register(app: typer.Typer) -> None:
    app.command("pull", epilog=EPILOG)(pull_command)


@user_errors
def pull_command(
    repo: str = typer.Argument(..., help="A Hugging Face repo id, such as Salesforce/codegen25-7b-mono_P."),
    quant: str = typer.Option(
        DEFAULT_QUANT, "--quant", "-q", help="Q4_K_M, Q5_K_M, Q6_K, Q8_0, ... or f16 / f32 / bf16 (no quantization)."
    ),
    name: Optional[str] = typer.Option(None, "--name", help="The model's name. Default: REPO's name.QUANT."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision (branch, tag or commit)."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace a model of the same name."),
    threads: int = typer.Option(0, "--threads", min=0, help="Quantizer threads (0: all cores)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Download a CodeGen checkpoint from the Hugging Face Hub and convert it into the model directory, in one step."""
    if not _REPO_ID.match(repo):
        raise fail(f"{repo}: not a Hugging Face repo id (owner/name); for a local directory use `localcoder convert`")
    direct = quant.lower() in DIRECT_TYPES
    label = quant.upper()
    name = name.removesuffix(".gguf") if name else f"{repo.split('/')[1]}.{label}"
    check_name(name)
    target = paths.models_dir() / f"{name}.gguf"
    if (target.exists() or target.is_symlink()) and not force:
        raise LocalcoderError(f"a model named {name} is already in {target.parent}; pass --force to replace it")
    options = ConvertOptions(
        source=repo,
        output=target,
        outtype=quant.lower() if direct else "f16",
        quant=None if direct else quant,
        revision=revision,
        force=force,
        threads=threads,
    )
    try:
        run_convert(options, as_json)
    except KeyboardInterrupt:
        if target.exists():
            raise
        raise fail("interrupted; nothing was written (the same command again resumes the download)", 130) from None
