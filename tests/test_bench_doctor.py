"""`localcoder bench` and `localcoder doctor` on a tiny converted model, through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import localcoder
from tests.server_run import running_server

pytest.importorskip("llama_cpp")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return localcoder(*args, env=env, timeout=600)


def test_bench_measures_every_scenario_and_hot_reads_only_the_edit(tiny_f32_gguf: Path) -> None:
    done = cli("bench", "--model", str(tiny_f32_gguf), "--new-tokens", "4,8", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = {(row["scenario"], row["new_tokens"]): row for row in report["rows"]}
    assert set(rows) == {(s, n) for s in ("cold", "warm", "hot-type", "hot-enter") for n in (4, 8)}
    for count in (4, 8):
        assert rows[("cold", count)]["prompt_tokens"] > 1500  # about 2,000 tokens of context
        assert rows[("warm", count)]["evaluated_tokens"] == rows[("warm", count)]["prompt_tokens"]
        assert 0 < rows[("hot-type", count)]["evaluated_tokens"] <= 4
        assert 0 < rows[("hot-enter", count)]["evaluated_tokens"] <= 6
        assert report["cold_over_hot_type"][str(count)] > 1
    table = cli("bench", "--model", str(tiny_f32_gguf), "--new-tokens", "4", "--no-cold")
    assert table.returncode == 0 and "hot-type" in table.stdout and "cold" not in table.stdout.split("\n", 3)[-1]


def test_bench_rejects_bad_lengths() -> None:
    done = cli("bench", "--new-tokens", "16,x")
    assert done.returncode == 1 and "--new-tokens" in done.stderr and "Traceback" not in done.stderr


def test_doctor_reports_the_build_the_models_and_a_server(tiny_f32_gguf: Path, os_sandbox) -> None:
    done = cli("doctor", "--json")
    assert done.returncode == 0, done.stderr
    checks = {check["name"]: check for check in json.loads(done.stdout)["checks"]}
    assert checks["sandbox"]["ok"] and checks["sandbox"]["value"].startswith(f"{os_sandbox.kind}: ")
    assert checks["GPU offload"]["value"].startswith(("available", "not built in"))
    assert "none at" in checks["server"]["value"] or "not looked for" in checks["server"]["value"]
    with running_server("--model", str(tiny_f32_gguf)) as server:
        done = cli("doctor", "--json", "--server", server.url)
    checks = {check["name"]: check for check in json.loads(done.stdout)["checks"]}
    assert tiny_f32_gguf.name in checks["server"]["value"] and "hit rate" in checks["server"]["value"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bwrap is the Linux sandbox")
def test_doctor_says_when_there_is_no_sandbox_and_what_to_install(tmp_path: Path) -> None:
    done = cli("doctor", "--json", env={"PATH": str(tmp_path)})  # no bwrap on it
    assert done.returncode == 1  # a failed check
    sandbox = {check["name"]: check for check in json.loads(done.stdout)["checks"]}["sandbox"]
    assert not sandbox["ok"] and "bwrap is not installed" in sandbox["value"] and "bubblewrap" in sandbox["hint"]
    text = cli("doctor", env={"PATH": str(tmp_path)})
    assert "bwrap is not installed" in text.stdout and "--unsafe-no-sandbox" in text.stdout
