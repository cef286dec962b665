"""Bad input to `localcoder convert`: one line on stderr, a non-zero exit, no partial output."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convert.synthetic import LlamaShape, write_codegen25_checkpoint
from tests.helpers import assert_one_line_error, run_cli

pytest.importorskip("torch")


def assert_no_output(directory: Path) -> None:
    leftovers = [p.name for p in directory.iterdir() if p.suffix == ".gguf" or p.name.startswith(".")]
    assert leftovers == [], leftovers


@pytest.fixture
def checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, copy)
    return copy


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_missing_config(checkpoint: Path, out_dir: Path) -> None:
    (checkpoint / "config.json").unlink()
    assert_one_line_error(run_cli("convert", str(checkpoint), "-o", str(out_dir / "m.gguf")), "config.json")
    assert_no_output(out_dir)


def test_missing_source_directory(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("convert", str(tmp_path / "nope")), "no such directory")


def test_unsupported_architecture_is_named_with_the_supported_ones(checkpoint: Path, out_dir: Path) -> None:
    edit_json(checkpoint / "config.json", architectures=["MistralForCausalLM"])
    assert_one_line_error(
        run_cli("convert", str(checkpoint), "-o", str(out_dir / "m.gguf")), "MistralForCausalLM", "LlamaForCausalLM"
    )
    assert_no_output(out_dir)


def test_llama_with_another_tokenizer_is_refused(checkpoint: Path, out_dir: Path) -> None:
    edit_json(checkpoint / "tokenizer_config.json", tokenizer_class="LlamaTokenizer")
    assert_one_line_error(run_cli("convert", str(checkpoint), "-o", str(out_dir / "m.gguf")), "LlamaTokenizer")


def test_missing_shard(checkpoint: Path, out_dir: Path) -> None:
    (checkpoint / "pytorch_model-00002-of-00003.bin").unlink()
    assert_one_line_error(
        run_cli("convert", str(checkpoint), "-o", str(out_dir / "m.gguf")), "00002-of-00003", "missing"
    )
    assert_no_output(out_dir)


def test_truncated_shard(checkpoint: Path, out_dir: Path) -> None:
    shard = checkpoint / "pytorch_model-00001-of-00003.bin"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    assert_one_line_error(
        run_cli("convert", str(checkpoint), "-o", str(out_dir / "m.gguf")), "00001-of-00003", "truncated"
    )
    assert_no_output(out_dir)


def test_index_naming_an_absent_tensor(checkpoint: Path, out_dir: Path) -> None:
    index = checkpoint / "pytorch_model.bin.index.json"
    data = json.loads(index.read_text())
    data["weight_map"]["model.layers.7.mlp.up_proj.weight"] = "pytorch_model-00001-of-00003.bin"
    index.write_text(json.dumps(data))
    assert_one_line_error(
        run_cli("convert", str(checkpoint), "-o", str(out_dir / "m.gguf")), "model.layers.7.mlp.up_proj.weight"
    )
    assert_no_output(out_dir)


def test_shape_not_matching_config(checkpoint: Path, out_dir: Path) -> None:
    edit_json(checkpoint / "config.json", intermediate_size=256)
    assert_one_line_error(run_cli("convert", str(checkpoint), "-o", str(out_dir / "m.gguf")), "shape", "config.json")
    assert_no_output(out_dir)


def test_vocab_size_other_than_51200(checkpoint: Path, out_dir: Path) -> None:
    edit_json(checkpoint / "config.json", vocab_size=32000)
    assert_one_line_error(
        run_cli("convert", str(checkpoint), "-o", str(out_dir / "m.gguf")), "vocab_size 32000", "51200"
    )


def test_code_carrying_bin_is_refused_and_not_run(checkpoint: Path, out_dir: Path, tmp_path: Path) -> None:
    import pickle
    import zipfile

    marker = tmp_path / "PWNED"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    shard = checkpoint / "pytorch_model-00003-of-00003.bin"
    with zipfile.ZipFile(shard, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"lm_head.weight": Exploit()}, protocol=2))
        archive.writestr("archive/version", "3\n")
    result = run_cli("convert", str(checkpoint), "-o", str(out_dir / "m.gguf"))
    assert_one_line_error(result, "system", "00003-of-00003")
    assert not marker.exists()
    assert_no_output(out_dir)


def test_refuses_to_overwrite_without_force(tiny_checkpoint: Path, out_dir: Path) -> None:
    target = out_dir / "m.gguf"
    target.write_bytes(b"precious")
    assert_one_line_error(run_cli("convert", str(tiny_checkpoint), "-o", str(target)), "--force")
    assert target.read_bytes() == b"precious"
    ok = run_cli("convert", str(tiny_checkpoint), "-o", str(target), "--force")
    assert ok.returncode == 0, ok.stderr
    assert target.read_bytes()[:4] == b"GGUF"


def test_output_directory_under_a_file(tiny_checkpoint: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_one_line_error(run_cli("convert", str(tiny_checkpoint), "-o", str(blocker / "m.gguf")), "output directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through directory permissions")
def test_unwritable_output_directory(tiny_checkpoint: Path, out_dir: Path) -> None:
    out_dir.chmod(0o500)
    try:
        assert_one_line_error(run_cli("convert", str(tiny_checkpoint), "-o", str(out_dir / "m.gguf")), "not writable")
    finally:
        out_dir.chmod(0o700)


def test_read_only_filesystem_output(tiny_checkpoint: Path) -> None:
    """Works as root too: /proc does not take new files."""
    assert_one_line_error(
        run_cli("convert", str(tiny_checkpoint), "-o", "/proc/localcoder-test/m.gguf"), "output directory"
    )


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "small-disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_disk_too_small_is_refused_before_writing(tiny_checkpoint: Path, small_disk: Path) -> None:
    assert_one_line_error(run_cli("convert", str(tiny_checkpoint), "-o", str(small_disk / "m.gguf")), "disk space")
    assert list(small_disk.iterdir()) == []


def test_disk_filling_up_mid_write_leaves_nothing(tiny_checkpoint: Path, out_dir: Path) -> None:
    """The file-size limit makes the write fail part-way, as a full disk does."""

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, 2 << 20))

    result = run_cli("convert", str(tiny_checkpoint), "-o", str(out_dir / "m.gguf"), preexec=limit_file_size)
    assert_one_line_error(result, "disk full")
    assert_no_output(out_dir)


def test_ctrl_c_mid_way_leaves_nothing(tmp_path: Path) -> None:
    checkpoint = write_codegen25_checkpoint(
        tmp_path / "big", LlamaShape(hidden=512, intermediate=1024, layers=4, heads=8)
    )
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "localcoder",
            "convert",
            str(checkpoint),
            "-o",
            str(out_dir / "m.gguf"),
            "--outtype",
            "q8_0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".partial") for p in out_dir.iterdir()):
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.005)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130
    assert "Traceback" not in stderr
    assert "interrupted" in stderr
    assert_no_output(out_dir)


def test_unknown_output_and_quantization_types(tiny_checkpoint: Path, out_dir: Path) -> None:
    assert_one_line_error(
        run_cli("convert", str(tiny_checkpoint), "-o", str(out_dir / "m.gguf"), "-t", "f8"), "f8", "f16"
    )
    result = run_cli("convert", str(tiny_checkpoint), "-o", str(out_dir / "m.gguf"), "--quant", "Q3_X")
    assert_one_line_error(result, "Q3_X", "Q4_K_M")
    assert_no_output(out_dir)


def test_verify_of_a_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("verify", str(tmp_path / "absent.gguf")), "no such file")
