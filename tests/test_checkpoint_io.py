"""Checkpoint readers and the torch-free .bin writer, checked against real torch.

torch.save and torch.load are the reference for the PyTorch zip format, and
the safetensors package for safetensors. The security tests build checkpoints
whose pickle would create a marker file if unpickled plainly, and show both
that plain pickle does create it and that our reader does not.
"""

from __future__ import annotations

import collections
import gc
import mmap
import os
import pickle
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from convert.checkpoint import torch_bin
from convert.checkpoint.safetensors_file import read_safetensors
from convert.checkpoint.tensors import TensorRecord
from convert.checkpoint.torch_bin import read_torch_bin, write_torch_bin
from convert.errors import ConvertError

torch = pytest.importorskip("torch")

SHARD = "pytorch_model-00001-of-00003.bin"


def _save(tmp_path: Path, state: object, name: str = SHARD, **options: object) -> Path:
    path = tmp_path / name
    torch.save(state, path, **options)
    return path


def _expected(tensor: torch.Tensor) -> np.ndarray:
    """What read() must return: the same values, bf16 widened to float32."""
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.detach().contiguous().numpy()


def _assert_bitwise_equal(records: dict[str, TensorRecord], state: dict) -> None:
    assert list(records) == list(state)
    for name, tensor in state.items():
        got, want = records[name].read(), _expected(tensor)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert got.tobytes() == want.tobytes(), name  # bit for bit, NaNs included


def _state_dict(dtype: torch.dtype) -> collections.OrderedDict:
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(10, 6, generator=generator).to(dtype)
    base[0, :3] = torch.tensor([float("inf"), float("-inf"), float("nan")]).to(dtype)
    return collections.OrderedDict(
        matrix=torch.randn(3, 5, generator=generator).to(dtype),
        vector=torch.randn(7, generator=generator).to(dtype),
        scalar=torch.tensor(1.5, dtype=dtype),
        cube=torch.randn(2, 3, 4, generator=generator).to(dtype),
        empty=torch.zeros(0, 4, dtype=dtype),
        shared_whole=base,  # these three view one storage
        shared_row=base[2],
        shared_tail=base[4:],  # a view at a nonzero storage offset
        column=base[:, :1][3:4],  # shape (1, 1) with a non-canonical stride: still contiguous
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_reads_torch_save_bit_for_bit(tmp_path: Path, dtype: torch.dtype) -> None:
    state = _state_dict(dtype)
    records = read_torch_bin(_save(tmp_path, state))
    _assert_bitwise_equal(records, state)
    itemsize = torch.tensor([], dtype=dtype).element_size()
    whole, row, tail = records["shared_whole"], records["shared_row"], records["shared_tail"]
    assert whole.offset % 64 == 0  # torch.save aligns storage data
    assert (row.offset, tail.offset) == (whole.offset + 12 * itemsize, whole.offset + 24 * itemsize)
    assert records["matrix"].dtype == {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}[dtype]


def test_reads_plain_dicts_parameters_and_integer_tensors(tmp_path: Path) -> None:
    state = dict(torch.nn.Linear(3, 2).state_dict(keep_vars=True))  # nn.Parameter values
    state |= {"ids": torch.arange(5), "mask": torch.tensor([True, False]), "bytes": torch.arange(4, dtype=torch.uint8)}
    _assert_bitwise_equal(read_torch_bin(_save(tmp_path, state)), state)


def test_readers_do_not_import_torch(tmp_path: Path) -> None:
    path = _save(tmp_path, {"w": torch.ones(2)})
    code = (
        "import sys; from pathlib import Path;"
        "from convert.checkpoint.torch_bin import read_torch_bin;"
        "import convert.checkpoint.safetensors_file;"
        f"assert read_torch_bin(Path({str(path)!r}))['w'].read().sum() == 2;"
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "model.embed_tokens.weight": rng.standard_normal((11, 8), dtype=np.float32),
        "half": rng.standard_normal((3, 4)).astype(np.float16),
        "double": rng.standard_normal(5),
        "transposed": rng.standard_normal((4, 6), dtype=np.float32).T,  # written contiguous
        "big_endian": np.arange(6, dtype=">f4").reshape(2, 3),
        "scalar": np.float32(2.5),
        "empty": np.zeros((0, 3), np.float32),
        "ids": np.arange(300_000, dtype=np.int64)[-3:],
        "flags": np.array([True, False, True]),
    }


def test_written_bin_loads_in_torch(tmp_path: Path) -> None:
    arrays = _arrays()
    path = tmp_path / SHARD
    write_torch_bin(path, arrays)
    for mmap_mode in (False, True):
        loaded = torch.load(path, weights_only=True, mmap=mmap_mode)
        assert isinstance(loaded, collections.OrderedDict) and list(loaded) == list(arrays)
        for name, array in arrays.items():
            assert loaded[name].numpy().tobytes() == np.asarray(array, array.dtype.newbyteorder("<")).tobytes()
            assert loaded[name].shape == np.shape(array) and loaded[name].is_contiguous()
    # The same members, in the same order, as torch.save writes for this name.
    (tmp_path / "ref").mkdir()
    reference = _save(tmp_path / "ref", {"a": torch.ones(1)})
    with zipfile.ZipFile(path) as ours, zipfile.ZipFile(reference) as theirs:
        theirs_names = [n for n in theirs.namelist() if not n.endswith("serialization_id")]
        ours_names = [n for n in ours.namelist() if "/data/" not in n or n.endswith("/data/0")]
        assert ours_names == theirs_names
        assert all(info.compress_type == zipfile.ZIP_STORED for info in ours.infolist())


@pytest.mark.parametrize("force_zip64", [False, True])
def test_written_bin_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, force_zip64: bool) -> None:
    if force_zip64:  # the headers real multi-GB shards need, without writing GBs
        monkeypatch.setattr(torch_bin, "_ZIP64_FROM", 0)
    arrays = _arrays()
    path = tmp_path / "model.bin"
    write_torch_bin(path, arrays)
    records = read_torch_bin(path)
    for name, array in arrays.items():
        assert records[name].offset % 64 == 0
        np.testing.assert_array_equal(records[name].read(), array, strict=False)
    assert torch.load(path, weights_only=True)["half"].dtype == torch.float16


