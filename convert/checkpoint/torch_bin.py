"""PyTorch `.bin` checkpoints (the zip format of torch.save), without torch.

CodeGen2.5 ships its weights only as `pytorch_model-0000N-of-00003.bin`. Such
a file is a zip archive: `<prefix>/data.pkl` pickles the state dict, and each
tensor storage's raw bytes are a stored (uncompressed) member
`<prefix>/data/<key>`. Plain unpickling can run any code the file names, so
the reader uses an unpickler that resolves only the handful of globals a
tensor state dict needs, each to a local stand-in that records where the
bytes are. No tensor data is read here; `TensorRecord.read()` maps it later.

`write_torch_bin` produces the same layout so the demo, benchmark and tests
can build realistic checkpoints without torch.
"""

from __future__ import annotations

import io
import math
import pickle
import reprlib
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from convert.checkpoint.tensors import NUMPY_DTYPES, TensorRecord
from convert.errors import ConvertError

# torch.save names a tensor's storage by these classes; we only need the dtype.
_STORAGE_DTYPES = {
    "DoubleStorage": "F64",
    "FloatStorage": "F32",
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
}
# Files from torch<1.6 start with this pickled magic number instead of "PK".
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length
_ALIGNMENT = 64  # torch.save aligns storage data so it can be mapped directly


@dataclass(frozen=True, slots=True)
class _StorageType:
    """What `torch.FloatStorage` and friends resolve to: just the dtype."""

    dtype: str


@dataclass(frozen=True, slots=True)
class _Storage:
    """A `data/<key>` member: dtype and absolute byte range in the file."""

    key: str
    dtype: str
    offset: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class _TensorView:
    """What `_rebuild_tensor_v2` resolves to; becomes a TensorRecord once named."""

    storage: Any
    storage_offset: Any
    shape: Any
    stride: Any


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, *_flags: Any) -> _TensorView:
    # requires_grad, backward hooks and metadata do not affect the bytes.
    return _TensorView(storage, storage_offset, size, stride)


def _rebuild_parameter(data: Any, *_flags: Any) -> Any:
    # state_dict(keep_vars=True) saves nn.Parameter wrappers around tensors.
    return data


def _ordered_dict(*args: Any) -> dict:
    # Plain dicts keep insertion order, which is all OrderedDict adds here.
    if args:
        return dict(_pairs(args[0]))
    return {}


def _pairs(items: Any) -> Any:
    for pair in items.items() if isinstance(items, dict) else items:
        if not (isinstance(pair, tuple) and len(pair) == 2 and type(pair[0]) is str):
            raise pickle.UnpicklingError("an OrderedDict entry that is not a (name, value) pair")
        yield pair


_ALLOWED_GLOBALS = {
    "collections.OrderedDict": _ordered_dict,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
}


class _Archive:
    """The zip archive of one checkpoint, and the storages its pickle uses."""

    def __init__(self, path: Path, file: BinaryIO, zip_file: zipfile.ZipFile, prefix: str):
        self.path, self._file, self._zip, self._prefix = path, file, zip_file, prefix
        self._size = file.seek(0, io.SEEK_END)
        self._storages: dict[str, _Storage] = {}

    def member_range(self, info: zipfile.ZipInfo) -> tuple[int, int]:
        """Absolute offset and size of a member's bytes, checked to be readable as-is."""
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise ConvertError(
                f"{self.path.name}: member {info.filename} is compressed or encrypted; "
                "PyTorch checkpoints store tensor data uncompressed"
            )
        # The central directory's extra field may differ from the local one
        # (torch pads only the local one), so read the local header itself.
        self._file.seek(info.header_offset)
        header = self._file.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or not header.startswith(b"PK\x03\x04"):
            raise _truncated(self.path)
        _, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        if start + info.file_size > self._size:
            raise _truncated(self.path)
        return start, info.file_size

    def storage(self, key: str, dtype: str) -> _Storage:
        """The storage `data/<key>`; tensors sharing one storage share this object."""
        if key not in self._storages:
            try:
                info = self._zip.getinfo(f"{self._prefix}data/{key}")
            except KeyError:
                raise ConvertError(
                    f"{self.path.name}: its pickle refers to storage data/{key}, which the archive does not hold"
                ) from None
            self._storages[key] = _Storage(key, dtype, *self.member_range(info))
        storage = self._storages[key]
        if storage.dtype != dtype:
            raise ConvertError(f"{self.path.name}: storage data/{key} is used with two dtypes")
        return storage


