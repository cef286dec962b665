"""`localcoder eval kld` cost on a synthetic CodeGen2.5-layout model (random weights), measured in one run.

    python benchmarks/bench_kld.py [--shape 1gb|7b|tiny] [--quants Q8_0,Q4_K_M] [--tokens 256] [--dir DIR]

Builds (once, cached in DIR) a random checkpoint, converts it to F16 and the quantized types, then runs
`localcoder eval kld --base F16 ...` in a child process on the built-in corpus and prints seconds per 1000
tokens scored (base pass and each model), the child's peak RSS against the largest file (one model is loaded
at a time, so peak RSS should stay near the largest file plus the logits buffer), and the bytes kept of the
base's distributions. Random weights: the divergence figures mean nothing, only the time and memory do.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convert.pipeline import ConvertOptions, convert  # noqa: E402
from convert.synthetic import SHAPES, write_codegen25_checkpoint  # noqa: E402

MB = 1e6


def build(directory: Path, shape: str, quants: list[str]) -> dict[str, Path]:
    checkpoint = directory / f"ckpt-{shape}"
    if not (checkpoint / "config.json").exists():
        print(f"building a random {shape} checkpoint in {checkpoint} ...", file=sys.stderr)
        write_codegen25_checkpoint(checkpoint, SHAPES[shape])
    files = {}
    for name in ("F16", *quants):
        target = directory / f"{shape}-{name}.gguf"
        if not target.exists():
            print(f"converting to {name} ...", file=sys.stderr)
            quant = None if name == "F16" else name
            convert(ConvertOptions(str(checkpoint), target, outtype="f16", quant=quant))
        files[name] = target
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="1gb", choices=sorted(SHAPES))
    parser.add_argument("--quants", default="Q8_0,Q4_K_M")
    parser.add_argument("--tokens", type=int, default=256, help="tokens scored per mode")
    parser.add_argument("--ctx", type=int, default=256)
    parser.add_argument("--top-k", type=int, default=32)
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "localcoder-bench-kld")
    args = parser.parse_args()
    files = build(args.dir, args.shape, args.quants.split(","))
    command = [sys.executable, "-m", "localcoder", "eval", "kld", "--base", str(files["F16"])]
    command += [str(files[q]) for q in args.quants.split(",")]
    command += ["--limit", str(args.tokens), "--ctx", str(args.ctx), "--top-k", str(args.top_k), "--json"]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("eval kld failed")
    report = json.loads(out)
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    largest = max(path.stat().st_size for path in files.values())
    total = sum(path.stat().st_size for path in files.values())
    tokens = report["tokens"]
    print(f"machine        {platform.machine()} {os.cpu_count()} cores, {platform.system()} {platform.release()}")
    print(f"date           {date.today().isoformat()}")
    print(f"model          {args.shape}: {SHAPES[args.shape]}, random weights")
    print("files          " + ", ".join(f"{n} {p.stat().st_size / MB:,.0f} MB" for n, p in files.items()))
    print(f"scored         {tokens} tokens ({report['sequences']} sequences, both modes), ctx {args.ctx}")
    base_seconds = report["base_seconds"]
    print(f"base F16       {base_seconds:.1f} s, {1000 * base_seconds / tokens:.1f} s per 1k tokens")
    for model in report["models"]:
        per_k = 1000 * model["seconds"] / tokens
        print(f"{model['model']:<14} {model['seconds']:.1f} s incl. load, {per_k:.1f} s per 1k tokens")
    stored = report["base_stored_bytes"]
    print(f"base kept      {stored / MB:.2f} MB top-{args.top_k} ({stored / tokens:.0f} bytes per token)")
    print(f"peak RSS       {peak / MB:,.0f} MB; largest file {largest / MB:,.0f} MB, all files {total / MB:,.0f} MB")
    print(f"memory ratio   {peak / largest:.2f} x largest file ({peak / total:.2f} x all files together)")
    print(f"wall           {wall:.1f} s for the whole command")


if __name__ == "__main__":
    main()
