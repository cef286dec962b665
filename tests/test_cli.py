"""The commands as a user runs them: inspect, verify, convert from the Hub cache, demo, --help."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convert.pipeline import ConvertOptions, convert
from tests.helpers import assert_one_line_error, run_cli

pytest.importorskip("torch")


def test_inspect_json_shows_what_later_stages_need(tiny_f32_gguf: Path) -> None:
    result = run_cli("inspect", str(tiny_f32_gguf), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    meta = summary["metadata"]
    assert summary["family"] == "codegen2.5"
    assert summary["prompt_format"] == "codegen-infill"
    assert summary["context_length"] == 2048
    assert summary["file_type"] == "ALL_F32"
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    assert meta["tokenizer.ggml.bos_token_id"] == meta["tokenizer.ggml.eos_token_id"] == 50256
    assert meta["tokenizer.ggml.eom_token_id"] == 50318
    assert meta["tokenizer.ggml.add_bos_token"] is False
    assert "tokenizer.ggml.padding_token_id" not in meta  # config's pad 0 is "!", not padding
    assert meta["tokenizer.ggml.merges"]["length"] == 50038
    assert meta["tokenizer.ggml.tokens"]["length"] == 51200
    assert summary["tensor_count"] == 2 * 9 + 3  # rotary buffers skipped
    assert not any("rotary" in t["name"] for t in summary["tensors"])


def test_inspect_text(tiny_f32_gguf: Path) -> None:
    result = run_cli("inspect", str(tiny_f32_gguf))
    assert result.returncode == 0, result.stderr
    for needle in (
        "codegen2.5",
        "codegen-infill",
        "token_embd.weight",
        "blk.0.attn_q.weight",
        "tokenizer.ggml.eom_token_id",
    ):
        assert needle in result.stdout


def test_inspect_bad_files(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("inspect", str(tmp_path / "missing.gguf")), "no such file")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all" * 10)
    assert_one_line_error(run_cli("inspect", str(junk)), "not a valid GGUF")


def test_verify_passes_on_an_exact_conversion(tiny_f32_gguf: Path, tiny_checkpoint: Path) -> None:
    result = run_cli("verify", str(tiny_f32_gguf), str(tiny_checkpoint), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["tokenizer"]["equal"] == report["tokenizer"]["strings"] >= 1000
    assert report["logits"]["max_abs_diff"] <= 1e-4 and report["logits"]["decisive_argmax_equal"]


def test_verify_catches_a_tokenizer_without_the_whitespace_merges(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 38 extra merges are what make code tokenize like CodeGen2.5 (docs/codegen-facts.md)."""
    from ggufkit.vocab import codegen25

    table = codegen25.gguf_vocab()
    broken = type(table)(tokens=table.tokens, token_types=table.token_types, merges=table.merges[:50000])
    monkeypatch.setattr(codegen25, "gguf_vocab", lambda: broken)
    out = convert(ConvertOptions(source=str(tiny_checkpoint), output=tmp_path / "broken.gguf")).output
    result = run_cli("verify", str(out))
    assert_one_line_error(result, "parity check failed")
    assert "FAIL" in result.stdout


def test_verify_catches_logits_without_the_rotary_interleave(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The logit check's negative control: a GGUF missing the Q/K reordering fails it."""
    from convert.architectures import codegen25 as codegen25_arch

    monkeypatch.setattr(codegen25_arch, "interleave_rotary_halves", lambda weight, n_heads: weight)
    out = convert(ConvertOptions(source=str(tiny_checkpoint), output=tmp_path / "wrong.gguf", outtype="f32")).output
    result = run_cli("verify", str(out), str(tiny_checkpoint), "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["tokenizer"]["equal"] == report["tokenizer"]["strings"]
    assert report["logits"]["max_abs_diff"] > report["logits"]["tolerance"] and report["ok"] is False


def test_convert_with_verify_flag(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = run_cli(
        "convert", str(tiny_checkpoint), "-o", str(tmp_path / "m.gguf"), "--outtype", "f32", "--verify", "--json"
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["result"]["tensors"] == 21
    assert payload["verify"]["ok"] is True
    assert "converting" in result.stderr  # progress went to stderr, not into the JSON


def _fake_hub_cache(hf_home: Path, repo_id: str, checkpoint: Path) -> str:
    """Lay a checkpoint out as huggingface-hub's cache holds a downloaded snapshot."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    shutil.copytree(checkpoint, repo_dir / "snapshots" / commit)
    return commit


def test_convert_from_the_hub_cache_when_offline(tiny_checkpoint: Path, tmp_path: Path) -> None:
    hf_home = Path(os.environ["HF_HOME"])
    commit = _fake_hub_cache(hf_home, "Salesforce/codegen25-tiny_P", tiny_checkpoint)
    result = run_cli("convert", "Salesforce/codegen25-tiny_P", "--json")
    assert result.returncode == 0, result.stderr
    output = Path(json.loads(result.stdout)["result"]["output"])
    assert output.parent == Path(os.environ["LOCALCODER_HOME"]) / "models"
    assert output.name == "codegen25-tiny_P.F16.gguf"
    meta = json.loads(run_cli("inspect", str(output), "--json").stdout)["metadata"]
    assert meta["localcoder.source.repo_id"] == "Salesforce/codegen25-tiny_P"
    assert meta["localcoder.source.revision"] == commit


def test_hub_repo_not_cached_while_offline(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("convert", "Salesforce/codegen25-7b-mono_P"), "not in the local Hugging Face cache")


def test_every_command_has_help_with_examples() -> None:
    for command in ("complete", "chat", "models", "convert", "inspect", "verify", "demo"):
        result = run_cli(command, "--help")
        assert result.returncode == 0
        assert "Examples" in result.stdout, command


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "localcoder", "demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "random" in result.stderr and "random" in result.stdout
    assert (tmp_path / "codegen25-tiny-random.F16.gguf").exists()
    assert (tmp_path / "codegen25-tiny-random.Q4_K_M.gguf").exists()
    assert "Q4_K" in result.stdout
    assert "completion at line 3" in result.stdout
    assert "# read numbers from a file called data.txt" in result.stdout and "# print their mean" in result.stdout
