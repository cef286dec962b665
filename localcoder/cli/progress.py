"""Rich progress on stderr: conversions (bytes and tensors written, then llama.cpp's quantizer) and evaluations."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from localcoder.evaluate.results import SampleRecord
from localcoder.terminal import human_bytes


class RichConvertEvents:
    """Implements convert.pipeline.ConvertEvents; one bar per stage."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[detail]}", markup=False),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: TaskID | None = None
        self.bytes_done = self.bytes_total = self.tensors_done = self.tensors_total = 0

    def __enter__(self) -> RichConvertEvents:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def writing(self, total_bytes: int, total_tensors: int) -> None:
        self.bytes_done, self.bytes_total = 0, total_bytes
        self.tensors_done, self.tensors_total = 0, total_tensors
        self.task = self.progress.add_task("converting", total=total_bytes, detail=self._detail())

    def tensor_written(self, name: str, source_bytes: int) -> None:
        self.bytes_done += source_bytes
        self.tensors_done += 1
        assert self.task is not None
        self.progress.update(self.task, completed=self.bytes_done, detail=self._detail())

    def quantizing(self, qtype: str) -> None:
        self.task = self.progress.add_task(f"quantizing to {qtype}", total=self.tensors_total, detail="")

    def quantized_tensor(self, done: int, total: int, name: str) -> None:
        assert self.task is not None
        self.progress.update(self.task, completed=done, total=total, detail=f"{done}/{total} {name}")

    def _detail(self) -> str:
        return (
            f"{human_bytes(self.bytes_done)}/{human_bytes(self.bytes_total)}"
            f"  {self.tensors_done}/{self.tensors_total} tensors"
        )


class RichEvalEvents:
    """Implements localcoder.evaluate.runner.EvalEvents: one bar over the samples, passes so far, samples/s, ETA."""

    def __init__(self, console: Console, description: str) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[detail]}", markup=False),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self.description = description
        self.task: TaskID | None = None
        self.passed = self.done = 0
        self.since = time.monotonic()

    def __enter__(self) -> RichEvalEvents:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def started(self, total: int, already_done: int) -> None:
        detail = f"{already_done} from the results file" if already_done else ""
        self.task = self.progress.add_task(self.description, total=total, completed=already_done, detail=detail)
        self.since = time.monotonic()

    def sample_finished(self, record: SampleRecord) -> None:
        self.done += 1
        self.passed += record.passed
        assert self.task is not None
        rate = self.done / max(time.monotonic() - self.since, 1e-9)  # this run's samples, not the file's
        detail = f"{self.passed}/{self.done} passed  {rate:.2f} samples/s"
        self.progress.update(self.task, advance=1, detail=detail)


class IndexProgress:
    """A bar on stderr while repository context indexes many files for the first time; nothing when stderr is not
    a terminal. Called as `progress(done, total)` (localcoder.context.gather's progress)."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("indexing the repository"),
            BarColumn(),
            TextColumn("{task.completed:>6.0f}/{task.total:.0f} files"),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None
        self.shown = console.is_terminal

    def __enter__(self) -> IndexProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.progress.stop()

    def __call__(self, done: int, total: int) -> None:
        if not self.shown:
            return
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("index", total=total)
        self.progress.update(self.task, completed=done)
