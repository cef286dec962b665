"""convert(): checkpoint -> architecture mapping -> GGUF -> (optional) llama.cpp quantization.

Output is always written to a hidden temporary file beside the target and
renamed into place at the end, so an error, a full disk or Ctrl-C leaves no
partial GGUF behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gguf import GGUFWriter

from convert import CONVERTER_VERSION
from convert.architectures import ArchitectureOptions, SourceArchitecture, architecture_for
from convert.checkpoint.loader import Checkpoint, load_checkpoint
from convert.checkpoint.source import resolve_source
from convert.errors import ConvertError
from convert.quantize import check_quant_type, run_quantizer
from convert.writer import DIRECT_TYPES, DISK_FULL_ERRNOS, TensorLayout, header_writer, layout, write_tensor_data
from ggufkit import metadata
from ggufkit.errors import InterruptedAfterWrite

_SPACE_MARGIN = 16 << 20


@dataclass
class ConvertOptions:
    source: str
    output: Path | None = None
    output_dir: Path | None = None  # where a default-named output goes
    outtype: str = "f16"
    quant: str | None = None
    revision: str | None = None
    force: bool = False
    threads: int = 0
    mp_num: int | None = None  # CodeGen1/2 only: override the fused-QKV shard count read from the checkpoint


@dataclass
class ConvertResult:
    output: Path
    source_directory: Path  # where the checkpoint was read from (a Hub id resolved to its cache folder)
    architecture: str
    family: str
    file_type: str
    tensors: int
    output_bytes: int
    source_bytes: int
    seconds: float
    fallbacks: dict[str, str] = field(default_factory=dict)  # tensor -> the type it was written in instead


class ConvertEvents(Protocol):
    """Progress hooks; the CLI draws them, tests and library callers may ignore them."""

    def writing(self, total_bytes: int, total_tensors: int) -> None: ...
    def tensor_written(self, name: str, source_bytes: int) -> None: ...
    def quantizing(self, qtype: str) -> None: ...
    def quantized_tensor(self, done: int, total: int, name: str) -> None: ...


class _Silent:
    def writing(self, total_bytes: int, total_tensors: int) -> None: ...
    def tensor_written(self, name: str, source_bytes: int) -> None: ...
    def quantizing(self, qtype: str) -> None: ...
    def quantized_tensor(self, done: int, total: int, name: str) -> None: ...


def convert(options: ConvertOptions, events: ConvertEvents | None = None) -> ConvertResult:
    events = events or _Silent()
    started = time.monotonic()
    if options.outtype not in DIRECT_TYPES:
        raise ConvertError(f"unknown --outtype {options.outtype!r}; choose from {', '.join(DIRECT_TYPES)}")
    qtype = check_quant_type(options.quant) if options.quant else None

    checkpoint = load_checkpoint(resolve_source(options.source, options.revision))
    arch = architecture_for(checkpoint, ArchitectureOptions(mp_num=options.mp_num))
    tensors = layout(arch.tensor_plans(), options.outtype)
    file_type = qtype or options.outtype.upper()
    target = _target_path(options, checkpoint, file_type)

    intermediate_bytes = sum(t.nbytes for t in tensors)
    _check_free_space(target.parent, intermediate_bytes * (2 if qtype else 1))
    installed: list[int] = []  # the inode renamed into place, once the rename starts
    try:
        with _temporary(target, ".partial") as direct_path:
            writer = header_writer(direct_path, arch.gguf_architecture, tensors)
            _add_metadata(writer, arch, checkpoint, options.outtype, tensors)
            # The bytes the tensors are read from: ignored buffers and synthesized zeros count for nothing.
            events.writing(sum(t.plan.source_bytes for t in tensors), len(tensors))
            with _disk_errors(target):
                write_tensor_data(writer, tensors, lambda t: events.tensor_written(t.plan.name, t.plan.source_bytes))
            if qtype:
                events.quantizing(qtype)
                with _temporary(target, ".quant") as quant_path, _disk_errors(target):
                    fallbacks = run_quantizer(direct_path, quant_path, qtype, options.threads, events.quantized_tensor)
                    _install(quant_path, target, installed)
            else:
                fallbacks = {t.plan.name: t.qtype.name for t in tensors if _fell_back(t, options.outtype)}
                _install(direct_path, target, installed)
        return ConvertResult(
            output=target,
            source_directory=checkpoint.directory,
            architecture=checkpoint.architecture,
            family=arch.family,
            file_type=file_type,
            tensors=len(tensors),
            output_bytes=target.stat().st_size,
            source_bytes=checkpoint.total_bytes,
            seconds=time.monotonic() - started,
            fallbacks=fallbacks,
        )
    except KeyboardInterrupt:
        if installed and _has_inode(target, installed[0]):
            raise InterruptedAfterWrite(target) from None
        raise


def _fell_back(tensor: TensorLayout, outtype: str) -> bool:
    return len(tensor.plan.shape) > 1 and tensor.qtype != DIRECT_TYPES[outtype][0]


def _target_path(options: ConvertOptions, checkpoint: Checkpoint, file_type: str) -> Path:
    if options.output is not None:
        target = options.output.expanduser()
    else:
        directory = options.output_dir or Path.cwd()
        target = directory / f"{checkpoint.name}.{file_type}.gguf"
    target = target.absolute()
    if target.is_dir():
        raise ConvertError(f"{target} is a directory; give a file name such as {target / 'model.gguf'}")
    if target.exists() and not options.force:
        raise ConvertError(f"{target} already exists; pass --force to overwrite it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConvertError(f"cannot create output directory {target.parent}: {exc.strerror}") from None
    if not os.access(target.parent, os.W_OK):
        raise ConvertError(f"output directory {target.parent} is not writable")
    _refuse_special(target)
    return target


def _refuse_special(target: Path) -> None:
    """--force replaces a file, never a device node, FIFO or socket (as root, /dev/null would become a file)."""
    try:
        info = target.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConvertError(f"cannot use {target} as the output: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConvertError(f"{target} exists and is not a regular file; give a file path as the output")


def _install(temporary: Path, target: Path, installed: list[int]) -> None:
    """Rename the finished file into place, noting its inode first: a Ctrl-C that lands as the rename
    finishes can then tell whether the output is there."""
    _refuse_special(target)
    installed.append(temporary.stat().st_ino)
    os.replace(temporary, target)


def _has_inode(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino == inode
    except OSError:
        return False


def _check_free_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if free < needed + _SPACE_MARGIN:
        raise ConvertError(
            f"not enough disk space in {directory}: the conversion needs about {needed / 1e9:.2f} GB,"
            f" {free / 1e9:.2f} GB is free"
        )


@contextmanager
def _temporary(target: Path, suffix: str) -> Iterator[Path]:
    """A hidden file beside `target`, removed unless it was renamed into place."""
    path = target.with_name(f".{target.name}.{os.getpid()}{suffix}")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


@contextmanager
def _disk_errors(target: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise ConvertError(f"disk full while writing {target}; nothing was written") from None
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ConvertError(f"cannot write to {target.parent}: {exc.strerror}") from None
        raise


def _add_metadata(
    writer: GGUFWriter, arch: SourceArchitecture, checkpoint: Checkpoint, outtype: str, tensors: list[TensorLayout]
) -> None:
    writer.add_name(checkpoint.name)
    writer.add_file_type(int(DIRECT_TYPES[outtype][1]))
    if outtype == "q8_0":
        from gguf import GGML_QUANT_VERSION

        writer.add_quantization_version(GGML_QUANT_VERSION)
    arch.add_hparams(writer)
    arch.add_vocab(writer)
    writer.add_string(metadata.FAMILY, arch.family)
    writer.add_string(metadata.PROMPT_FORMAT, arch.prompt_format)
    writer.add_string(metadata.CONVERTER_VERSION, CONVERTER_VERSION)
    source_dtype = sorted({t.plan.source_dtype for t in tensors if t.plan.source_dtype})
    writer.add_string(metadata.SOURCE_DTYPE, ",".join(source_dtype))
    if checkpoint.repo_id:
        writer.add_string(metadata.SOURCE_REPO, checkpoint.repo_id)
        writer.add_source_url(f"https://huggingface.co/{checkpoint.repo_id}")
    if checkpoint.revision:
        writer.add_string(metadata.SOURCE_REVISION, checkpoint.revision)
