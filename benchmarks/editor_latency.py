"""The editor-latency figures of `make bench-editor`: work the user moved past must not delay the next
keystroke. Medians of REPEATS, against an in-process `localcoder serve` over real sockets, --threads 1.

  preemption: request B (a small file) alone, and B sent 200 ms after request A on a new ~2,000-token file
      whose client then closes its connection; ratio = B after A / B alone. Goal <= 1.3. Before this work: 19.5
      (/infill), 15.9 (/v1/completions).
  superseding: one editor typing on in one file, connections left open, the same id_slot: B (a keystroke's
      request) alone, and B sent 200 ms after A (the keystroke before, still generating: 1,024 tokens at most),
      which B supersedes (the lines around A's cursor are still in B's text). Goal <= 1.3.
  typing through: a request at a position, then the user types its suggestion's first 3 and 10 characters;
      ratio = typed request / the same first request repeated with its prompt all cached (generation only),
      exact = the answer is the rest of the suggestion (then, as it ended at its budget, what the model
      generates on from there). Goal <= 0.2 and exact.
  prompt read: tokens/s of a ~2,000-token prompt read at once (llama-cpp-python's eval, as before) and in
      prompt_read's batches with its abort callback. Goal: within 5%.
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from localcoder.bench import WINDOW, sample_source
from localcoder.completion.prompt_read import read_tokens
from localcoder.runtime import LoadOptions
from localcoder.server.http import LocalcoderServer, ServeOptions
from localcoder.server.pool import ModelPool, PoolOptions
from tests.server_run import Server, post_head

REPEATS = 5
ABANDON_AFTER_S = 0.2


def small_file(salt: int) -> tuple[str, str]:
    """B: a short file, a little different each time so that nothing is cached or typed through."""
    prefix = f"# scratch {salt}\nimport math\n\n\ndef area(radius):\n    return math.pi * radius ** 2\n\n\n"
    prefix += "def norm(x, y):\n"
    return prefix, "\n\nprint(norm(3, 4))\n"


def big_file(salt: int) -> tuple[str, str]:
    """A: a new file of about 2,000 tokens, cursor in the middle."""
    text, line = sample_source()
    lines = text.splitlines(keepends=True)
    return f"# file {salt}\n" + "".join(lines[: line - 1]), "".join(lines[line - 1 :])


def body_for(path: str, prefix: str, suffix: str, who: object = None, tokens: int = 16) -> dict[str, Any]:
    if path == "/infill":
        body = {"input_prefix": prefix, "prompt": "", "input_suffix": suffix, "n_predict": tokens, "temperature": 0}
        return body if who is None else {**body, "id_slot": who}
    body = {"prompt": prefix, "suffix": suffix, "max_tokens": tokens, "temperature": 0}
    return body if who is None else {**body, "user": who}


def start_abandoned(server: Server, path: str, body: dict[str, Any]) -> socket.socket:
    payload = json.dumps(body).encode()
    connection = socket.create_connection(("127.0.0.1", server.port))
    connection.sendall(post_head(path, len(payload)))
    connection.sendall(payload)
    return connection


def timed_post(server: Server, path: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    status, answer = server.post(path, body)
    assert status == 200, answer
    return (time.perf_counter() - started) * 1000, answer


def preemption(server: Server, path: str, salt: list[int]) -> tuple[float, float]:
    """(B alone, B after A, whose client closed its connection): medians in ms."""
    alone, after = [], []
    for _ in range(REPEATS):
        salt[0] += 1
        alone.append(timed_post(server, path, body_for(path, *small_file(salt[0])))[0])
        salt[0] += 1
        abandoned = start_abandoned(server, path, body_for(path, *big_file(salt[0])))
        time.sleep(ABANDON_AFTER_S)
        abandoned.close()
        salt[0] += 1
        after.append(timed_post(server, path, body_for(path, *small_file(salt[0])))[0])
    return statistics.median(alone), statistics.median(after)


def typed_file(salt: int) -> tuple[str, str]:
    """The file an editor keeps typing in: about 700 tokens around the cursor, so that a long generation's
    prompt is the same as a keystroke's (nothing trimmed) and what one request reads the next finds cached."""
    prefix, suffix = big_file(salt)
    return f"# file {salt}\n" + "".join(prefix.splitlines(keepends=True)[-45:]), "".join(suffix.splitlines(True)[:15])


