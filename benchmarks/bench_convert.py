"""Conversion speed and memory on a synthetic CodeGen2.5-layout checkpoint, measured in one run.

    python benchmarks/bench_convert.py [--shape 1gb|7b|tiny] [--outtype f16] [--quant Q4_K_M] [--dir DIR]

Builds (once, cached in DIR) a random float32 checkpoint in the real
three-shard .bin layout, copies its shards (the baseline: same bytes, same
disk, with fsync), then runs `localcoder convert` on it in a child process
and prints wall time, input GB/s, the child's peak RSS, and the ratios to the
targets: peak RSS <= 2 x largest tensor + 300 MB; time <= 1.5 x the copy.
The copy runs first and so warms the page cache for both.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convert.synthetic import SHAPES, write_codegen25_checkpoint  # noqa: E402
from ggufkit.vocab.codegen25 import VOCAB_SIZE  # noqa: E402

MB = 1e6
GB = 1e9


def copy_with_fsync(files: list[Path], target: Path) -> float:
    target.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for source in files:
        destination = target / source.name
        shutil.copyfile(source, destination)
        with open(destination, "rb+") as handle:
            os.fsync(handle.fileno())
    return time.perf_counter() - started


def run_convert(checkpoint: Path, output: Path, outtype: str, quant: str | None) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one `localcoder convert` child process (and its quantizer)."""
    command = [sys.executable, "-m", "localcoder", "convert", str(checkpoint), "-o", str(output)]
    command += ["--outtype", outtype, "--force"] + (["--quant", quant] if quant else [])
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"convert failed: {child.stderr.read().decode() if child.stderr else ''}")
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="1gb")
    parser.add_argument("--outtype", default="f16", choices=["f32", "f16", "bf16", "q8_0"])
    parser.add_argument("--quant", help="also quantize with llama.cpp (e.g. Q4_K_M); the copy ratio then includes it")
    parser.add_argument("--dir", type=Path, default=Path("bench-out"))
    args = parser.parse_args()

    shape = SHAPES[args.shape]
    checkpoint = args.dir / f"synthetic-{args.shape}"
    if not (checkpoint / "pytorch_model.bin.index.json").exists():
        print(f"building a random {args.shape} checkpoint in {checkpoint} ...", file=sys.stderr)
        write_codegen25_checkpoint(checkpoint, shape)
    shards = sorted(checkpoint.glob("pytorch_model-*.bin"))
    source_bytes = sum(p.stat().st_size for p in shards)
    largest = VOCAB_SIZE * shape.hidden * 4

    copy_seconds = copy_with_fsync(shards, args.dir / "copy")
    shutil.rmtree(args.dir / "copy")
    output = args.dir / f"synthetic-{args.shape}.{args.quant or args.outtype}.gguf"
    convert_seconds, peak_rss = run_convert(checkpoint, output, args.outtype, args.quant)
    output_bytes = output.stat().st_size
    output.unlink()

    rss_target = 2 * largest + 300 * MB
    print(f"machine        {platform.machine()} {os.cpu_count()} cores, {platform.system()} {platform.release()}")
    print(f"date           {date.today().isoformat()}")
    print(f"checkpoint     {args.shape}: {shape}, {source_bytes / GB:.2f} GB float32 in {len(shards)} shards")
    via = f" via {args.outtype}" if args.quant else ""
    print(f"output         {args.quant or args.outtype}{via}, {output_bytes / GB:.2f} GB")
    print(f"convert        {convert_seconds:.2f} s wall, {source_bytes / GB / convert_seconds:.2f} GB/s input")
    print(f"plain copy     {copy_seconds:.2f} s ({source_bytes / GB / copy_seconds:.2f} GB/s), with fsync")
    print(f"time ratio     {convert_seconds / copy_seconds:.2f} x copy (target <= 1.5)")
    print(f"peak RSS       {peak_rss / MB:.0f} MB; largest tensor {largest / MB:.0f} MB")
    print(
        f"RSS ratio      {peak_rss / rss_target:.2f} of 2 x largest + 300 MB = {rss_target / MB:.0f} MB (target <= 1.0)"
    )


if __name__ == "__main__":
    main()