def test_written_bin_takes_uint16_as_bfloat16_bits(tmp_path: Path) -> None:
    values = torch.randn(4, 3, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    write_torch_bin(tmp_path / "bf16.bin", {"w": values.view(torch.int16).numpy().view(np.uint16)})
    assert torch.equal(torch.load(tmp_path / "bf16.bin", weights_only=True)["w"], values)
    record = read_torch_bin(tmp_path / "bf16.bin")["w"]
    assert record.dtype == "BF16" and record.read().tobytes() == values.float().numpy().tobytes()


def test_pickled_integers_cover_every_width() -> None:
    # Shapes and element counts of multi-GB tensors need the wider opcodes.
    for value in (0, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**40, 2**63, -1, -(2**31), -(2**31) - 1):
        assert pickle.loads(b"\x80\x02" + torch_bin._int(value) + b".") == value


def test_safetensors_from_numpy_and_torch(tmp_path: Path) -> None:
    from safetensors.numpy import save_file as save_numpy
    from safetensors.torch import save_file as save_torch

    arrays = _arrays()
    arrays = {k: np.ascontiguousarray(v, v.dtype.newbyteorder("<")) for k, v in arrays.items() if k != "double"}
    save_numpy(arrays, tmp_path / "np.safetensors", metadata={"format": "np"})
    records = read_safetensors(tmp_path / "np.safetensors")
    assert set(records) == set(arrays)
    for name, array in arrays.items():
        assert records[name].read().tobytes() == array.tobytes() and records[name].shape == array.shape

    state = _state_dict(torch.bfloat16)
    state = {k: v.clone() for k, v in state.items()}  # safetensors refuses shared storage
    save_torch(state, tmp_path / "bf16.safetensors")
    records = read_safetensors(tmp_path / "bf16.safetensors")
    assert records["matrix"].dtype == "BF16"
    for name, tensor in state.items():
        assert records[name].read().tobytes() == _expected(tensor).tobytes(), name


# --- hostile and broken files -------------------------------------------------


def _bin_with_pickle(tmp_path: Path, data_pkl: bytes) -> Path:
    """A valid torch zip (from torch.save) whose data.pkl is replaced."""
    source = _save(tmp_path, {"w": torch.ones(2)}, name="source.bin")
    path = tmp_path / SHARD
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as hostile:
        for info in original.infolist():
            hostile.writestr(info, data_pkl if info.filename.endswith("/data.pkl") else original.read(info))
    return path


class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return os.system, (self.command,)


def _exec_pickle(source: str) -> bytes:
    """Protocol-2 opcodes for builtins.exec(source): GLOBAL, BINUNICODE, TUPLE1, REDUCE, STOP."""
    text = source.encode()
    return b"\x80\x02cbuiltins\nexec\nX" + len(text).to_bytes(4, "little") + text + b"\x85R."


def _stack_global_pickle(module: str, name: str, argument: str) -> bytes:
    """Protocol-4 opcodes for module.name(argument), the global looked up by STACK_GLOBAL."""

    def short_text(value: str) -> bytes:  # SHORT_BINUNICODE
        return b"\x8c" + bytes([len(value.encode())]) + value.encode()

    return b"\x80\x04" + short_text(module) + short_text(name) + b"\x93" + short_text(argument) + b"\x85R."


@pytest.mark.parametrize("attack", ["os.system", "builtins.exec", "stack-global"])
def test_refuses_code_in_pickle_and_runs_none(tmp_path: Path, attack: str) -> None:
    marker = tmp_path / "MARKER"
    if attack == "os.system":
        data_pkl = pickle.dumps({"w": _RunsShell(f"touch {marker}")}, protocol=2)
        forbidden = f"{os.system.__module__}.system"  # posix.system on Linux
    elif attack == "builtins.exec":
        data_pkl = _exec_pickle(f"open({str(marker)!r}, 'w').close()")
        forbidden = "builtins.exec"
    else:
        data_pkl = _stack_global_pickle("os", "system", f"touch {marker}")
        forbidden = "os.system"
    path = _bin_with_pickle(tmp_path, data_pkl)

    with pytest.raises(ConvertError, match=f"refusing {SHARD}: its pickle asks for {forbidden}") as caught:
        read_torch_bin(path)
    assert "nothing from it was run" in str(caught.value) and "\n" not in str(caught.value)
    assert not marker.exists()

    with zipfile.ZipFile(path) as archive:  # the control: plain pickle does run it
        pickle.loads(archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl"))))
    assert marker.exists()


def test_refusal_names_hostile_globals_on_one_line(tmp_path: Path) -> None:
    path = _bin_with_pickle(tmp_path, _stack_global_pickle("os\nlines", "system\r", "true"))
    with pytest.raises(ConvertError, match=r"asks for os lines\.system,") as caught:
        read_torch_bin(path)
    assert "\n" not in str(caught.value) and "\r" not in str(caught.value)


def test_mutated_pickles_raise_only_convert_error(tmp_path: Path) -> None:
    source = _save(tmp_path, _state_dict(torch.float32), name="source.bin")
    with zipfile.ZipFile(source) as archive:
        original = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    rng = random.Random(0)
    for _ in range(150):
        mutated = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        path = _bin_with_pickle(tmp_path, bytes(mutated))
        try:
            read_torch_bin(path)
        except ConvertError as error:
            assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "is truncated or not a PyTorch checkpoint"),
        (lambda p: p.write_bytes(bytes(range(256)) * 16), "is truncated or not a PyTorch checkpoint"),
        (lambda p: p.write_bytes(b""), "is truncated or not a PyTorch checkpoint"),
        (lambda p: torch.save({"w": torch.ones(3)}, p, _use_new_zipfile_serialization=False), "legacy PyTorch format"),
        (lambda p: torch.save({"w": torch.ones(3, 4).t()}, p), r"tensor 'w' is not contiguous"),
        (lambda p: torch.save({"w": torch.ones(4)[::2]}, p), r"tensor 'w' is not contiguous"),
        (lambda p: torch.save([torch.ones(2)], p), "holds a list, not a state dict"),
        (lambda p: torch.save({"w": 3}, p), "entry 'w' is not a tensor"),
    ],
    ids=["half", "garbage", "empty", "legacy", "transposed", "strided", "list", "not-tensor"],
)
def test_bad_bin_files(tmp_path: Path, build, message: str) -> None:
    path = _save(tmp_path, _state_dict(torch.float32))
    build(path)
    with pytest.raises(ConvertError, match=message) as caught:
        read_torch_bin(path)
    assert SHARD in str(caught.value) and "\n" not in str(caught.value)


