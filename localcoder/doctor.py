"""`localcoder doctor`: what this machine's llama.cpp can do, where models live, whether a server answers."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcoder import __version__, paths
from localcoder.errors import LocalcoderError


@dataclass
class Check:
    name: str
    value: str
    ok: bool = True
    hint: str = ""


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [check.__dict__ for check in self.checks]}


def _backends(system_info: str) -> list[str]:
    known = ("CUDA", "METAL", "VULKAN", "HIP", "SYCL")
    return [name for name in known if f"{name} = 1" in system_info or f"{name} :" in system_info]


def diagnose(server: str | None) -> DoctorReport:
    """Every check runs even when an earlier one fails: the report is what a bug report needs."""
    report = DoctorReport()
    add = report.checks.append
    add(Check("localcoder", __version__))
    add(Check("python", f"{platform.python_version()} ({sys.executable})"))
    add(Check("platform", f"{platform.system()} {platform.release()} {platform.machine()}"))
    try:
        import llama_cpp

        info = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
        offload = bool(llama_cpp.llama_supports_gpu_offload())
        add(Check("llama-cpp-python", llama_cpp.__version__))
        add(Check("llama.cpp features", info.replace(" | ", ", ").rstrip(" |,")))
        backends = ", ".join(_backends(info)) or "CPU only"
        hint = (
            "" if offload else 'for a GPU, reinstall with CMAKE_ARGS="-DGGML_CUDA=on" (Metal is on by default on macOS)'
        )
        add(Check("GPU offload", f"{'available' if offload else 'not built in'} ({backends})", True, hint))
    except (ImportError, OSError, AttributeError) as exc:
        add(Check("llama-cpp-python", f"not usable: {exc}", False, "reinstall with `make demo` or `pip install -e .`"))
    cores = os.cpu_count() or 1
    add(Check("threads", f"{max(cores // 2, 1)} by default ({cores} logical CPUs); set with --threads"))
    add(Check("home", str(paths.home())))
    directory = paths.models_dir()
    models = sorted(directory.glob("*.gguf")) if directory.is_dir() else []
    add(Check("model directory", f"{directory} ({len(models)} GGUF)", True, "" if models else "try `localcoder demo`"))
    try:
        from localcoder.runtime import resolve_model

        add(Check("default model", str(resolve_model(None))))
    except LocalcoderError as exc:
        add(Check("default model", "none", True, str(exc)))
    add(_sandbox_check())
    if server is None:
        add(Check("server", "not looked for (LOCALCODER_SERVER=off)"))
    else:
        from localcoder.server.client import health

        answer = health(server)
        if answer is None:
            add(Check("server", f"none at {server}", True, "start one with `localcoder serve`"))
        else:
            loaded = [Path(m["model"]).name for m in answer.get("models", []) if m.get("loaded")]
            rate = answer.get("cache", {}).get("hit_rate", 0.0)
            detail = f"{server}: localcoder {answer.get('version')}, loaded: {', '.join(loaded) or 'none'}"
            add(Check("server", f"{detail}, prompt-cache hit rate {rate:.0%}"))
    return report


def _sandbox_check() -> Check:
    """Which OS sandbox `/run` and `eval` use; without one they refuse (unless --unsafe-no-sandbox)."""
    from localcoder import sandbox

    found = sandbox.status()
    if found.available:
        return Check("sandbox", f"{found.kind}: {found.detail}")
    hint = f"{found.hint}; until then /run and eval refuse to run generated code (or pass --unsafe-no-sandbox)"
    return Check("sandbox", f"none: {found.detail}", False, hint)