# A state dict's pickle is a few hundred KB and nests a handful of levels; beyond these it is not one.
MAX_PICKLE_BYTES = 256 << 20
MAX_PICKLE_DEPTH = 64


class _StateDictUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Unpickles a state dict, refusing every global outside a short allow-list.

    Python's own unpickler loop, not the C one: Ctrl-C is then seen between opcodes. A crafted pickle can
    share one object many times (memo), so that hashing or printing it would take exponential time inside
    one C call: dictionary keys must be strings (hashed at once), sets are refused, marks nest at most
    MAX_PICKLE_DEPTH deep, and messages show objects only through a bounded repr.
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, data: bytes, archive: _Archive):
        super().__init__(io.BytesIO(data))
        self._archive = archive

    def _load_mark(self) -> None:
        if len(self.metastack) >= MAX_PICKLE_DEPTH:
            raise pickle.UnpicklingError(f"nested more than {MAX_PICKLE_DEPTH} levels deep")
        pickle._Unpickler.load_mark(self)  # type: ignore[attr-defined]

    def _load_setitem(self) -> None:
        value, key = self.stack.pop(), self.stack.pop()
        _dict_target(self.stack)[_name_key(key)] = value

    def _load_setitems(self) -> None:
        items = self.pop_mark()
        target = _dict_target(self.stack)
        for index in range(0, len(items) - 1, 2):
            target[_name_key(items[index])] = items[index + 1]

    def _load_build(self) -> None:
        # An OrderedDict's attributes (a state_dict()'s _metadata: module versions) say nothing about tensors.
        state = self.stack.pop()
        if type(self.stack[-1]) is not dict or not isinstance(state, dict):
            raise pickle.UnpicklingError("BUILD of something other than a state dict's attributes")

    def _refuse_set(self) -> None:
        raise pickle.UnpicklingError("a set, which no state dict holds")

    dispatch[pickle.MARK[0]] = _load_mark
    dispatch[pickle.SETITEM[0]] = _load_setitem
    dispatch[pickle.SETITEMS[0]] = _load_setitems
    dispatch[pickle.BUILD[0]] = _load_build
    for _opcode in (pickle.EMPTY_SET, pickle.ADDITEMS, pickle.FROZENSET):
        dispatch[_opcode[0]] = _refuse_set
    del _opcode

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        found = _ALLOWED_GLOBALS.get(f"{module}.{name}")
        if found is None:
            raise ConvertError(
                f"refusing {self._archive.path.name}: its pickle asks for {_one_line(f'{module}.{name}')}, "
                "which is not part of a tensor state dict; nothing from it was run"
            )
        return found

    def persistent_load(self, pid: Any) -> _Storage:
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str)
        ):
            raise ConvertError(
                f"{self._archive.path.name}: its pickle refers to an unknown persistent object"
                f" {_one_line(_BOUNDED.repr(pid))[:80]}"
            )
        return self._archive.storage(pid[2], pid[1].dtype)


def _dict_target(stack: list) -> dict:
    if not stack or type(stack[-1]) is not dict:
        raise pickle.UnpicklingError("SETITEM on something that is not a dict")
    return stack[-1]


def _name_key(key: Any) -> str:
    if type(key) is not str:
        raise pickle.UnpicklingError(f"a dictionary key that is a {type(key).__name__}, not a name")
    return key


_BOUNDED = reprlib.Repr()
_BOUNDED.maxlevel, _BOUNDED.maxstring, _BOUNDED.maxother = 3, 60, 60


