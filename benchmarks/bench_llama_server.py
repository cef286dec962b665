"""The editor-latency trace of `make bench-editor` against llama.cpp's own llama-server, side by side with
`localcoder serve` in the same run, on the same GGUF, one thread each, one sequence each.

    python benchmarks/bench_llama_server.py --llama-server PATH/llama-server [--shape bench] [--dir bench-out]

llama-server comes from the llama.cpp sources vendored in llama-cpp-python's sdist (the version localcoder
runs); building it takes about 25 minutes on 2 cores:

    cmake -S llama_cpp_python-0.3.36/vendor/llama.cpp -B build -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=ON
    cmake --build build --target llama-server

Printed per server: preemption (request B alone, and B after an abandoned request A whose connection closed,
over /infill and /v1/completions; and B with the same id_slot while A's connection stays open), typing the
first 3 and 10 characters of a suggestion (time against a cached repeat, and whether the answer is the rest of
the suggestion). llama-server builds its /infill prompt from the vocabulary's <fim_*> tokens, not CodeGen2.5's
format: the random-weight model makes the text meaningless either way; the timings are what is compared.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import editor_latency  # noqa: E402
from benchmarks.bench_complete import BENCH_SHAPES, bench_model  # noqa: E402
from localcoder.bench import WINDOW, machine  # noqa: E402
from localcoder.runtime import LoadOptions  # noqa: E402
from localcoder.server.http import LocalcoderServer, ServeOptions  # noqa: E402
from localcoder.server.pool import ModelPool, PoolOptions  # noqa: E402
from tests.llama_server import free_port  # noqa: E402
from tests.server_run import Server  # noqa: E402

TRACE = (("/infill", False), ("/v1/completions", False), ("/infill", True))


def trace(server: Server) -> list[str]:
    lines, salt = [], [0]
    for path, supersede in TRACE:
        alone, after = editor_latency.preemption(server, path, supersede, salt)
        how = "A superseded (connection left open)" if supersede else "A's connection closed"
        lines.append(
            f"  preemption {path:<16} {how:<36}: B alone {alone:6.0f} ms, after A {after:6.0f} ms,"
            f" ratio {after / alone:5.2f}"
        )
    ratios, exact, total = editor_latency.typing_through(server)
    for count, ratio in ratios.items():
        lines.append(f"  typing through: {count:>2} characters typed, time ratio {ratio:.3f} of a cached repeat")
    lines.append(f"  typing through: {exact} of {total} answers are the rest of the suggestion")
    return lines


def localcoder_trace(gguf: Path) -> list[str]:
    pool = ModelPool(PoolOptions(LoadOptions(str(gguf), WINDOW, threads=1), keep_alive=-1))
    server = LocalcoderServer(ServeOptions(port=0, pool=pool.options), pool, lambda _line: None)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        pool.preload(None)
        return trace(Server(f"http://127.0.0.1:{server.server_address[1]}", None))  # type: ignore[arg-type]
    finally:
        server.shutdown()
        server.server_close()
        pool.close()


def llama_server_trace(binary: Path, gguf: Path) -> list[str]:
    port = free_port()
    command = [str(binary), "-m", str(gguf), "--port", str(port), "--host", "127.0.0.1", "-c", str(WINDOW)]
    command += ["--threads", "1", "--threads-batch", "1", "--parallel", "1", "--no-webui"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("llama-server did not come up in 60 s")
        return trace(Server(url, process))  # type: ignore[arg-type]
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llama-server", type=Path, required=True, help="the llama-server binary")
    parser.add_argument("--shape", choices=sorted(BENCH_SHAPES), default="bench")
    parser.add_argument("--quant", default="Q4_K_M")
    parser.add_argument("--dir", type=Path, default=Path("bench-out"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    gguf = bench_model(args.shape, args.quant, args.dir)
    print(f"machine {machine()}; date {date.today().isoformat()}; model random {args.shape}, {args.quant}")
    print(f"medians of {editor_latency.REPEATS}; one thread, one sequence each")
    print("localcoder serve:")
    for line in localcoder_trace(gguf):
        print(line, flush=True)
    print(f"llama-server ({args.llama_server}):")
    for line in llama_server_trace(args.llama_server, gguf):
        print(line, flush=True)


if __name__ == "__main__":
    main()
