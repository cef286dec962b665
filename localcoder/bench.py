"""`localcoder bench`: infill latency at 2,000 tokens of context, cold, warm and hot, on this machine.

- cold: a new `localcoder complete --no-server` process: start-up, model load, the whole prompt, generation;
- warm: a resident server (the real HTTP server, in this process) whose KV cache was emptied first;
- hot: the resident server right after a request on the same file, then a few characters typed at the
  cursor (hot-type) or Enter pressed and the next line started (hot-enter).

Every resident request goes through POST /infill, as an editor's would. Greedy, scope "full".
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from localcoder.completion.engine import Engine
from localcoder.completion.generate import Sampling
from localcoder.completion.request import CompletionRequest
from localcoder.errors import LocalcoderError
from localcoder.runtime import LoadOptions, resolve_model
from localcoder.server.client import remote_infill
from localcoder.server.engine_pool import EnginePool
from localcoder.server.http import LocalcoderServer, ServeOptions
from localcoder.server.pool import ModelPool, PoolOptions
from localcoder.server.wire import NativeInfill
from localcoder.source import locate, read_source_bytes

NEW_TOKENS = (16, 32, 64)
SCENARIOS = ("cold", "warm", "hot-type", "hot-enter")
TYPED = "tot"  # what the user types before the hot-type request
WINDOW = 2048


def sample_source(functions: int = 40) -> tuple[str, int]:
    """A Python file of about 2,000 CodeGen tokens, cursor on a blank line in the middle (line number returned).

    The line is the first of a block of the stable layout (a multiple of 8, plus one), as likely as any.
    """
    body = [
        f"def transform_{i}(values, factor={i}):\n"
        f'    """Scale every value by {i} and drop the negative ones."""\n'
        f"    result = []\n    for value in values:\n        if value * factor >= 0:\n"
        f"            result.append(value * factor)\n    return result\n\n\n"
        for i in range(functions)
    ]
    middle = len(body) // 2
    head = "".join(body[:middle]) + "def combine(left, right):\n"
    while (head.count("\n")) % 8:
        head = head.replace("def combine", "\ndef combine", 1)
    return head + "    \n\n\n" + "".join(body[middle:]), head.count("\n") + 1


@dataclass
class Measurement:
    scenario: str
    new_tokens: int
    latency_ms: float
    prompt_tokens: int
    evaluated_tokens: int
    generated_tokens: int


@dataclass
class BenchReport:
    model: str
    machine: str
    date: str
    load_ms: float
    lookup: int
    rows: list[Measurement] = field(default_factory=list)

    def latency(self, scenario: str, new_tokens: int) -> float:
        return next(r.latency_ms for r in self.rows if r.scenario == scenario and r.new_tokens == new_tokens)

    def to_dict(self) -> dict[str, Any]:
        cold = sorted({r.new_tokens for r in self.rows if r.scenario == "cold"})
        speedup = {str(n): round(self.latency("cold", n) / self.latency("hot-type", n), 2) for n in cold}
        return {
            "model": self.model,
            "machine": self.machine,
            "date": self.date,
            "load_ms": round(self.load_ms, 1),
            "lookup": self.lookup,
            "rows": [r.__dict__ for r in self.rows],
            "cold_over_hot_type": speedup,
        }


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


def run_bench(
    model_name: str | None,
    new_tokens: tuple[int, ...] = NEW_TOKENS,
    lookup: int = 0,
    threads: int | None = None,
    gpu_layers: int | None = None,
    cold: bool = True,
    progress: Callable[[str], None] = lambda _: None,
    engine: Engine | None = None,
) -> BenchReport:
    """With `engine`, the resident server is `serve --engine` (the tokenizer here, generation there) and the cold
    runs are `complete --engine`; "warm" then starts from whatever the engine itself has cached."""
    path = resolve_model(model_name).resolve()
    text, line = sample_source()
    options = PoolOptions(LoadOptions(str(path), WINDOW, threads, gpu_layers, lookup), keep_alive=-1)
    pool = EnginePool(options, engine, 1) if engine is not None else ModelPool(options)
    server = LocalcoderServer(ServeOptions(port=0, pool=pool.options), pool, lambda _line: None)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        progress("loading the model")
        loaded = pool.preload(None)
        report = BenchReport(str(path), machine(), date.today().isoformat(), loaded.load_ms, lookup)
        with tempfile.TemporaryDirectory(prefix="localcoder-bench-") as scratch:
            source = Path(scratch) / "two_thousand_tokens.py"
            source.write_text(text)
            for count in new_tokens:
                if cold:
                    progress(f"cold, {count} new tokens (a new process)")
                    report.rows.append(_cold(path, source, line, count, lookup, threads, gpu_layers, engine))
                progress(f"warm and hot, {count} new tokens")
                if engine is None:
                    with pool.lease(None) as model:
                        model.llm.reset()  # warm: resident, nothing cached
                report.rows.append(_resident(url, "warm", text, line, count))
                typed = _type_at(text, line, TYPED)
                report.rows.append(_resident(url, "hot-type", typed, line, count))
                entered = _type_at(typed, line, "\n    ")
                report.rows.append(_resident(url, "hot-enter", entered, line + 1, count))
        return report
    finally:
        server.shutdown()
        server.server_close()
        pool.close()


def _type_at(text: str, line: int, typed: str) -> str:
    cursor = locate(read_source_bytes(text.encode()), line, None)
    return text[: cursor.offset] + typed + text[cursor.offset :]


def _payload(text: str, line: int, count: int) -> NativeInfill:
    sampling = Sampling(temperature=0.0, max_tokens=count, seed=0)
    buffer = read_source_bytes(text.encode())
    return NativeInfill(CompletionRequest.build(buffer, line, scope="full", sampling=sampling))


def _resident(url: str, scenario: str, text: str, line: int, count: int) -> Measurement:
    started = time.perf_counter()
    result = remote_infill(url, _payload(text, line, count), None)
    latency = (time.perf_counter() - started) * 1000
    tokens = result["tokens"]
    return Measurement(
        scenario, count, latency, tokens["prompt"], tokens["prompt"] - tokens["cached"], tokens["generated"]
    )


def _cold(
    model: Path,
    source: Path,
    line: int,
    count: int,
    lookup: int,
    threads: int | None,
    gpu_layers: int | None,
    engine: Engine | None = None,
) -> Measurement:
    argv = [sys.executable, "-m", "localcoder", "complete", f"{source}:{line}", "--model", str(model), "--no-server"]
    argv += ["--json", "--temperature", "0", "--scope", "full", "--max-tokens", str(count), "--ctx", str(WINDOW)]
    argv += ["--seed", "0", "--lookup", str(lookup)]
    argv += ["--threads", str(threads)] if threads else []
    argv += ["--gpu-layers", str(gpu_layers)] if gpu_layers is not None else []
    if engine is not None:
        argv += ["--engine", engine.url, "--engine-prompt", engine.prompt_kind, "--engine-timeout", str(engine.timeout)]
        argv += ["--engine-model", engine.model] if engine.model else []
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    latency = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise LocalcoderError(f"the cold run failed: {done.stderr.strip().splitlines()[-1:]}")
    tokens = json.loads(done.stdout)["tokens"]
    return Measurement("cold", count, latency, tokens["prompt"], tokens["prompt"], tokens["generated"])
