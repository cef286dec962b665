"""Where a checkpoint comes from: a local directory or a Hugging Face repo id.

Repo ids are resolved with huggingface-hub, which honours HF_HOME and
HF_HUB_OFFLINE: the local cache when offline, a download (with its progress
bars on stderr) when online. Only the files the converter reads are fetched:
configs, weights, tokenizer files and a CodeGen2 repo's modeling_*.py, which
is read as text for its mp_num and never imported or run
(tokenization_codegen25.py is not fetched at all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from convert.errors import ConvertError

# What the converter reads from a repo; everything else (README, *.py) stays behind.
HUB_FILE_PATTERNS = ["*.json", "*.bin", "*.safetensors", "merges.txt", "modeling_*.py"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ResolvedSource:
    directory: Path
    repo_id: str | None = None
    revision: str | None = None


def resolve_source(source: str, revision: str | None = None) -> ResolvedSource:
    """Turn the user's SOURCE argument into a local checkpoint directory."""
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConvertError(f"{source} is a file; pass the checkpoint directory that holds config.json")
        return ResolvedSource(directory=path.resolve())
    if not _REPO_ID.match(source):
        raise ConvertError(f"{source}: no such directory, and not a Hugging Face repo id (owner/name)")
    return _resolve_hub(source, revision)


def _resolve_hub(repo_id: str, revision: str | None) -> ResolvedSource:
    import huggingface_hub
    from huggingface_hub import errors as hub_errors

    try:
        local = huggingface_hub.snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILE_PATTERNS)
    except hub_errors.LocalEntryNotFoundError:
        raise ConvertError(
            f"{repo_id} is not in the local Hugging Face cache and the Hub cannot be reached"
            " (offline or HF_HUB_OFFLINE=1); download it once online, or pass a local directory"
        ) from None
    except hub_errors.RepositoryNotFoundError:
        raise ConvertError(
            f"{repo_id}: no such repo on the Hugging Face Hub (or it needs a login: hf auth login)"
        ) from None
    except hub_errors.RevisionNotFoundError:
        raise ConvertError(f"{repo_id}: no revision {revision!r}") from None
    except (hub_errors.HfHubHTTPError, OSError, *_transport_errors()) as exc:  # a connection lost midway too
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConvertError(f"could not fetch {repo_id}: {first_line}") from None
    directory = Path(local)
    return ResolvedSource(directory=directory, repo_id=repo_id, revision=revision or _snapshot_commit(directory))


def _transport_errors() -> tuple[type[Exception], ...]:
    """The HTTP client's own errors (huggingface-hub 2 uses httpx2, earlier versions httpx, older requests)."""
    found: list[type[Exception]] = []
    for module, name in (("httpx2", "HTTPError"), ("httpx", "HTTPError"), ("requests", "RequestException")):
        try:
            found.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _snapshot_commit(directory: Path) -> str | None:
    """The commit hash of a hub cache snapshot directory (its own name), if it is one."""
    name = directory.name
    return name if re.fullmatch(r"[0-9a-f]{40}", name) else None
