"""What `localcoder serve` trusts, attacked over real sockets: each attack next to the legitimate request it must
still answer (server/trust.py, server/owner.py, supersede.py, server/client.py).
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from localcoder.completion.request import CompletionRequest
from localcoder.server.client import LoadedCompleter, LoadOptions, ServedCompleter, open_completer
from localcoder.source import read_source_bytes
from tests.bigram import GARBAGE, bigram_model
from tests.server_run import Server, open_stream, read_to_end, running_server

pytest.importorskip("llama_cpp")

ANSWER = "return x * 2"
ABOVE = "import os\nimport sys\n\n\nSCALE = 2\n\n\ndef f(x):\n"
BELOW = "\n\nprint(f(2))\n"
JSON = {"Content-Type": "application/json"}
REPO = {
    "pyproject.toml": "[project]\nname = 'pkg'\n",
    "pkg/__init__.py": "",
    "pkg/config.py": "def load_config(path, *, strict=False):\n    return open(path).read()\n",
}
USES = "from .config import load_config\n\nvalue = load_config('x')\n"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bigram_model(tmp_path_factory.mktemp("answer"), ANSWER)


@pytest.fixture(scope="module")
def server(model: Path):
    with running_server("--model", str(model), "--keep-alive", "-1") as running:
        yield running


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for name, text in REPO.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "pkg" / "config.py").chmod(0o600)  # nobody else may read it
    return tmp_path


def infill_body(path: str, **extra: Any) -> dict[str, Any]:
    return {"text": USES, "line": 3, "path": path, "max_tokens": 2, "temperature": 0, **extra}


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_foreign_host_is_refused_while_the_right_host_gets_context(server: Server, repo: Path) -> None:
    body = json.dumps(infill_body(str(repo / "pkg" / "app.py"))).encode()
    status, refused = post(server.port, "/infill", body, {**JSON, "Host": f"rebound.example:{server.port}"})
    assert status == 403 and "rebound.example" in refused["error"]["message"], refused
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", "127.1.2.3"):
        status, answer = post(server.port, "/infill", body, {**JSON, "Host": host})
        assert status == 200 and [s["path"] for s in answer["context"]] == ["pkg/config.py"], (host, answer)
    status, ollama = post(server.port, "/api/generate", b"{}", {**JSON, "Host": "rebound.example"})
    assert status == 403 and isinstance(ollama["error"], str)  # each protocol's own error shape


def test_a_foreign_origin_and_a_form_body_are_refused_while_json_is_answered(server: Server) -> None:
    body = json.dumps({"prompt": ABOVE, "suffix": BELOW, "max_tokens": 8, "temperature": 0}).encode()
    for origin in ("https://attacker.example", "null", "http://127.0.0.1:1"):
        status, refused = post(server.port, "/v1/completions", body, {**JSON, "Origin": origin})
        assert status == 403 and "Origin" in refused["error"]["message"], (origin, refused)
    for kind in ("text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, refused = post(server.port, "/v1/completions", body, {"Content-Type": kind})
        assert status == 415 and "application/json" in refused["error"]["message"], (kind, refused)
    status, refused = post(server.port, "/api/generate", body, {})  # a fetch() of a Blob sends no type at all
    assert status == 415 and isinstance(refused["error"], str)
    same_origin = {**JSON, "Origin": f"http://127.0.0.1:{server.port}"}
    for headers in (JSON, {"Content-Type": "application/json; charset=utf-8"}, same_origin):
        status, answer = post(server.port, "/v1/completions", body, headers)
        assert status == 200 and answer["choices"][0]["text"] == ANSWER, (headers, answer)


def stranger_uid() -> int:
    """A uid no account uses (so it owns nothing here), or nobody's."""
    taken = {entry.pw_uid for entry in pwd.getpwall()}
    return next(uid for uid in range(54321, 60000) if uid not in taken)


