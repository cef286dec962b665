"""An editing session as llama.vim drives `localcoder serve`, with 1 cache slot and with one per file.

    python benchmarks/bench_editor.py [--shape bench|7b] [--quant Q4_K_M] [--slots 3]

The trace, over three files of about 250 tokens each, three rounds:
  enter a file -> its chunk joins the ring (llama.vim picks a chunk of an unmodified buffer on BufEnter)
  -> a warm-up request (n_predict 0, the ring as input_extra, empty prefix and suffix)
  -> open a new line in the file and type it one keystroke at a time, a FIM request per keystroke
     (input_prefix, prompt = the typed line, input_suffix, input_extra = the ring, n_predict 16).
In rounds 2 and 3 the ring no longer changes (the files are modified, so no chunk is picked), and each
file is visited again and one more line typed below the last.

For every request: the prompt's tokens, the tokens read (llama-server's timings.prompt_n) and the slot,
against "changed": the prompt tokens that no earlier request's prompt shares as a prefix, which is what a
cache without limits would read. Target: each request reads at most changed + 8.

Then the editor-latency figures (benchmarks/editor_latency.py): preemption ratios per endpoint, typing
through, prompt-read throughput.

llama.cpp's own llama-server is not run side by side: building it from source takes about 25 minutes on
the 2 shared cores this was written on.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import editor_latency  # noqa: E402
from benchmarks.bench_complete import BENCH_SHAPES, bench_model  # noqa: E402
from localcoder.bench import WINDOW, machine  # noqa: E402
from localcoder.completion.infill import InfillInput, prepare  # noqa: E402
from localcoder.completion.prompt_cache import common_prefix  # noqa: E402
from localcoder.completion.snippets import Snippet  # noqa: E402
from localcoder.runtime import LoadOptions  # noqa: E402
from localcoder.server.http import LocalcoderServer, ServeOptions  # noqa: E402
from localcoder.server.pool import ModelPool, PoolOptions  # noqa: E402
from tests.server_run import Server  # noqa: E402

N_PREDICT = 16
SLACK = 8
TYPED = ["    total = sum(values)", "    total = total * scale", "    return total"]  # one line a round


def source(name: str) -> list[str]:
    lines = [f'"""The {name} module: small helpers for {name} data."""\n', "\n", "\n"]
    for index in range(4):
        lines += [
            f"def {name}_{index}(values, scale={index + 1}):\n",
            f'    """Scale the {name} values by {index + 1} and keep the positive ones."""\n',
            "    kept = [value * scale for value in values if value > 0]\n",
            "\n",
            "\n",
        ]
    return lines


def trace(files: dict[str, list[str]]) -> list[tuple[str, dict]]:
    """(label, llama.vim request body) in the order llama.vim sends them."""
    ring: list[dict] = []
    requests: list[tuple[str, dict]] = []
    for round_index, typed in enumerate(TYPED):
        for name, lines in files.items():
            if round_index == 0:  # unmodified: BufEnter picks a chunk, ring_update sends a warm-up
                ring.append({"text": "".join(lines), "time": 0, "filename": f"{name}.py"})
                warm = {"input_prefix": "", "input_suffix": "", "input_extra": list(ring), "prompt": "", "n_predict": 0}
                requests.append((f"{name} warm-up", warm))
            row = 3 + 5 * 3 + 3 + round_index  # in the last function, below "kept = ...", then below each typed line
            for count in range(1, len(typed) + 1, 3):
                body = {
                    "input_prefix": "".join(lines[max(0, row - 256) : row]),
                    "prompt": typed[:count],
                    "input_suffix": "\n" + "".join(lines[row : row + 64]),
                    "input_extra": list(ring),
                    "n_predict": N_PREDICT,
                    "top_k": 40,
                    "top_p": 0.90,
                    "samplers": ["top_k", "top_p", "infill"],
                    "cache_prompt": True,
                    "t_max_prompt_ms": 500,
                    "t_max_predict_ms": 1000,
                }
                requests.append((f"{name} r{round_index + 1} {typed[:count].strip()[-12:]!r}", body))
            lines.insert(row, typed + "\n")
    return requests


def prompt_ids(model, body: dict) -> list[int]:
    """The prompt the server builds for `body`, from the same core function."""
    extra = tuple(Snippet(chunk["text"], chunk["filename"]) for chunk in body["input_extra"])
    source_input = InfillInput(body["input_prefix"] + body["prompt"], body["input_suffix"], extra)
    return prepare(model, source_input, model.budget(max(body["n_predict"], 1))).ids


def run(gguf: Path, slots: int) -> list[dict]:
    files = {name: source(name) for name in ("alpha", "beta", "gamma")}
    pool = ModelPool(PoolOptions(LoadOptions(str(gguf), WINDOW, cache_slots=slots), keep_alive=-1))
    server = LocalcoderServer(ServeOptions(port=0, pool=pool.options), pool, lambda _line: None)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    client = Server(f"http://127.0.0.1:{server.server_address[1]}", None)  # type: ignore[arg-type]
    rows, seen = [], []
    try:
        model = pool.preload(None)
        for label, body in trace(files):
            ids = prompt_ids(model, body)
            changed = min((len(ids) - common_prefix(old, ids) for old in seen), default=len(ids))
            seen.append(ids)
            started = time.perf_counter()
            status, answer = client.post("/infill", body)
            assert status == 200, answer
            row = {"label": label, "prompt": len(ids), "read": answer["timings"]["prompt_n"], "changed": changed}
            rows.append({**row, "slot": answer["id_slot"], "ms": (time.perf_counter() - started) * 1000})
        rows[-1]["saved_mib"] = model.cache.status()["saved_mib"]
    finally:
        server.shutdown()
        server.server_close()
        pool.close()
    return rows


def main() -> None:
    import argparse
    from datetime import date

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(BENCH_SHAPES), default="bench")
    parser.add_argument("--quant", default="Q4_K_M")
    parser.add_argument("--slots", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("bench-out"))
    parser.add_argument("--latency-only", action="store_true", help="only the editor-latency figures")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    gguf = bench_model(args.shape, args.quant, args.dir)
    print(f"machine {machine()}; date {date.today().isoformat()}; model random {args.shape}, {args.quant}")
    for line in editor_latency.report(gguf):
        print(line, flush=True)
    if args.latency_only:
        return
    results = {slots: run(gguf, slots) for slots in (1, args.slots)}
    print(f"{'request':<34} {'prompt':>6} {'changed':>7} " + " ".join(f"{f'read/slot ({s})':>15}" for s in results))
    for index, row in enumerate(results[1]):
        cells = " ".join(f"{str(r[index]['read']) + '/' + str(r[index]['slot']):>15}" for r in results.values())
        print(f"{row['label']:<34} {row['prompt']:>6} {row['changed']:>7} {cells}")
    for slots, rows in results.items():
        prompt = sum(r["prompt"] for r in rows)
        read = sum(r["read"] for r in rows)
        over = [r["label"] for r in rows if r["read"] > r["changed"] + SLACK]
        print(
            f"{slots} slot(s): read {read} of {prompt} prompt tokens, hit rate {1 - read / prompt:.1%};"
            f" {len(over)} request(s) over changed + {SLACK}{': ' + ', '.join(over) if over else ''};"
            f" saved states {rows[-1]['saved_mib']} MiB; {sum(r['ms'] for r in rows) / 1000:.1f} s in all"
        )


if __name__ == "__main__":
    main()