def superseding(server: Server, salt: list[int]) -> tuple[float, float]:
    """(B alone, B after A) for one editor typing on in one file (same id_slot, connections left open): the file
    is read once (the editor's warm-up); B alone is a keystroke's request; A is the request of the keystroke
    before B, still generating (a 1,024-token budget) when B is sent 200 ms later. Medians in ms."""
    alone, after = [], []
    for _ in range(REPEATS):
        salt[0] += 1
        prefix, suffix = typed_file(salt[0])
        server.post("/infill", body_for("/infill", prefix, suffix, 0, tokens=0))  # the warm-up
        alone.append(timed_post(server, "/infill", body_for("/infill", prefix + "va", suffix, 0))[0])
        running = start_abandoned(server, "/infill", body_for("/infill", prefix + "w", suffix, 0, tokens=1024))
        time.sleep(ABANDON_AFTER_S)
        after.append(timed_post(server, "/infill", body_for("/infill", prefix + "wb", suffix, 0))[0])
        running.close()
    return statistics.median(alone), statistics.median(after)


def typing_through(server: Server) -> tuple[dict[int, float], int, int]:
    """Typed time / cached repeat time per typed length (medians), and how many answers were the exact rest."""
    ratios: dict[int, list[float]] = {3: [], 10: []}
    exact = total = 0
    for index in range(REPEATS):
        prefix, suffix = big_file(1000 + index)
        body = body_for("/infill", prefix, suffix, tokens=32)
        shown = server.post("/infill", body)[1]["content"]
        repeat_ms = timed_post(server, "/infill", body)[0]  # all cached: generation only
        for count in ratios:
            typed = shown[:count]
            cut = typed.rfind("\n") + 1
            typed_body = {**body, "input_prefix": prefix + typed[:cut], "prompt": typed[cut:]}
            typed_ms, answer = timed_post(server, "/infill", typed_body)
            ratios[count].append(typed_ms / repeat_ms)
            total += 1
            # The rest of the suggestion, then (it ended at its budget) the tokens generated on from its KV state;
            # a server without typing through (llama-server) counts when its fresh generation gives the same rest.
            exact += answer["content"].startswith(shown[count:]) and answer.get("typed_through", True)
    return {count: statistics.median(values) for count, values in ratios.items()}, exact, total


def read_throughput(model: Any) -> tuple[float, float]:
    """Prompt tokens/s read at once (llama-cpp-python's eval) and through prompt_read (medians)."""
    prefix, suffix = big_file(0)
    ids = model.vocab.tokenize(prefix + suffix)[: WINDOW - 64]
    llm = model.llm
    at_once, batched = [], []
    for _ in range(REPEATS):
        llm.reset()
        started = time.perf_counter()
        llm.eval(ids)
        at_once.append(len(ids) / (time.perf_counter() - started))
        llm.reset()
        started = time.perf_counter()
        read_tokens(llm, ids, lambda: False)
        batched.append(len(ids) / (time.perf_counter() - started))
    return statistics.median(at_once), statistics.median(batched)


def report(gguf: Path) -> list[str]:
    """The figures, one line each."""
    pool = ModelPool(PoolOptions(LoadOptions(str(gguf), WINDOW, threads=1), keep_alive=-1))
    server = LocalcoderServer(ServeOptions(port=0, pool=pool.options), pool, lambda _line: None)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    client = Server(f"http://127.0.0.1:{server.server_address[1]}", None)  # type: ignore[arg-type]
    lines = []
    try:
        model = pool.preload(None)
        salt = [0]
        for path, supersede in (("/infill", False), ("/v1/completions", False), ("/infill", True)):
            alone, after = superseding(client, salt) if supersede else preemption(client, path, salt)
            how = "A superseded (connection left open)" if supersede else "A's connection closed"
            lines.append(
                f"preemption {path:<16} {how:<36}: B alone {alone:6.0f} ms, after A {after:6.0f} ms,"
                f" ratio {after / alone:.2f} (goal <= 1.3)"
            )
        ratios, exact, total = typing_through(client)
        for count, ratio in ratios.items():
            lines.append(f"typing through: {count:>2} characters typed, time ratio {ratio:.3f} of a cached repeat")
        lines.append(f"typing through: {exact} of {total} answers are the exact rest of the suggestion")
        stats = server.service.stats.to_dict()
        lines.append(
            f"server counts: {stats['cancelled']} cancelled, {stats['superseded']} superseded,"
            f" {stats['typed_through']} typed through, {stats['ms_for_nobody']:.0f} ms of model time for nobody"
        )
        with pool.lease(None) as leased:
            at_once, batched = read_throughput(leased)
        lines.append(
            f"prompt read: {at_once:.0f} tokens/s at once (before), {batched:.0f} tokens/s in batches with the"
            f" abort callback (now): {batched / at_once - 1:+.1%}"
        )
        del model
    finally:
        server.shutdown()
        server.server_close()
        pool.close()
    return lines
