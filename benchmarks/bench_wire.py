"""Request checking on the server: the hand-written field checks (server/fields.py) against a pydantic v2 model
of the same OpenAI /v1/completions body, in one run. What it prints decides which the server uses.

    python benchmarks/bench_wire.py [--rounds 20000]

Per body: microseconds to check it with each, and their ratio; then, for a few malformed bodies, the message
each gives (the server answers with one line; pydantic's message has to be reworded into one).

Then what trust costs a request (server/trust.py, server/peer.py): the gate's checks of an editor's headers, and
finding a loopback peer's uid (Linux: netlink sock_diag, then reading /proc/net/tcp for comparison) with as many
other connections open as asked, per lookup; a client that sends the token skips the lookup.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
import time
from datetime import date
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import BaseModel, ConfigDict, Field, ValidationError  # noqa: E402

from localcoder.completion.generate import SEED_MAX, SEED_MIN  # noqa: E402
from localcoder.server.fields import BadRequest  # noqa: E402
from localcoder.server.openai_api import parse_completion  # noqa: E402
from localcoder.server.peer import _address, _read_proc, peer_uid  # noqa: E402
from localcoder.server.trust import Gate  # noqa: E402

EDITOR_HEADERS = {"Host": "127.0.0.1:8788", "Content-Type": "application/json", "Content-Length": "812",
                  "Authorization": "Bearer "}  # fmt: skip


class OpenAIBody(BaseModel):
    """The same fields and bounds as openai_api.parse_completion."""

    model_config = ConfigDict(extra="ignore", strict=True)
    prompt: str | list[str] = ""
    suffix: str | None = None
    n: int = Field(1, ge=1, le=16)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, ge=0.0, le=1.0)
    max_tokens: int = Field(16, ge=1, le=1024)
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX)
    top_k: int = Field(0, ge=0, le=10**6)
    stop: str | list[str] | None = None
    prompt_layout: Literal["stable", "cursor"] = "stable"
    model: str | None = None
    stream: bool = False


BODIES = {
    "small": {"prompt": "def add(a, b):\n    ", "suffix": "\n", "max_tokens": 32, "temperature": 0},
    "8 KB prompt": {
        "prompt": "x = 1\n" * 1365,
        "suffix": "\nprint(x)\n" * 100,
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.95,
        "stop": ["\n\n", "def "],
        "stream": True,
        "model": "codegen25-7b-multi_P.Q4_K_M",
    },
}
MALFORMED = {
    "n as a string": {"prompt": "x", "n": "2"},
    "temperature 9": {"prompt": "x", "temperature": 9},
    "stop as a number": {"prompt": "x", "stop": 3},
    "max_tokens null": {"prompt": "x", "max_tokens": None},
}


def per_call_us(check, body: dict, rounds: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(rounds):
            check(body)
        best = min(best, (time.perf_counter() - started) / rounds * 1e6)
    return best


def message(check, body: dict) -> str:
    try:
        check(body)
    except BadRequest as exc:
        return str(exc)
    except ValidationError as exc:
        return " | ".join(str(exc).splitlines())
    return "(accepted)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20000)
    rounds = parser.parse_args().rounds
    print(f"{date.today()}  {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}")
    print(f"{'body':<14}{'fields.py us':>14}{'pydantic us':>13}{'pydantic / fields':>19}")
    for name, body in BODIES.items():
        ours = per_call_us(parse_completion, body, rounds)
        theirs = per_call_us(OpenAIBody.model_validate, body, rounds)
        print(f"{name:<14}{ours:>14.2f}{theirs:>13.2f}{theirs / ours:>19.2f}")
    print()
    for name, body in MALFORMED.items():
        print(f"{name}:\n  fields.py: {message(parse_completion, body)}")
        print(f"  pydantic:  {message(OpenAIBody.model_validate, body)}")
    print()
    gate = Gate.for_server("127.0.0.1", 8788, None)
    print(f"gate: {per_call_us(lambda h: gate.refusal('POST', h), EDITOR_HEADERS, rounds):.2f} us per request")
    with open("/proc/net/tcp", "rb") as table:
        listed = len(table.read().splitlines()) - 1
    print(f"(/proc/net/tcp lists {listed} sockets before these connections)")
    for count in (10, 500, 1500):
        netlink, proc = peer_lookup_ms(count, peer_uid), peer_lookup_ms(count, read_proc)
        print(f"peer uid, {count:>4} connections open: netlink {netlink:.3f} ms, /proc/net/tcp {proc:.3f} ms")


def read_proc(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    return _read_proc(_address(peer[0]), peer[1], _address(local[0]), local[1])


def peer_lookup_ms(connections: int, lookup, rounds: int = 200) -> float:  # noqa: ANN001
    """Best of 3: one uid lookup for a loopback connection while `connections` others are open (both ends)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=connections + 1)
    pairs = []
    try:
        for _ in range(connections):
            client = socket.create_connection(listener.getsockname())
            pairs.append((client, listener.accept()[0]))
        peer, local = pairs[-1][0].getsockname(), listener.getsockname()
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(rounds):
                assert lookup(peer, local) == os.geteuid()
            best = min(best, (time.perf_counter() - started) / rounds * 1000)
        return best
    finally:
        for client, server in pairs:
            client.close()
            server.close()
        listener.close()


if __name__ == "__main__":
    main()
