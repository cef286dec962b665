"""eval throughput, in one run on one GGUF: in-process against llama-cpp-python's server (`python -m
llama_cpp.server`, started here) at --concurrency 1 / 4 / 16; then the editor trace through `serve --engine`
(benchmarks/engine_editor.py: serve's overhead per request against the same requests sent straight to the
engine, and --parallel 1 against --parallel 4).

    python benchmarks/bench_engine.py [--part all|eval|editor] [--shape bench] [--quant Q4_K_M] [--limit 16]
        [-n 2] [--max-tokens 32] [--editors 4]

Each run is a real `localcoder eval humaneval ... -t 0 --json` process with a fresh results file, its programs
checked in the OS sandbox (bubblewrap; the benchmark refuses to run without it). samples/s is new samples over
the summary's seconds (model load, generation and the checks). The server runs with --interrupt_requests
False (its default cuts a request short when the next arrives); both sides use llama.cpp's default threads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_complete import BENCH_SHAPES, bench_model  # noqa: E402
from benchmarks.engine_editor import editor_trace  # noqa: E402
from localcoder import sandbox  # noqa: E402
from tests.llama_server import llama_cpp_server  # noqa: E402

CONCURRENCY = (1, 4, 16)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(BENCH_SHAPES), default="bench")
    parser.add_argument("--quant", default="Q4_K_M")
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("-n", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--dir", type=Path, default=Path("bench-out"))
    parser.add_argument("--part", choices=("all", "eval", "editor"), default="all")
    parser.add_argument("--editors", type=int, default=4, help="editors typing in the editor trace")
    return parser.parse_args()


def eval_run(args: argparse.Namespace, gguf: Path, out: Path, *engine: str) -> dict:
    command = [sys.executable, "-m", "localcoder", "eval", "humaneval", "--model", str(gguf), "--json"]
    command += ["--limit", str(args.limit), "-n", str(args.n), "-k", "1", "--max-tokens", str(args.max_tokens)]
    command += ["-t", "0", "--out", str(out), *engine]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"eval failed: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout)


def main() -> None:
    args = arguments()
    if args.part != "editor" and not sandbox.status().available:
        raise SystemExit("error: the OS sandbox (bubblewrap) is missing; the checks must run in it")
    args.dir.mkdir(exist_ok=True)
    gguf = bench_model(args.shape, args.quant, args.dir)
    print(f"machine   {platform.machine()}, {os.cpu_count()} cores, {platform.system()}; {date.today()}")
    print(f"model     random {args.shape} {BENCH_SHAPES[args.shape]}, {args.quant}, {gguf.stat().st_size / 1e6:.0f} MB")
    if args.part != "editor":
        eval_part(args, gguf)
    if args.part != "eval":
        print("editor    trace through serve --engine (llama_cpp.server as the engine)")
        with llama_cpp_server(gguf) as url:
            for line in editor_trace(gguf, url, args.editors):
                print(line, flush=True)


def eval_part(args: argparse.Namespace, gguf: Path) -> None:
    print(f"eval      humaneval --limit {args.limit} -n {args.n} --max-tokens {args.max_tokens} -t 0, sandboxed")
    rates: dict[str, float] = {}
    completions: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        runs = [("in-process", ())]
        runs += [(f"engine -c {c}", ("--engine", "", "--concurrency", str(c))) for c in CONCURRENCY]
        with llama_cpp_server(gguf) as url:
            for name, engine in runs:
                engine = tuple(url if part == "" else part for part in engine)
                out = Path(scratch) / f"{name.replace(' ', '_')}.jsonl"
                summary = eval_run(args, gguf, out, *engine)
                rates[name] = summary["new_samples"] / summary["seconds"]
                lines = [json.loads(line) for line in out.read_text().splitlines()[1:]]
                completions[name] = {(r["task_id"], r["sample"]): r["completion"] for r in lines}
                print(f"{name:<14} {summary['new_samples']} samples in {summary['seconds']:6.1f} s:"
                      f" {rates[name]:5.2f} samples/s", flush=True)
    base = rates["in-process"]
    one = rates["engine -c 1"]
    print("ratios    " + ", ".join(f"{name} / in-process {rate / base:.2f}" for name, rate in rates.items()))
    print("          " + ", ".join(f"-c {c} / -c 1 {rates[f'engine -c {c}'] / one:.2f}" for c in CONCURRENCY[1:]))
    here = completions["in-process"]
    agree = [sum(here[key] == value for key, value in completions[name].items()) for name in rates]
    same = ", ".join(f"{name} {a}/{len(here)}" for name, a in zip(rates, agree, strict=True))
    print(f"samples   same as in-process: {same}")
    for name in list(rates)[1:]:
        for key, value in completions[name].items():
            if here[key] != value:
                print(f"          {name} {key}: {value!r} vs {here[key]!r}")


if __name__ == "__main__":
    main()
