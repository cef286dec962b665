"""Prompt building time against file size: read, find the cursor, trim to the window (localcoder complete's
steps before the model runs). The cost must follow the file's size linearly, and stay near the read time.

Builds (once, cached in --dir) a tiny random model with CodeGen2.5's real tokenizer, writes Python files of
0.1 / 1 / 10 / 50 MB (localcoder bench's sample repeated) with the cursor in the middle, and prints, per size,
the read time, the prompt building time, and both per MB: equal per-MB figures mean linear.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convert.pipeline import ConvertOptions, convert  # noqa: E402
from convert.synthetic import LlamaShape, write_codegen25_checkpoint  # noqa: E402
from localcoder.bench import sample_source  # noqa: E402
from localcoder.completion.infill import InfillInput, prepare  # noqa: E402
from localcoder.runtime import LoadOptions, load_model  # noqa: E402
from localcoder.server.fields import MAX_BODY_BYTES  # noqa: E402
from localcoder.server.http import check_unicode  # noqa: E402
from localcoder.server.routes import parse_infill  # noqa: E402
from localcoder.source import locate, read_source, read_source_bytes  # noqa: E402

SIZES_MB = (0.1, 1, 10, 50)
WINDOW = 2048
MAX_TOKENS = 128
REPEATS = 3


def tiny_model(directory: Path) -> Path:
    gguf = directory / "prompt-tiny.F32.gguf"
    if not gguf.exists():
        checkpoint = directory / "prompt-tiny"
        write_codegen25_checkpoint(checkpoint, LlamaShape(hidden=64, intermediate=128, layers=1, heads=4))
        convert(ConvertOptions(source=str(checkpoint), output=gguf, outtype="f32", force=True))
    return gguf


def sample_file(path: Path, megabytes: float) -> int:
    """A file of about `megabytes` MB; returns a line in its middle."""
    text, _ = sample_source()
    copies = max(1, round(megabytes * 1e6 / len(text)))
    path.write_text(text * copies)
    return text.count("\n") * copies // 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("bench-out"))
    parser.add_argument("--layout", choices=("stable", "cursor"), default="stable")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    model = load_model(tiny_model(args.dir), LoadOptions(ctx=WINDOW))
    print(f"machine   {platform.machine()} {os.cpu_count()} cores, {platform.system()} {platform.release()}")
    print(f"date      {date.today().isoformat()}")
    print(f"window    {model.n_ctx} tokens, {MAX_TOKENS} for generation, --prompt-layout {args.layout}")
    print(f"{'size':>7} {'read ms':>9} {'prompt ms':>10} {'read ms/MB':>11} {'prompt ms/MB':>13} {'tokens':>7}")
    per_mb = []
    for megabytes in SIZES_MB:
        path = args.dir / f"prompt-{megabytes:g}mb.py"
        line = sample_file(path, megabytes)
        size = path.stat().st_size / 1e6
        reads, builds = [], []
        for _ in range(REPEATS):  # the median of a few: the machine is shared
            started = time.perf_counter()
            buffer = read_source(path)
            reads.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            cursor = locate(buffer, line, None)
            prefix, suffix = buffer.text[: cursor.offset], buffer.text[cursor.offset :]
            prompt = prepare(model, InfillInput(prefix, suffix, layout=args.layout), model.budget(MAX_TOKENS))
            builds.append((time.perf_counter() - started) * 1000)
            del buffer, prefix, suffix
        read_ms, prompt_ms = statistics.median(reads), statistics.median(builds)
        per_mb.append(prompt_ms / size)
        print(
            f"{size:>5.1f}MB {read_ms:>9.1f} {prompt_ms:>10.1f} {read_ms / size:>11.1f} {prompt_ms / size:>13.1f}"
            f" {len(prompt.ids):>7}"
        )
        path.unlink()
    # Against 10 MB: below it the window's own tokenizing (a few ms, whatever the file) still weighs per MB.
    print(f"ratio     prompt ms/MB at {SIZES_MB[-1]:g} MB / at 10 MB: {per_mb[-1] / per_mb[2]:.2f} (1.0 = linear)")
    print(f"/infill   a body at the {MAX_BODY_BYTES >> 20} MiB limit: {infill_body_ms(model, args.layout):.0f} ms"
          " to parse it and build its prompt")


def infill_body_ms(model, layout: str) -> float:
    """What the server does with a POST /infill at the body limit before the model reads the prompt."""
    text, _ = sample_source()
    text = text * (MAX_BODY_BYTES // len(text.encode()) - 1)
    raw = json.dumps({"text": text, "line": text.count("\n") // 2, "prompt_layout": layout}).encode()
    started = time.perf_counter()
    body = json.loads(raw.decode("utf-8"))
    check_unicode(body)
    request = parse_infill(body)
    buffer = read_source_bytes(request.text.encode("utf-8"))
    cursor = locate(buffer, request.line, request.col)
    prefix, suffix = buffer.text[: cursor.offset], buffer.text[cursor.offset :]
    prepare(model, InfillInput(prefix, suffix, layout=request.layout), model.budget(MAX_TOKENS))
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