def as_uid(uid: int, work: Callable[[], Any]) -> Any:
    """Run `work` in a forked child that has become `uid` (a client of another local user); its JSON result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            data = json.dumps({"uid": os.getuid(), "result": work()}).encode()
        except BaseException as exc:  # noqa: BLE001 (anything, reported to the parent)
            data = json.dumps({"error": repr(exc)}).encode()
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    done = json.loads(data)
    assert "error" not in done, done
    assert done["uid"] == uid != os.geteuid()
    return done["result"]


def llama_body(prefix: str) -> dict[str, Any]:
    return {"id_slot": 0, "input_prefix": prefix, "prompt": "", "input_suffix": BELOW, "n_predict": 8, "temperature": 0}


@pytest.mark.skipif(os.geteuid() != 0, reason="running a client as another user needs root (CI runs as root)")
def test_another_local_user_is_answered_without_context_or_cache_figures(server: Server, repo: Path) -> None:
    other = stranger_uid()
    native = json.dumps(infill_body(str(repo / "pkg" / "app.py"))).encode()
    secret = "API_TOKEN = 'q7-hunter2-zebra'\n" + ABOVE
    guess = "API_TOKEN = 'q7-hunter2-" + "x" * 40 + "\n" + ABOVE

    def as_stranger() -> dict[str, Any]:
        answers = {"guess": post(server.port, "/infill", json.dumps(llama_body(guess)).encode(), JSON)}
        answers["native"] = post(server.port, "/infill", native, JSON)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.request("GET", "/health")
        answers["health"] = (200, json.loads(connection.getresponse().read()))
        return answers

    # The server's own user: context from the repository, and its own cache figures.
    status, own = server.post("/infill", infill_body(str(repo / "pkg" / "app.py")))
    assert status == 200 and [s["path"] for s in own["context"]] == ["pkg/config.py"], own
    assert server.post("/infill", llama_body(secret))[0] == 200
    status, own_guess = server.post("/infill", llama_body(guess))
    assert status == 200 and own_guess["tokens_cached"] > 5 and own_guess["timings"]["prompt_n"] > 0
    assert server.post("/infill", llama_body(secret))[0] == 200  # the cache holds the secret again

    answers = as_uid(other, as_stranger)
    status, native_answer = answers["native"]
    assert status == 200 and native_answer["completion"] == own["completion"]  # it reached the server and was answered
    assert native_answer["context"] == [] and any("server's own user" in note for note in native_answer["notes"])
    status, guessed = answers["guess"]
    assert status == 200 and guessed["content"] == own_guess["content"]
    assert guessed["tokens_cached"] == 0 and guessed["timings"]["prompt_ms"] == 0
    assert guessed["timings"]["prompt_n"] == guessed["tokens_evaluated"]
    health = answers["health"][1]
    assert health["status"] == "ok" and "cache" not in health and all("cache" not in m for m in health["models"])
    own_health = server.request("GET", "/health")[1]
    assert own_health["cache"]["requests"] > 0 and own_health["models"][0]["cache"] is not None


def test_neither_root_nor_a_home_directory_is_ever_a_root(server: Server, repo: Path) -> None:
    home_file = Path.home() / "lc_trust_probe.py"  # a buffer in the home directory (the file need not exist)
    for body in (infill_body("/lc_trust_probe.py"), infill_body(str(home_file))):
        status, answer = server.post("/infill", body)
        assert status == 200 and answer["context"] == [], (body, answer)
        assert any("file system's root" in n or "home directory" in n for n in answer["notes"]), answer["notes"]
    # A workspace folder that may not be searched gives way to the file's own repository (paths relative to it).
    for root in ("/", str(Path.home()), str(repo)):
        status, answer = server.post("/infill", infill_body(str(repo / "pkg" / "app.py"), context_root=root))
        assert status == 200 and [s["path"] for s in answer["context"]] == ["pkg/config.py"], (root, answer)


def test_repo_root_limits_context_to_the_folders_named(model: Path, repo: Path, tmp_path_factory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    with running_server("--model", str(model), "--repo-root", str(repo), "--quiet") as running:
        status, inside = running.post("/infill", infill_body(str(repo / "pkg" / "app.py")))
        assert status == 200 and [s["path"] for s in inside["context"]] == ["pkg/config.py"], inside
        for name, text in REPO.items():
            (elsewhere / name).parent.mkdir(parents=True, exist_ok=True)
            (elsewhere / name).write_text(text)
        status, outside = running.post("/infill", infill_body(str(elsewhere / "pkg" / "app.py")))
        assert status == 200 and outside["context"] == [] and any("--repo-root" in n for n in outside["notes"])


def test_an_api_key_is_required_beyond_loopback_and_checked() -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "localcoder", "serve", "--host", "0.0.0.0", "--port", "0", "--no-preload"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and "--api-key" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    with running_server("--host", "0.0.0.0", "--no-preload", env={"LOCALCODER_API_KEY": "s3cret-key"}) as server:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer "}, {"X-Api-Key": "s3cret"}):
            status, body = server.request("GET", "/v1/models", headers=headers)
            assert status == 401 and "API key" in body["error"]["message"], (headers, body)
        for headers in ({"Authorization": "Bearer s3cret-key"}, {"authorization": "bearer s3cret-key"},
                        {"X-Api-Key": "s3cret-key"}):  # fmt: skip
            status, body = server.request("GET", "/v1/models", headers=headers)
            assert status == 200 and body["object"] == "list", (headers, body)
        status, body = server.request("GET", "/api/tags", headers={})
        assert status == 401 and isinstance(body["error"], str)
    with running_server("--host", "0.0.0.0", "--no-preload", "--no-auth") as open_server:
        assert open_server.request("GET", "/v1/models")[0] == 200
        assert any("anyone who can reach this address" in line for line in open_server.log)


class FakeServer(BaseHTTPRequestHandler):
    """Something else on the port: it answers /health as serve does, and notes every buffer it is sent."""

    received: list[bytes] = []

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        data = json.dumps({"status": "ok", "owner_proof": "0" * 64} if self.path == "/health" else {"data": []})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data.encode())

    def do_POST(self) -> None:
        FakeServer.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_a_found_server_that_cannot_prove_it_is_ours_is_not_sent_the_buffer(
    server: Server, model: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALCODER_MODEL", str(model))
    request = CompletionRequest.build(read_source_bytes(USES.encode(), name=str(repo / "pkg" / "app.py")), 3)
    notes: list[str] = []
    real = open_completer(LoadOptions(), (server.url, False), notes.append)  # the user's own serve is used
    assert isinstance(real, ServedCompleter) and notes == []
    served = real.complete(request, None)
    assert [s["path"] for s in served["context"]] == ["pkg/config.py"]  # the token made it the owner's request
    fake = ThreadingHTTPServer(("127.0.0.1", 0), FakeServer)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    try:
        completer = open_completer(LoadOptions(), (f"http://127.0.0.1:{fake.server_address[1]}", False), notes.append)
        assert isinstance(completer, LoadedCompleter) and "could not show that you started it" in notes[0], notes
        assert completer.complete(request, None)["completion"] == served["completion"]  # completed here instead
        assert FakeServer.received == []
    finally:
        fake.shutdown()
        fake.server_close()
    assert real.token is not None  # what the real one proved: the user's token, which it then sent


# -- superseding tells editors apart ---------------------------------------------------------------------------

DOC_A = "import os\n\n\ndef parse_header(line):\n    key, value = line.split(':')\n    return key.strip()\n\n\n"
DOC_B = "class Ledger:\n    def __init__(self):\n        self.entries = []\n\n    def add(self, amount):\n"


@pytest.fixture(scope="module")
def endless(tmp_path_factory: pytest.TempPathFactory):
    """A model that never ends a completion by itself: a request runs to its n_predict unless stopped."""
    model = bigram_model(tmp_path_factory.mktemp("endless"), "x = 1", end=GARBAGE)
    with running_server("--model", str(model), "--ctx", "2048", "--keep-alive", "-1") as running:
        yield running


def editor_body(prefix: str, tokens: int, **extra: Any) -> dict[str, Any]:
    """llama.vim's request: id_slot 0 from every editor."""
    return {"id_slot": 0, "input_prefix": prefix, "prompt": "", "input_suffix": "\n\nprint(1)\n",
            "n_predict": tokens, "temperature": 0, **extra}  # fmt: skip


