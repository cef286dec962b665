"""A typing trace through `localcoder lsp` against the same trace over `localcoder serve`'s POST /infill.

    python benchmarks/bench_editor_lsp.py [--shape bench|7b] [--quant Q4_K_M] [--max-tokens 16]

One line is typed one keystroke at a time into a file of about 1,000 tokens. Per keystroke:
  lsp:    textDocument/didChange (one character, UTF-16 position) + textDocument/inlineCompletion
          (triggerKind invoked: no debounce), answered by `localcoder lsp --no-server` (its own model);
  lsp+serve: the same, with `localcoder lsp --server URL` forwarding to a running serve;
  /infill: the whole buffer and the cursor POSTed to serve's /infill (what an HTTP plugin sends).
Each path loads its model before the trace (not timed) and answers greedy, so all three do the same work;
the three take turns keystroke by keystroke, so that load from other work falls on them alike;
the difference is the protocol: incremental sync and JSON-RPC over stdio against HTTP with the whole text.
Milliseconds per keystroke (median and mean over the trace, the first keystroke left out as a warm-up).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_complete import BENCH_SHAPES, bench_model  # noqa: E402
from localcoder.bench import WINDOW, machine  # noqa: E402
from localcoder.completion.generate import Sampling  # noqa: E402
from localcoder.completion.request import CompletionRequest  # noqa: E402
from localcoder.runtime import LoadOptions  # noqa: E402
from localcoder.server.client import remote_infill  # noqa: E402
from localcoder.server.http import LocalcoderServer, ServeOptions  # noqa: E402
from localcoder.server.pool import ModelPool, PoolOptions  # noqa: E402
from localcoder.server.wire import NativeInfill  # noqa: E402
from localcoder.source import SourceBuffer  # noqa: E402

TYPED = "    total = sum(value * scale for value in values)  # \N{PARTY POPPER} done"
URI = "file:///bench/module.py"


def source() -> tuple[str, int]:
    """A module of about 1,000 tokens and the (0-based) blank line the trace types on."""
    lines = ['"""Small helpers for the bench."""\n', "\n", "\n"]
    for index in range(16):
        lines += [
            f"def helper_{index}(values, scale={index + 1}):\n",
            f'    """Scale the values by {index + 1} and keep the positive ones."""\n',
            "    kept = [value * scale for value in values if value > 0]\n",
            "    return kept\n",
            "\n",
            "\n",
        ]
    row = 3 + 6 * 8 + 3  # inside helper_8, below its "kept = ..." line
    lines.insert(row, "\n")
    return "".join(lines), row


class StdioClient:
    """Just enough JSON-RPC framing to time a language server; the tests use real editors' clients."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._next = 0

    def send(self, method: str, params: Any, request: bool = False) -> int | None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self._next += 1
            message["id"] = self._next
        body = json.dumps(message).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()
        return message.get("id")

    def answer(self, msg_id: int) -> Any:
        assert self.process.stdout is not None
        while True:
            length = 0
            while (line := self.process.stdout.readline().strip()) != b"":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            message = json.loads(self.process.stdout.read(length))
            if message.get("id") == msg_id and "method" not in message:
                if "error" in message:
                    raise RuntimeError(message["error"])
                return message["result"]
            if message.get("method") == "window/workDoneProgress/create":
                self._reply(message["id"])

    def _reply(self, msg_id: Any) -> None:
        body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": None}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def request(self, method: str, params: Any) -> Any:
        msg_id = self.send(method, params, request=True)
        assert msg_id is not None
        return self.answer(msg_id)

    def close(self) -> int:
        self.request("shutdown", None)
        self.send("exit", None)
        return self.process.wait(timeout=30)


