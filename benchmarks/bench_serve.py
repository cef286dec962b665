"""Resident-server latency, in one run on one GGUF: cold vs warm vs hot, generation speed vs the bare API, --lookup.

    python benchmarks/bench_serve.py [--shape bench|7b] [--quant Q4_K_M] [--repeats 3]

1. `localcoder bench` (localcoder.bench): 2,000 tokens of context, 16/32/64 new tokens; cold (a new
   `complete --no-server` process), warm (the real HTTP server, empty KV cache), hot-type / hot-enter (the
   server after a request on the same file, then three characters typed / Enter pressed). Target: cold
   over hot >= 10x at 16 tokens, and hot evaluates only the changed tokens.
2. Generation tokens/s through the server (POST /infill, 64 tokens) against `Llama.generate` on the same
   prompt ids in a second Llama of the same file; medians of --repeats, interleaved. Target: within 3%.
3. --lookup 10 on an edit-style completion (a deterministic model that copies a line from above the
   cursor, tests/bigram.py) and on the random model at the 2,000-token file; same tokens either way.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_complete import BENCH_SHAPES, bare_run, bench_model, model_arguments  # noqa: E402
from localcoder.bench import NEW_TOKENS, SCENARIOS, WINDOW, machine, run_bench, sample_source  # noqa: E402
from localcoder.completion.generate import Sampling  # noqa: E402
from localcoder.completion.prompts import STABLE_LINES, build_prompt, stop_ids  # noqa: E402
from localcoder.pipeline import CompletionRequest, complete  # noqa: E402
from localcoder.runtime import LoadOptions, load_model  # noqa: E402
from localcoder.server.client import remote_infill  # noqa: E402
from localcoder.server.http import LocalcoderServer, ServeOptions  # noqa: E402
from localcoder.server.pool import ModelPool, PoolOptions  # noqa: E402
from localcoder.source import locate, read_source_bytes  # noqa: E402

COPIED = '    assert isinstance(payload, dict), "expected a mapping for the loader config"'


def latency_table(gguf: Path) -> None:
    report = run_bench(str(gguf), NEW_TOKENS, progress=lambda text: print(f"  {text}", file=sys.stderr))
    print(f"load {report.load_ms:.0f} ms")
    print(f"{'new':>4} " + " ".join(f"{s + ' ms (read)':>22}" for s in SCENARIOS) + f" {'cold/hot-type':>14}")
    for count in NEW_TOKENS:
        rows = {r.scenario: r for r in report.rows if r.new_tokens == count}
        cells = " ".join(f"{f'{rows[s].latency_ms:,.0f} ({rows[s].evaluated_tokens})':>22}" for s in SCENARIOS)
        ratio = rows["cold"].latency_ms / rows["hot-type"].latency_ms
        print(f"{count:>4} {cells} {ratio:>13.1f}x")


def generation_speed(gguf: Path, repeats: int) -> None:
    import llama_cpp

    text, line = sample_source()
    buffer = read_source_bytes(text.encode())
    cursor = locate(buffer, line, None)
    pool = ModelPool(PoolOptions(str(gguf), WINDOW, keep_alive=-1))
    server = LocalcoderServer(ServeOptions(port=0, pool=pool.options), pool, lambda _line: None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    model = pool.preload(None)
    bare = llama_cpp.Llama(model_path=str(gguf), n_ctx=WINDOW, verbose=False)
    count = 64
    prompt = build_prompt(
        model.format, model.vocab, text[: cursor.offset], text[cursor.offset :], WINDOW - count, STABLE_LINES
    )
    stop = stop_ids(model.format, model.vocab)
    ours, theirs = [], []
    for _ in range(repeats):
        body = {"text": text, "line": line, "max_tokens": count, "temperature": 0, "scope": "full"}
        result = remote_infill(url, body, None)  # the prompt is cached from the second run on: generation only
        made = result["tokens"]["generated"]
        ours.append((made - 1) / (result["timings_ms"]["generate"] / 1000))
        _, gen_ms, made_bare = bare_run(bare, prompt.ids, stop, count)
        theirs.append((made_bare - 1) / (gen_ms / 1000))
    server.shutdown()
    pool.close()
    ours_rate, bare_rate = statistics.median(ours), statistics.median(theirs)
    print(
        f"generation ({count} tokens, median of {repeats}): server {ours_rate:.1f} tok/s, bare llama-cpp-python"
        f" {bare_rate:.1f} tok/s, server/bare {ours_rate / bare_rate:.3f}"
    )


def lookup_speedup(gguf: Path, repeats: int) -> None:
    from tests.bigram import bigram_model

    with tempfile.TemporaryDirectory() as scratch:
        copier = bigram_model(Path(scratch), COPIED.strip())
        text = f"def load(payload):\n{COPIED}\n    return payload\n\n\ndef save(payload):\n    \n    return payload\n"
        for name, path, source, line in (
            ("edit-style (copies a line)", copier, text, 7),
            ("random weights, the 2,000-token file", gguf, *sample_source()),
        ):
            buffer = read_source_bytes(source.encode())
            rates, texts = {}, {}
            for lookup in (0, 10):
                model = load_model(path, LoadOptions(ctx=WINDOW, lookup=lookup))
                runs = []
                for _ in range(repeats):
                    model.llm.reset()
                    sampling = Sampling(temperature=0, max_tokens=64)
                    result = complete(model, CompletionRequest.build(buffer, line, sampling=sampling, scope="line"))
                    first = result.alternatives[0]
                    runs.append(first.tokens / (first.generate_ms / 1000 + 1e-9))
                    texts[lookup] = result.completion
                rates[lookup] = statistics.median(runs)
                model.llm.close()
            same = "same tokens" if texts[0] == texts[10] else "DIFFERENT TOKENS"
            print(
                f"lookup 10, {name}: {rates[0]:.1f} -> {rates[10]:.1f} tok/s,"
                f" speed-up {rates[10] / rates[0]:.2f}x ({same})"
            )


def main() -> None:
    args = model_arguments(__doc__)
    gguf = bench_model(args.shape, args.quant, args.dir)
    print(f"machine {machine()}; date {time.strftime('%Y-%m-%d')}")
    print(f"model   random {args.shape} {BENCH_SHAPES[args.shape]}, {args.quant}, {gguf.stat().st_size / 1e6:.0f} MB")
    latency_table(gguf)
    generation_speed(gguf, args.repeats)
    lookup_speedup(gguf, args.repeats)


if __name__ == "__main__":
    main()