def test_editors_on_slot_0_do_not_cancel_each_other_but_the_same_editor_does(endless: Server) -> None:
    # Two editors, two documents, both id_slot 0 from 127.0.0.1: both answered in full.
    first, received = open_stream(endless, "/infill", editor_body(DOC_A, 24))
    status, other = endless.post("/infill", editor_body(DOC_B, 8))
    assert status == 200 and other["tokens_predicted"] == 8
    final = read_to_end(first, received)[-1]
    assert not final.get("superseded") and final["tokens_predicted"] == 24, final
    # A warm-up (n_predict 0, llama.vim's on moving around) does not empty the completion in flight.
    first, received = open_stream(endless, "/infill", editor_body(DOC_A, 24))
    warm = {**editor_body("", 0), "input_suffix": "", "input_extra": [{"text": DOC_B, "filename": "b.py"}]}
    assert endless.post("/infill", warm)[0] == 200
    final = read_to_end(first, received)[-1]
    assert not final.get("superseded") and final["tokens_predicted"] == 24, final
    # The same editor typing on in the same document still stops its older request (control).
    first, received = open_stream(endless, "/infill", editor_body(DOC_A, 1024))
    status, newer = endless.post("/infill", editor_body(DOC_A + "    zz", 8))
    assert status == 200 and newer["tokens_predicted"] == 8
    final = read_to_end(first, received)[-1]
    assert final.get("superseded") is True, final
    assert endless.request("GET", "/health")[1]["cache"]["superseded"] == 1


def test_callers_that_cannot_be_told_apart_never_see_cache_figures() -> None:
    """Off Linux no uid is known: every loopback client is "127.0.0.1", so none of them may see the figures
    (control: a caller with a uid sees its own, and loses them once another's prompt is in the cache)."""
    from types import SimpleNamespace

    from localcoder.server.owner import caller
    from localcoder.server.service import Service

    service, model = Service(), SimpleNamespace(path=Path("m.gguf"))
    unknown = caller(("127.0.0.1", 40000), lambda: None, None, "t" * 64)
    mine = caller(("127.0.0.1", 40001), lambda: os.geteuid(), None, None)
    theirs = caller(("127.0.0.1", 40002), lambda: os.geteuid() + 1, None, None)
    assert mine.owner and not theirs.owner and not unknown.owner and unknown.cache_key is None
    assert service.wrote(model, 0, mine.cache_key) and service.wrote(model, 0, mine.cache_key)  # its own prompts
    assert not service.wrote(model, 0, unknown.cache_key)
    assert not service.wrote(model, 0, mine.cache_key)  # the slot held an unknown caller's prompt
    assert service.wrote(model, 0, mine.cache_key)  # its own again
    assert not service.wrote(model, 1, theirs.cache_key)  # another user's request: slot 0 is still mine
