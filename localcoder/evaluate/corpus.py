"""The text `eval kld` scores: the held-out code shipped in localcoder/evaluate/corpus/, or a folder of the user's.

Infill middles are chosen deterministically: in every block of INFILL_BLOCK lines, the MIDDLE_LINES lines
starting at line MIDDLE_AT of the block are the middle; everything before is the prefix, after the suffix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from localcoder.errors import LocalcoderError

BUILTIN = Path(__file__).with_name("corpus")
SUFFIXES = (".py", ".js", ".ts", ".c", ".h", ".go", ".rs", ".java", ".sh", ".rb", ".cpp", ".txt", ".md")
INFILL_BLOCK, MIDDLE_AT, MIDDLE_LINES = 12, 5, 2
MAX_FILE_BYTES = 1 << 20
MAX_CORPUS_CHARS = 64 << 20


@dataclass(frozen=True)
class CorpusFile:
    name: str
    text: str


@dataclass(frozen=True)
class InfillCase:
    prefix: str
    middle: str
    suffix: str


def load_corpus(directory: Path | None) -> list[CorpusFile]:
    """Source files under `directory` (the built-in corpus when None), sorted by path; read as UTF-8."""
    root = BUILTIN if directory is None else directory
    if not root.is_dir():
        raise LocalcoderError(f"--corpus {root}: not a directory")
    files, total = [], 0
    for path in sorted(p for p in root.rglob("*") if p.suffix in SUFFIXES and p.is_file()):
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):  # unreadable, or gone since the listing: not corpus
            continue
        if text.strip():
            files.append(CorpusFile(str(path.relative_to(root)), text))
            total += len(text)
        if total > MAX_CORPUS_CHARS:  # far more than --limit tokens can use: a whole home directory stops here
            break
    if not files:
        raise LocalcoderError(f"--corpus {root}: no non-empty UTF-8 source files ({', '.join(SUFFIXES)})")
    return files


def infill_cases(files: list[CorpusFile]) -> Iterator[InfillCase]:
    for item in files:
        lines = item.text.splitlines(keepends=True)
        for block in range(0, len(lines), INFILL_BLOCK):
            start = block + MIDDLE_AT
            middle = "".join(lines[start : start + MIDDLE_LINES])
            if middle.strip() and start + MIDDLE_LINES < len(lines):
                yield InfillCase("".join(lines[:start]), middle, "".join(lines[start + MIDDLE_LINES :]))
