"""A stand-in Hugging Face Hub on a loopback port: the real huggingface_hub client downloads from it.

It serves one checkpoint directory as the repo `REPO_ID` at one commit, through the endpoints
`snapshot_download` uses: the revision's info, its file tree, and each file's `resolve` URL (HEAD and GET,
with Range so an interrupted download can resume). `cuts` maps a file name to how many of its GETs send
only half of what was asked for and drop the connection, as a network failure midway would; every
request is logged.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO_ID = "Salesforce/codegen25-tiny_P"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Hub:
    directory: Path
    cuts: dict[str, int] = field(default_factory=dict)
    log: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range header)
    url: str = ""

    def files(self) -> dict[str, Path]:
        return {p.relative_to(self.directory).as_posix(): p for p in sorted(self.directory.rglob("*")) if p.is_file()}

    def gets(self, name: str) -> list[str | None]:
        """The Range header of every GET of the file `name` (None: the whole file)."""
        return [rng for method, path, rng in self.log if method == "GET" and path.endswith(f"/resolve/{COMMIT}/{name}")]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    owner, name = REPO_ID.split("/")
    api = re.compile(rf"^/api/models/{owner}/{name}/(revision|tree)/([^/]+)(/.*)?$")
    resolve = re.compile(rf"^/{owner}/{name}/resolve/([^/]+)/(.+)$")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _json(self, body: object, status: int = 200, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _missing(self) -> None:
            self._json({"error": "Repository not found"}, 404, {"X-Error-Code": "RepoNotFound"})

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.log.append((self.command, path, self.headers.get("Range")))
            if match := api.match(path):
                kind, revision = match[1], match[2]
                if revision not in ("main", COMMIT):
                    self._json({"error": "Revision not found"}, 404, {"X-Error-Code": "RevisionNotFound"})
                elif kind == "revision":
                    siblings = [{"rfilename": f} for f in hub.files()]
                    self._json({"id": REPO_ID, "sha": COMMIT, "siblings": siblings, "private": False})
                else:
                    self._json([self._entry(f, p) for f, p in hub.files().items()])
            elif match := resolve.match(path):
                self._file(match[2], body)
            else:
                self._missing()

        @staticmethod
        def _entry(name: str, path: Path) -> dict[str, object]:
            size = path.stat().st_size
            entry: dict[str, object] = {"type": "file", "path": name, "size": size, "oid": _sha256(path)[:40]}
            if path.suffix in (".bin", ".safetensors"):
                entry["lfs"] = {"oid": _sha256(path), "size": size, "pointerSize": 134}
            return entry

        def _file(self, name: str, body: bool) -> None:
            path = hub.files().get(name)
            if path is None:
                self._json({"error": "Entry not found"}, 404, {"X-Error-Code": "EntryNotFound"})
                return
            data = path.read_bytes()
            start = 0
            if (wanted := self.headers.get("Range")) and (match := re.match(r"bytes=(\d+)-", wanted)):
                start = int(match[1])
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{_sha256(path)}"')
            self.send_header("X-Repo-Commit", COMMIT)
            if path.suffix in (".bin", ".safetensors"):
                self.send_header("X-Linked-Etag", f'"{_sha256(path)}"')
                self.send_header("X-Linked-Size", str(len(data)))
            self.end_headers()
            if not body:
                return
            if hub.cuts.get(name, 0) > 0:
                hub.cuts[name] -= 1
                self.wfile.write(data[start : start + (len(data) - start) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(data[start:])

    return Handler


@contextmanager
def running_hub(directory: Path, cuts: dict[str, int] | None = None) -> Iterator[Hub]:
    hub = Hub(directory, dict(cuts or {}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