def read_torch_bin(path: Path) -> dict[str, TensorRecord]:
    """Locate every tensor of a torch.save'd state dict, running none of its code.

    Raises ConvertError, naming the file, for anything that is not a zip-format
    state dict of C-contiguous tensors: legacy or truncated files, forbidden
    pickle globals, compressed members, big-endian data, non-contiguous views.
    """
    path = Path(path)
    try:
        file = open(path, "rb")  # closed by the with below
    except OSError as error:
        raise ConvertError(f"cannot read {path}: {error.strerror}") from None
    with file:
        if file.read(len(_LEGACY_MAGIC)) == _LEGACY_MAGIC:
            raise ConvertError(f"{path.name} uses the legacy PyTorch format; re-save it with torch>=1.6")
        try:
            with zipfile.ZipFile(file) as zip_file:
                state = _unpickle_state(path, file, zip_file)
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            raise _truncated(path) from error
    if not isinstance(state, dict):
        raise ConvertError(f"{path.name}: its pickle holds a {type(state).__name__}, not a state dict of tensors")
    records = {}
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _TensorView):
            raise ConvertError(f"{path.name}: state dict entry {_BOUNDED.repr(name)} is not a tensor")
        records[name] = _to_record(path, name, value)
    return records


def _unpickle_state(path: Path, file: BinaryIO, zip_file: zipfile.ZipFile) -> Any:
    pickles = [n for n in zip_file.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise _truncated(path)
    prefix = pickles[0].removesuffix("data.pkl")
    byteorder = f"{prefix}byteorder"  # older torch wrote none: little, as torch.load assumes
    if byteorder in zip_file.namelist() and zip_file.read(byteorder) != b"little":
        raise ConvertError(f"{path.name} is big-endian; re-save it on a little-endian machine")
    archive = _Archive(path, file, zip_file, prefix)
    start, size = archive.member_range(zip_file.getinfo(pickles[0]))
    if size > MAX_PICKLE_BYTES:
        raise ConvertError(f"{path.name}: its data.pkl is {size >> 20} MiB, far more than a state dict needs")
    file.seek(start)
    data = file.read(size)
    try:
        return _StateDictUnpickler(data, archive).load()
    except (ConvertError, EOFError):
        raise
    except Exception as error:  # a hostile pickle can raise anything
        raise ConvertError(
            f"{path.name}: its data.pkl is not a valid state dict ({type(error).__name__}: {_one_line(error)})"
        ) from None


def _to_record(path: Path, name: str, view: _TensorView) -> TensorRecord:
    storage = view.storage
    shape, stride = _int_tuple(view.shape), _int_tuple(view.stride)
    offset = view.storage_offset
    if (
        not isinstance(storage, _Storage)
        or shape is None
        or stride is None
        or len(shape) != len(stride)
        or type(offset) is not int
        or offset < 0
    ):
        raise ConvertError(f"{path.name}: tensor {name!r} has a malformed description")
    numel = math.prod(shape)
    if numel and not _is_c_contiguous(shape, stride):
        raise ConvertError(
            f"{path.name}: tensor {name!r} is not contiguous (shape {shape}, stride {stride}); "
            "re-save the state dict with .contiguous() tensors"
        )
    itemsize = NUMPY_DTYPES[storage.dtype].itemsize
    start, nbytes = offset * itemsize, numel * itemsize
    if numel and start + nbytes > storage.nbytes:
        raise ConvertError(f"{path.name}: tensor {name!r} reaches past the end of its storage data/{storage.key}")
    return TensorRecord(name, path, storage.dtype, shape, storage.offset + start, nbytes)


def _int_tuple(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, tuple) and all(type(v) is int and v >= 0 for v in value):
        return value
    return None


def _is_c_contiguous(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    # Like torch, ignore the stride of size-1 dimensions: it never moves.
    expected = 1
    for size, step in zip(reversed(shape), reversed(stride), strict=True):
        if size != 1 and step != expected:
            return False
        expected *= size
    return True


def _one_line(value: object) -> str:
    # Names and messages from a hostile pickle may hold newlines or be huge.
    return " ".join(str(value).split())[:100]


def _truncated(path: Path) -> ConvertError:
    return ConvertError(f"{path.name} is truncated or not a PyTorch checkpoint")


_STORAGE_NAMES = {NUMPY_DTYPES[dtype]: name for name, dtype in _STORAGE_DTYPES.items()}
_CHUNK = 1 << 24  # stream tensor bytes in 16 MiB pieces
# Members from this size on get ZIP64 headers. Deciding it here, below the
# ~2 GB where zipfile would on its own, fixes the header length (and so the
# padding that aligns the data) before the header is written.
_ZIP64_FROM = 1 << 30


def write_torch_bin(path: Path, tensors: Mapping[str, np.ndarray]) -> None:
    """Write a state dict that `torch.load(path, weights_only=True)` reads back.

    The layout is torch.save's (records under the file stem, data members
    stored uncompressed at 64-byte alignment), so demos and benchmarks can
    build real-format checkpoints without torch. Each tensor's bytes are
    streamed into the archive; nothing holds the whole file in memory.
    numpy has no bfloat16, so uint16 arrays are taken as bfloat16 bit patterns.
    """
    path = Path(path)
    prefix = f"{path.stem or 'archive'}/"
    dtypes = {}
    for name, array in tensors.items():
        dtype = np.dtype(array.dtype).newbyteorder("<")
        if dtype not in _STORAGE_NAMES:
            raise ValueError(f"tensor {name!r}: dtype {array.dtype} has no PyTorch storage")
        dtypes[name] = dtype
    state = _state_dict_pickle([(name, _STORAGE_NAMES[dtypes[name]], np.shape(a)) for name, a in tensors.items()])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zip_file:
        _write_member(zip_file, f"{prefix}data.pkl", state)
        _write_member(zip_file, f"{prefix}.format_version", b"1")
        _write_member(zip_file, f"{prefix}.storage_alignment", str(_ALIGNMENT).encode())
        _write_member(zip_file, f"{prefix}byteorder", b"little")
        for key, (name, array) in enumerate(tensors.items()):
            data = np.ascontiguousarray(array, dtype=dtypes[name]).reshape(-1)
            _write_member(zip_file, f"{prefix}data/{key}", data.view(np.uint8))
        _write_member(zip_file, f"{prefix}version", b"3\n")


def _write_member(zip_file: zipfile.ZipFile, name: str, data: bytes | np.ndarray) -> None:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.file_size = len(data)
    zip64 = info.file_size >= _ZIP64_FROM
    header_end = zip_file.fp.tell() + _LOCAL_HEADER.size + len(name.encode()) + 20 * zip64
    padding = -header_end % _ALIGNMENT
    if padding:
        padding += _ALIGNMENT if padding < 4 else 0  # an extra field needs 4 bytes
        info.extra = struct.pack("<HH", 0x4C43, padding - 4) + bytes(padding - 4)
    with zip_file.open(info, "w", force_zip64=zip64) as member:
        if zip_file.fp.tell() % _ALIGNMENT:
            raise RuntimeError(f"zipfile wrote an unexpected header for {name}")
        view = memoryview(data)
        for start in range(0, len(view), _CHUNK):
            member.write(view[start : start + _CHUNK])


def _state_dict_pickle(entries: list[tuple[str, str, tuple[int, ...]]]) -> bytes:
    """Protocol-2 pickle of an OrderedDict of tensors, storage i in data/i."""
    out = bytearray(b"\x80\x02")  # PROTO 2
    empty_ordered_dict = b"ccollections\nOrderedDict\n)R"  # GLOBAL, EMPTY_TUPLE, REDUCE
    out += empty_ordered_dict + b"("  # MARK: the items follow, then SETITEMS
    for key, (name, storage, shape) in enumerate(entries):
        out += _text(name) + b"ctorch._utils\n_rebuild_tensor_v2\n(("
        out += _text("storage") + f"ctorch\n{storage}\n".encode() + _text(str(key))
        out += _text("cpu") + _int(math.prod(shape)) + b"tQ"  # TUPLE, BINPERSID
        strides = [math.prod(shape[i + 1 :]) for i in range(len(shape))]
        out += _int(0) + _int_tuple_op(shape) + _int_tuple_op(strides)
        out += b"\x89" + empty_ordered_dict + b"tR"  # NEWFALSE, hooks; TUPLE, REDUCE
    out += b"u."  # SETITEMS, STOP
    return bytes(out)


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def _int(value: int) -> bytes:
    if 0 <= value < 1 << 8:
        return b"K" + bytes([value])  # BININT1
    if 0 <= value < 1 << 16:
        return b"M" + struct.pack("<H", value)  # BININT2
    if -(1 << 31) <= value < 1 << 31:
        return b"J" + struct.pack("<i", value)  # BININT
    data = value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data  # LONG1


def _int_tuple_op(values: Any) -> bytes:
    return b"(" + b"".join(_int(int(v)) for v in values) + b"t"  # MARK ... TUPLE
