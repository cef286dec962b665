"""Completion latency: localcoder's `complete` against llama-cpp-python's bare API, same GGUF, same run.

    python benchmarks/bench_complete.py [--shape bench|tiny|1gb|7b] [--quant Q4_K_M] [--repeats 3]

Builds (once, cached in --dir) a random-weight model in the CodeGen2.5
architecture and a Python file of about 2,000 tokens, puts the cursor on a
blank line in its middle, and for 16, 32 and 64 new tokens (greedy, scope
"full", window 2,048) measures: model load time, prompt tokens/s, generation
tokens/s and end-to-end latency, through `localcoder.pipeline.complete` and
through `Llama.generate` on the very same prompt ids. Each figure is the median
of --repeats runs, the two paths interleaved, the KV cache reset before each.
Overhead = localcoder end-to-end / bare end-to-end - 1 (target <= 3%).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convert.pipeline import ConvertOptions, convert  # noqa: E402
from convert.synthetic import SHAPES, LlamaShape, write_codegen25_checkpoint  # noqa: E402
from localcoder.bench import sample_source  # noqa: E402
from localcoder.completion.generate import Sampling  # noqa: E402
from localcoder.completion.prompts import build_prompt, stop_ids  # noqa: E402
from localcoder.pipeline import CompletionRequest, complete  # noqa: E402
from localcoder.runtime import LoadOptions, load_model  # noqa: E402
from localcoder.source import locate, read_source  # noqa: E402

BENCH_SHAPES = {**SHAPES, "bench": LlamaShape(hidden=512, intermediate=1536, layers=8, heads=8)}
WINDOW = 2048
NEW_TOKENS = (16, 32, 64)


def sample_file(path: Path) -> int:
    """localcoder bench's file of about 2,000 tokens, written to `path`; returns the cursor's (blank) line."""
    text, line = sample_source()
    path.write_text(text)
    return line


def model_arguments(description: str | None) -> argparse.Namespace:
    """The options both completion benchmarks share: which random model, and how many repeats."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(BENCH_SHAPES), default="bench")
    parser.add_argument("--quant", default="Q4_K_M")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("bench-out"))
    return parser.parse_args()


def bench_model(shape: str, quant: str, directory: Path) -> Path:
    """The random-weight GGUF of `shape`, built once and kept in `directory`."""
    gguf = directory / f"complete-{shape}.{quant}.gguf"
    if not gguf.exists():
        print(f"building a random {shape} model in {gguf} ...", file=sys.stderr)
        checkpoint = directory / f"complete-{shape}"
        write_codegen25_checkpoint(checkpoint, BENCH_SHAPES[shape])
        convert(ConvertOptions(source=str(checkpoint), output=gguf, quant=quant, force=True))
    return gguf


def bare_run(llm, ids: list[int], stop: frozenset[int], count: int) -> tuple[float, float, int]:
    llm.reset()
    started = time.perf_counter()
    first = None
    made = 0
    for token in llm.generate(ids, temp=0.0, top_p=0.95, top_k=0, min_p=0.0, repeat_penalty=1.0):
        first = first or time.perf_counter()
        if token in stop:
            break
        made += 1
        if made >= count:
            break
    done = time.perf_counter()
    return (first - started) * 1000, (done - first) * 1000, made


def main() -> None:
    args = model_arguments(__doc__)

    import llama_cpp

    gguf = bench_model(args.shape, args.quant, args.dir)
    source_path = args.dir / "two_thousand_tokens.py"
    line = sample_file(source_path)
    buffer = read_source(source_path)
    cursor = locate(buffer, line, None)

    loads_ours, loads_bare = [], []
    for _ in range(args.repeats):
        loads_ours.append(load_model(gguf, LoadOptions(ctx=WINDOW)).load_ms)
        started = time.perf_counter()
        llama_cpp.Llama(model_path=str(gguf), n_ctx=WINDOW, verbose=False)
        loads_bare.append((time.perf_counter() - started) * 1000)
    model = load_model(gguf, LoadOptions(ctx=WINDOW))
    bare = llama_cpp.Llama(model_path=str(gguf), n_ctx=WINDOW, verbose=False)

    print(f"machine   {platform.machine()} {os.cpu_count()} cores, {platform.system()} {platform.release()}")
    print(f"date      {date.today().isoformat()}")
    print(f"model     random {args.shape} {BENCH_SHAPES[args.shape]}, {args.quant}, {gguf.stat().st_size / 1e6:.0f} MB")
    print(f"load      localcoder {statistics.median(loads_ours):.0f} ms, bare {statistics.median(loads_bare):.0f} ms")
    print(f"{'new':>4} {'prompt':>7} {'path':>10} {'prompt tok/s':>13} {'gen tok/s':>10} {'end-to-end':>11}")
    for count in NEW_TOKENS:
        sampling = Sampling(temperature=0.0, max_tokens=count)
        prompt = build_prompt(
            model.format, model.vocab, buffer.text[: cursor.offset], buffer.text[cursor.offset :], WINDOW - count
        )
        stop = stop_ids(model.format, model.vocab)
        ours, theirs = [], []
        for _ in range(args.repeats):
            model.llm.reset()
            started = time.perf_counter()
            request = CompletionRequest.build(
                buffer, cursor.line, cursor.col, sampling=sampling, scope="full", layout="cursor"
            )
            result = complete(model, request)
            total = (time.perf_counter() - started) * 1000
            first = result.alternatives[0]
            ours.append((first.prompt_ms, first.generate_ms, first.tokens, total))
            prompt_ms, gen_ms, made = bare_run(bare, prompt.ids, stop, count)
            theirs.append((prompt_ms, gen_ms, made, prompt_ms + gen_ms))
        for name, runs in (("localcoder", ours), ("bare", theirs)):
            prompt_ms = statistics.median(r[0] for r in runs)
            gen_ms = statistics.median(r[1] for r in runs)
            made = runs[0][2]
            total = statistics.median(r[3] for r in runs)
            gen_rate = (made - 1) / (gen_ms / 1000) if made > 1 else float("nan")
            print(
                f"{count:>4} {len(prompt.ids):>7} {name:>10} {len(prompt.ids) / (prompt_ms / 1000):>13.0f}"
                f" {gen_rate:>10.1f} {total:>9.0f} ms"
            )
        overhead = statistics.median(r[3] for r in ours) / statistics.median(r[3] for r in theirs) - 1
        print(f"{count:>4} overhead of localcoder: {overhead:+.1%} (target <= 3%)")


if __name__ == "__main__":
    main()
