"""What `localcoder serve` answers at all: the gate every request passes before its route runs.

The server is its user's tool, not a web service, yet a web page the user opens can send it requests: a form or a
fetch() with a text/plain body needs no CORS preflight, and after DNS rebinding (a page's own name re-pointed at
127.0.0.1) the page can even read the answers. Ollama closed that by checking Host; this gate does the same and
more, each refusal one line in the route's own error shape:

- Host (403): a loopback name (localhost, 127.0.0.0/8, ::1) or the address serve listens on. Rebinding always
  arrives under the attacker's own name. A server on 0.0.0.0 or :: also takes any IP literal and the machine's own
  name (a literal cannot be rebound); one that clients reach by another name listens with `--host NAME`.
- Origin (403): absent (editors, curl and the Python clients send none) or this very server. Browsers send Origin
  on every cross-origin request and every POST, so a page elsewhere, `null` included, is refused.
- API key (401): with `serve --api-key KEY`, `Authorization: Bearer KEY` (llama-server's and llama.vim's
  api_key, the openai and ollama clients' api_key / OLLAMA_API_KEY) or `X-Api-Key: KEY`, compared in constant
  time; without a key the header is ignored (llama.vim sends "Bearer " with an empty key).
- Content-Type (415): a POST with a body says application/json. text/plain, form encodings and no type at all are
  what a page can send without a preflight; every editor plugin and client library sends application/json
  (curl needs `-H 'Content-Type: application/json'` or `--json`).

Listening beyond loopback needs an API key (`check_listen`), unless the user says `--no-auth` in so many words.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from localcoder.errors import LocalcoderError
from localcoder.server.owner import same_secret

LOOPBACK_NAMES = ("localhost",)
JSON_TYPE = "application/json"
WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


def is_loopback(host: str) -> bool:
    """A loopback name or address (no brackets, no port)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(host: str, api_key: str | None, no_auth: bool) -> None:
    """A one-line LocalcoderError when serve would listen beyond loopback with nobody asked for a key."""
    if is_loopback(host) or api_key or no_auth:
        return
    raise LocalcoderError(
        f"--host {host} serves everyone who can reach it: add --api-key KEY (clients send Authorization: Bearer KEY),"
        " or --no-auth to serve them without one"
    )


def _host_name(header: str) -> str | None:
    """The name in a Host header ("[::1]:8788" -> "::1"), lower case; None when it is not one."""
    try:
        parts = urlsplit(f"//{header.strip()}")
        parts.port  # noqa: B018 (raises ValueError unless the port is a number in range)
        return parts.hostname  # lower case, brackets gone
    except ValueError:
        return None


def _literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class Gate:
    listen_host: str
    port: int
    api_key: str | None = None
    own_names: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def for_server(cls, listen_host: str, port: int, api_key: str | None) -> Gate:
        names = {listen_host.lower().strip("[]")}
        if listen_host in WILDCARDS:
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        return cls(listen_host, port, api_key or None, frozenset(names))

    def host_allowed(self, name: str) -> bool:
        return is_loopback(name) or name in self.own_names or (self.listen_host in WILDCARDS and _literal(name))

    def refusal(self, method: str, headers: Mapping[str, str]) -> Refusal | None:
        """Why this request is refused before its route runs, or None to answer it."""
        host = headers.get("Host")
        if host is not None:
            name = _host_name(host)
            if name is None or not self.host_allowed(name):
                return Refusal(403, f"Host {host!r} is not this server's name; use http://127.0.0.1:{self.port}")
        origin = headers.get("Origin")
        if origin is not None and not self._own_origin(origin):
            return Refusal(403, f"Origin {origin!r}: web pages may not use this server")
        if self.api_key is not None and not same_secret(_presented_key(headers), self.api_key):
            challenge = (("WWW-Authenticate", "Bearer"),)
            return Refusal(401, "this server needs its API key: Authorization: Bearer KEY", challenge)
        if method == "POST" and _has_body(headers):
            kind = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if kind != JSON_TYPE:
                got = f"got {kind}" if kind else "got none"
                return Refusal(415, f"send the body as Content-Type: application/json ({got})")
        return None

    def _own_origin(self, origin: str) -> bool:
        try:
            parts = urlsplit(origin.strip())
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            return False
        name = parts.hostname
        return parts.scheme in ("http", "https") and name is not None and self.host_allowed(name) and port == self.port


def _presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get("X-Api-Key") or None


def _has_body(headers: Mapping[str, str]) -> bool:
    if headers.get("Transfer-Encoding"):
        return True
    length = headers.get("Content-Length", "0").strip()
    return length.isdigit() and int(length) > 0  # a malformed length is _read_json's 400
