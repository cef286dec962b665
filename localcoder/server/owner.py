"""Who a request to `localcoder serve` comes from: the server's own user, or anyone else.

Loopback is not one user: every local account, and every web page the user opens, can reach 127.0.0.1:8788. Two
things on the server belong to its user alone: repository context (the server reads the user's files around the
path a POST /infill names) and the prompt cache's figures (how many of a prompt's tokens were cached tells whether
its start equals what another client sent last: a prefix oracle that recovered a 13-character secret in 4,608
requests). So every request gets a Caller: an identity, and whether it is the owner.

Weighed, for telling the owner apart:

- The peer's uid of a loopback TCP connection (Linux: the kernel's socket diagnostics name the client socket's
  owner, server/peer.py). Works for every client with no set-up, llama.vim included, for one netlink round trip
  a connection. Linux only; elsewhere it says nothing.
- A token file in the user's runtime directory (0600 in a 0700 folder: platformdirs' user_runtime_dir, or
  LOCALCODER_RUNTIME_DIR), that localcoder's own clients send as X-Localcoder-Token. Works on every platform, and
  the same secret lets a client check that the server it found is its user's (owner_proof below), which the uid
  cannot do from the client's side.

Chosen: both, each where it answers. A request is the owner's when it carries the token, or when its loopback
peer runs as the server's uid. Its identity (what superseding and the cache figures tell apart) is the uid: the
server's own for the token (no lookup), the peer's where Linux says it, else the peer's address; a loopback
address without a uid may be anyone's, so such a caller never sees cache figures (server/service.py).

Roots: context only for roots the user works in. A root is where the context stage would search (the language
server's workspace folder the request names as `context_root`, else the file's repository); never `/`, a home
directory or a folder above one (`path=/x.py` made `/` the root and reached every `.py` on the machine), and with
`serve --repo-root DIR` only roots inside those folders.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import pwd
import secrets
import stat
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TOKEN_HEADER = "X-Localcoder-Token"
NONCE_HEADER = "X-Localcoder-Nonce"
TOKEN_FILE = "serve.token"
MAX_NONCE = 128


@dataclass(frozen=True)
class Caller:
    identity: str  # "uid:1000", or "addr:10.0.0.7" where no uid is known
    owner: bool
    shared: bool = False  # the identity may stand for several users (loopback, no uid known: not Linux)

    @property
    def cache_key(self) -> str | None:
        """Whose prompts these are, for the cache figures (server/service.py); None: it cannot be told, and the
        figures are never shown."""
        return None if self.shared else self.identity


def runtime_dir() -> Path | None:
    """LOCALCODER_RUNTIME_DIR, else the platform's per-user runtime folder (platformdirs makes a /tmp fallback
    the user's own, 0700, and refuses one someone else made first: then None)."""
    explicit = os.environ.get("LOCALCODER_RUNTIME_DIR")
    if explicit:
        return Path(explicit)
    import platformdirs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "XDG_RUNTIME_DIR is not set, falling back to /tmp/runtime-<uid>"
        try:
            return Path(platformdirs.user_runtime_dir("localcoder", appauthor=False, ensure_exists=True))
        except OSError:
            return None


def _private(path: Path, kind: int) -> bool:
    """`path` is a `kind` (S_ISDIR/S_ISREG test), not a link, owned by this user, and nobody else may touch it."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return bool(kind(info.st_mode)) and info.st_uid == os.geteuid() and info.st_mode & 0o077 == 0


def read_token(folder: Path | None = None) -> str | None:
    """The user's serve token, when its file is private (else None: someone else could have written or read it)."""
    folder = folder or runtime_dir()
    if folder is None:
        return None
    path = folder / TOKEN_FILE
    if not (_private(folder, stat.S_ISDIR) and _private(path, stat.S_ISREG)):
        return None
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token if len(token) == 64 else None


def ensure_token(folder: Path | None = None) -> str | None:
    """The user's serve token, made on first use (0600 in a 0700 folder); None when no private place exists."""
    folder = folder or runtime_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and info.st_mode & 0o077:
            folder.chmod(0o700)  # our own folder, made with the default mode by something else
    except OSError:
        return None
    token = read_token(folder)
    if token is not None or not _private(folder, stat.S_ISDIR):
        return token
    fresh = secrets.token_hex(32)
    try:
        descriptor = os.open(folder / TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return read_token(folder)  # another serve made it a moment ago
    except OSError:
        return None
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(fresh)
    return fresh


def owner_proof(token: str, nonce: str, endpoint: tuple[str, int]) -> str:
    """What the server answers a client's nonce with: bound to the address and port the client reached, so a
    stranger's server on 127.0.0.1:8788 cannot pass on the answer of the user's own server elsewhere."""
    message = f"localcoder-serve:{endpoint[0]}:{endpoint[1]}:{nonce}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; nothing matches a missing secret."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


def caller(
    peer: tuple[str, int], uid: Callable[[], int | None], token: str | None, expected_token: str | None
) -> Caller:
    """Who sent a request from `peer`; `uid()` finds the peer's uid (asked only without a valid token)."""
    if same_secret(token, expected_token):  # the server's own user: nothing to look up
        return Caller(f"uid:{os.geteuid()}", True)
    found = uid()
    if found is not None:
        return Caller(f"uid:{found}", found == os.geteuid())
    try:
        shared = ipaddress.ip_address(peer[0].split("%", 1)[0]).is_loopback
    except ValueError:
        shared = True
    return Caller(f"addr:{peer[0]}", False, shared)


# -- roots -----------------------------------------------------------------------------------------------------


def _homes() -> set[Path]:
    """This user's home, and the homes of people's accounts (uid 0 and 1000 on) on this machine."""
    homes = {Path.home()}
    try:
        homes |= {Path(entry.pw_dir) for entry in pwd.getpwall() if entry.pw_uid == 0 or entry.pw_uid >= 1000}
    except OSError:
        pass
    resolved = set()
    for home in homes:
        try:
            real = Path(os.path.realpath(home))
        except (OSError, ValueError):
            continue
        if real != Path(real.anchor) and real.is_dir():  # some systems give nobody "/" as its home
            resolved.add(real)
    return resolved


def root_refusal(root: Path, allowed: tuple[Path, ...] = ()) -> str | None:
    """Why the context stage may not search `root` for a request, or None when it may."""
    real = Path(os.path.realpath(root))
    if real == Path(real.anchor):
        return f"{root} is the file system's root"
    for home in _homes():
        if real == home or real in home.parents:
            return f"{root} is a home directory or holds one"
    if allowed and not any(real == Path(os.path.realpath(a)) or Path(os.path.realpath(a)) in real.parents
                           for a in allowed):  # fmt: skip
        return f"{root} is outside serve --repo-root"
    return None