class LspSession:
    """An open document in `localcoder lsp`; `key(i)` types TYPED[i] and asks for the inline completion."""

    def __init__(self, command: list[str], text: str, row: int) -> None:
        self.client, self.row, self.column = StdioClient(command), row, 0
        self.client.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        self.client.send("initialized", {})
        document = {"uri": URI, "languageId": "python", "version": 1, "text": text}
        self.client.send("textDocument/didOpen", {"textDocument": document})
        self._ask()  # loads the model

    def _ask(self) -> None:
        position = {"line": self.row, "character": self.column}
        params = {"textDocument": {"uri": URI}, "position": position, "context": {"triggerKind": 1}}
        self.client.request("textDocument/inlineCompletion", params)

    def key(self, index: int) -> float:
        started = time.perf_counter()
        at = {"line": self.row, "character": self.column}
        change = {"range": {"start": at, "end": at}, "text": TYPED[index]}
        document = {"uri": URI, "version": index + 2}
        self.client.send("textDocument/didChange", {"textDocument": document, "contentChanges": [change]})
        self.column += len(TYPED[index].encode("utf-16-le")) // 2
        self._ask()
        return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        assert self.client.close() == 0


class InfillSession:
    """The same typing as whole-buffer POST /infill requests to a running serve."""

    def __init__(self, url: str, text: str, row: int, max_tokens: int) -> None:
        self.url, self.lines, self.row = url, text.split("\n"), row
        self.sampling = Sampling(temperature=0.0, max_tokens=max_tokens)

    def key(self, index: int) -> float:
        started = time.perf_counter()
        lines, row, typed = self.lines, self.row, TYPED[: index + 1]
        text = "\n".join([*lines[:row], typed + lines[row], *lines[row + 1 :]])
        buffer = SourceBuffer("module.py", text, "utf-8", False, "\n")
        request = CompletionRequest.build(buffer, row + 1, len(typed) + 1, sampling=self.sampling)
        remote_infill(self.url, NativeInfill(request), None)
        return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        pass


def summary(name: str, times: list[float]) -> tuple[str, float]:
    kept = times[1:]
    median = statistics.median(kept)
    return f"{name:<10} {median:>8.1f} {statistics.mean(kept):>8.1f} {max(kept):>8.1f} {len(kept):>6}", median


def main() -> None:
    import argparse
    from datetime import date

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(BENCH_SHAPES), default="bench")
    parser.add_argument("--quant", default="Q4_K_M")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--dir", type=Path, default=Path("bench-out"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    gguf = bench_model(args.shape, args.quant, args.dir)
    text, row = source()
    print(f"machine {machine()}; date {date.today().isoformat()}; model random {args.shape}, {args.quant};"
          f" {len(TYPED)} keystrokes, max_tokens {args.max_tokens}, greedy")  # fmt: skip

    lsp = [sys.executable, "-m", "localcoder", "lsp", "--model", str(gguf), "--max-tokens", str(args.max_tokens)]
    pool = ModelPool(PoolOptions(LoadOptions(str(gguf), WINDOW), keep_alive=-1))
    server = LocalcoderServer(ServeOptions(port=0, pool=pool.options), pool, lambda _line: None)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        pool.preload(None)
        sessions = {
            "/infill": InfillSession(url, text, row, args.max_tokens),
            "lsp": LspSession([*lsp, "--no-server"], text, row),
            "lsp+serve": LspSession([*lsp, "--server", url], text, row),
        }
        # Keystroke by keystroke, each path in turn (the first one rotating): load from other work on the
        # machine falls on all three alike.
        results: dict[str, list[float]] = {name: [] for name in sessions}
        names = list(sessions)
        for index in range(len(TYPED)):
            for name in names[index % 3 :] + names[: index % 3]:
                results[name].append(sessions[name].key(index))
        for session in sessions.values():
            session.close()
    finally:
        server.shutdown()
        server.server_close()
        pool.close()
    print(f"{'path':<10} {'median':>8} {'mean':>8} {'max':>8} {'keys':>6}   (ms per keystroke)")
    medians = {}
    for name, times in results.items():
        line, medians[name] = summary(name, times)
        print(line)
    base = medians["/infill"]
    print("ratio to /infill (median): " + ", ".join(f"{name} {m / base:.2f}" for name, m in medians.items()))


if __name__ == "__main__":
    main()