def test_compressed_member_and_missing_file(tmp_path: Path) -> None:
    source = _save(tmp_path, {"w": torch.ones(64)}, name="source.bin")
    path = tmp_path / SHARD
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as squeezed:
        for info in original.infolist():
            squeezed.writestr(info.filename, original.read(info))
    with pytest.raises(ConvertError, match="is compressed or encrypted"):
        read_torch_bin(path)
    with pytest.raises(ConvertError, match="cannot read"):
        read_torch_bin(tmp_path / "absent.bin")


def test_read_checks_the_file_still_holds_the_tensor(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    write_torch_bin(path, {"w": np.ones(1000, np.float32)})
    record = read_torch_bin(path)["w"]
    with open(path, "r+b") as file:
        file.truncate(record.offset + 10)
    with pytest.raises(ConvertError, match="model.bin is truncated: tensor 'w'"):
        record.read()


def _safetensors_bytes(header: bytes, data: bytes = b"") -> bytes:
    return len(header).to_bytes(8, "little") + header + data


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x01\x02", "shorter than its 8-byte header length"),
        (_safetensors_bytes(b'{"w": {"dtype": "F32"')[:-3], "exceeds the file"),
        (_safetensors_bytes(b"not json"), "not valid JSON"),
        (_safetensors_bytes(b"[1, 2]"), "not a JSON object"),
        (_safetensors_bytes(b'{"w": {"dtype": "F32", "shape": [2]}}'), "malformed header entry"),
        (_safetensors_bytes(b'{"w": {"dtype": "C64", "shape": [2], "data_offsets": [0, 8]}}'), "dtype C64"),
        (_safetensors_bytes(b'{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}'), "8 bytes for shape"),
        (_safetensors_bytes(b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', b"1234"), "outside"),
    ],
)
def test_bad_safetensors_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(ConvertError, match=message) as caught:
        read_safetensors(path)
    assert str(caught.value).startswith("model.safetensors")


# --- memory: a tensor is a mapping of the file, not a copy ---------------------


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maps_the_file(array: np.ndarray) -> bool:
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return isinstance(base, mmap.mmap)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_read_maps_instead_of_copying(tmp_path: Path, dtype: type) -> None:
    if not Path("/proc/self/statm").exists():
        pytest.skip("needs Linux /proc to measure resident memory")
    path, size = tmp_path / "big.bin", 64 << 20
    write_torch_bin(path, {"small": np.ones(3, dtype), "big": np.full(size // np.dtype(dtype).itemsize, 0.5, dtype)})
    gc.collect()
    record = read_torch_bin(path)["big"]
    before = _resident_bytes()
    array = record.read()
    assert _maps_the_file(array) and not array.flags.writeable and not array.flags.owndata
    assert _resident_bytes() - before < 8 << 20  # mapped, not read
    assert float(array[::4096].astype(np.float64).sum()) == 0.5 * len(array[::4096])
    assert float(array.sum(dtype=np.float64)) == 0.5 * array.size
    assert _resident_bytes() - before > size // 2  # now its pages are resident ...
    del array
    gc.collect()
    assert _resident_bytes() - before < 8 << 20  # ... and dropping it unmapped them
