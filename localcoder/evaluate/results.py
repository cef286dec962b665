"""The results file: JSON Lines, a header naming the run, then one line per finished sample, appended at once.

A rerun with the same file reads it back and skips the samples it holds. The header's `config` (benchmark,
model, sampling) must match: a file is never a mix of two configurations. A run killed while writing leaves a
last line without its newline; it is dropped (and cut from the file) so that sample is simply done again.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from localcoder.errors import LocalcoderError

FORMAT = "localcoder-eval/1"


@dataclass(frozen=True)
class SampleRecord:
    task_id: str
    sample: int
    completion: str
    passed: bool
    reason: str
    seconds: float  # running the program


class ResultsFile:
    """Finished samples by (task_id, sample), kept in `path` when there is one (else in memory only)."""

    def __init__(self, path: Path | None, config: dict[str, Any]) -> None:
        self.path = path
        self.config = config
        self.records: dict[tuple[str, int], SampleRecord] = {}
        self._lock = threading.Lock()
        self._handle: TextIO | None = None
        self._complete_bytes = 0
        self._partial_tail = False
        self._closed = False
        if path is not None:
            self._open(path)

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def append(self, record: SampleRecord) -> None:
        """Keep `record`; with a file, write its line in one call and flush it (threads may call this)."""
        with self._lock:
            self.records[(record.task_id, record.sample)] = record
            if self.path is None or self._closed:
                return
            if self._handle is None:
                self._handle = self._start_writing(self.path)
            self._handle.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
            self._handle.flush()

    def _open(self, path: Path) -> None:
        """Read what an earlier run left; nothing is written until the first record, so a failed start leaves
        no file behind."""
        if path.is_dir():
            raise LocalcoderError(f"{path} is a directory; --out needs a file")
        try:
            data = path.read_bytes() if path.exists() else b""
        except OSError as exc:
            raise LocalcoderError(f"cannot read {path}: {exc.strerror or exc}") from None
        self._complete_bytes = data.rfind(b"\n") + 1  # a last line without its newline was cut off mid-write
        self._partial_tail = self._complete_bytes < len(data)
        writable = path if path.exists() else path.parent
        if not writable.is_dir() and not path.exists():
            raise LocalcoderError(f"cannot write {path}: no directory {path.parent}")
        if not os.access(writable, os.W_OK):
            raise LocalcoderError(f"cannot write {path}: permission denied")
        # split, not splitlines: records keep U+2028 and the like unescaped inside their strings
        lines = data[: self._complete_bytes].decode("utf-8", errors="replace").split("\n")[:-1]
        if lines:
            self._read(path, lines)

    def _start_writing(self, path: Path) -> TextIO:
        try:
            if self._partial_tail:
                os.truncate(path, self._complete_bytes)
            handle = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115 -- held open for the run
            if self._complete_bytes == 0:
                handle.write(json.dumps({"format": FORMAT, "config": self.config}, ensure_ascii=False) + "\n")
            return handle
        except OSError as exc:
            raise LocalcoderError(f"cannot write {path}: {exc.strerror or exc}") from None

    def _read(self, path: Path, lines: list[str]) -> None:
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise LocalcoderError(f"{path} is not a localcoder eval results file; choose another --out")
        differences = [
            f"{key} {header['config'].get(key)!r} there, {value!r} now"
            for key, value in self.config.items()
            if header["config"].get(key) != value
        ]
        if differences:
            raise LocalcoderError(
                f"{path} holds results of another configuration ({'; '.join(differences)}):"
                " use another --out, or the same options to resume"
            )
        for number, line in enumerate(lines[1:], start=2):
            try:
                fields = json.loads(line)
                record = SampleRecord(**{name: fields[name] for name in SampleRecord.__dataclass_fields__})
            except (json.JSONDecodeError, KeyError, TypeError):
                raise LocalcoderError(f"{path}, line {number}: not a sample record; choose another --out") from None
            self.records[(record.task_id, record.sample)] = record
