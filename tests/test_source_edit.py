"""Reading the user's buffer, locating the cursor, and writing a completion back without damage."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from localcoder import edit
from localcoder.edit import insert_completion, render_file_bytes, unified_diff, write_completion
from localcoder.errors import LocalcoderError
from localcoder.source import (
    Cursor,
    SourceBuffer,
    locate,
    parse_position,
    parse_target,
    read_source,
    read_source_bytes,
)


def make(tmp_path: Path, data: bytes, name: str = "app.py") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def write_and_check(path: Path, line: int, col: int | None, completion: str, expected_byte_offset: int, **kw) -> bytes:
    """Write a completion and assert the file is the original with exactly the completion's bytes inserted."""
    original = path.read_bytes()
    buffer = read_source(path, **kw)
    cursor = locate(buffer, line, col)
    write_completion(path, buffer, cursor, completion)
    inserted = completion.replace("\n", buffer.newline).encode(buffer.encoding)
    after = path.read_bytes()
    assert after == original[:expected_byte_offset] + inserted + original[expected_byte_offset:]
    return after


# --- parse_target / parse_position -------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("app.py:42:7", ("app.py", 42, 7)),
        ("app.py:42", ("app.py", 42, None)),
        ("app.py", ("app.py", None, None)),
        ("-", ("-", None, None)),
        ("-:3", ("-", 3, None)),
        ("C:\\x\\a.py:3", ("C:\\x\\a.py", 3, None)),
        ("C:\\x\\a.py", ("C:\\x\\a.py", None, None)),
        ("weird:name.py", ("weird:name.py", None, None)),
        ("weird:name.py:5:2", ("weird:name.py", 5, 2)),
        ("a.py:3:", ("a.py:3:", None, None)),
        ("a.py:x", ("a.py:x", None, None)),
    ],
)
def test_parse_target(target: str, expected: tuple[str, int | None, int | None]) -> None:
    assert parse_target(target) == expected


@pytest.mark.parametrize("target", ["a.py:0", "a.py:3:0", "a.py:00"])
def test_parse_target_rejects_zero(target: str) -> None:
    with pytest.raises(LocalcoderError, match="must be a positive integer"):
        parse_target(target)


def test_parse_target_empty() -> None:
    with pytest.raises(LocalcoderError, match="no file given"):
        parse_target("")


@pytest.mark.parametrize("value", ["0", "-3", "x", "", "1.5", "٣"])
def test_parse_position_rejects(value: str) -> None:
    with pytest.raises(LocalcoderError) as info:
        parse_position(value, "LINE")
    assert str(info.value) == f"LINE must be a positive integer, got {value!r}"


def test_parse_position_accepts() -> None:
    assert parse_position("42", "COL") == 42


# --- reading ---------------------------------------------------------------------------------


def test_line_count_rules() -> None:
    def count(text: str) -> int:
        return read_source_bytes(text.encode()).line_count

    assert [count(t) for t in ["", "a", "a\nb", "a\nb\n", "\n", "a\n\n"]] == [1, 1, 2, 2, 1, 2]


def test_crlf_file(tmp_path: Path) -> None:
    buffer = read_source(make(tmp_path, b"a = 1\r\nb = 2\r\n"))
    assert (buffer.text, buffer.newline, buffer.bom, buffer.encoding) == ("a = 1\nb = 2\n", "\r\n", False, "utf-8")
    assert buffer.line_count == 2


def test_cr_only_file(tmp_path: Path) -> None:
    buffer = read_source(make(tmp_path, b"a\rb\rc"))
    assert (buffer.text, buffer.newline, buffer.line_count) == ("a\nb\nc", "\r", 3)


def test_mixed_newlines_pick_the_dominant_one(tmp_path: Path) -> None:
    buffer = read_source(make(tmp_path, b"a\r\nb\r\nc\nd\re"))
    assert (buffer.text, buffer.newline) == ("a\nb\nc\nd\ne", "\r\n")
    assert read_source_bytes(b"no newline").newline == "\n"


def test_form_feed_is_not_a_line_break() -> None:
    buffer = read_source_bytes(b"a\x0cb\nc")
    assert buffer.line_count == 2
    assert locate(buffer, 2, None).offset == len("a\x0cb\nc")


def test_bom_is_stripped_and_remembered(tmp_path: Path) -> None:
    buffer = read_source(make(tmp_path, b"\xef\xbb\xbfx = 1\n"))
    assert (buffer.text, buffer.bom, buffer.encoding) == ("x = 1\n", True, "utf-8")


def test_bom_stripped_for_explicit_utf8_but_not_latin1(tmp_path: Path) -> None:
    path = make(tmp_path, b"\xef\xbb\xbfx")
    assert read_source(path, encoding="UTF8").text == "x"
    assert read_source(path, encoding="utf-8-sig").bom
    latin = read_source(path, encoding="latin-1")
    assert (latin.text, latin.bom) == ("\xef\xbb\xbfx", False)


def test_latin1_with_encoding(tmp_path: Path) -> None:
    buffer = read_source(make(tmp_path, "s = 'café'\n".encode("latin-1")), encoding="latin-1")
    assert buffer.text == "s = 'café'\n"


def test_non_utf8_without_encoding(tmp_path: Path) -> None:
    path = make(tmp_path, b"# caf\xe9\n")
    with pytest.raises(LocalcoderError) as info:
        read_source(path)
    assert str(info.value) == f"{path} is not valid UTF-8 (byte 0xe9 at offset 5); pass --encoding"


def test_decode_error_offset_counts_the_bom(tmp_path: Path) -> None:
    with pytest.raises(LocalcoderError, match="byte 0xff at offset 4"):
        read_source(make(tmp_path, b"\xef\xbb\xbfa\xff"))


def test_binary_file(tmp_path: Path) -> None:
    path = make(tmp_path, b"\x7fELF\x00\x01\x02", "app.bin")
    with pytest.raises(LocalcoderError, match="app.bin looks binary"):
        read_source(path)


def test_utf16_with_encoding_is_not_binary(tmp_path: Path) -> None:
    buffer = read_source(make(tmp_path, "x = 1\n".encode("utf-16")), encoding="utf-16")
    assert buffer.text == "x = 1\n"


def test_unknown_and_non_text_encodings(tmp_path: Path) -> None:
    path = make(tmp_path, b"x")
    with pytest.raises(LocalcoderError, match="unknown encoding 'klingon'"):
        read_source(path, encoding="klingon")
    with pytest.raises(LocalcoderError, match="not a text encoding"):
        read_source(path, encoding="base64")


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(LocalcoderError, match="nope.py does not exist"):
        read_source(tmp_path / "nope.py")
    with pytest.raises(LocalcoderError, match="is a directory"):
        read_source(tmp_path)


def test_stdin_buffer_has_no_file() -> None:
    buffer = read_source_bytes(b"x\n")
    assert (buffer.path, buffer.file) == ("<stdin>", None)


# --- locate ----------------------------------------------------------------------------------

TEXT = "def f(x):\n    return x\n    \nprint(f(1))"


def test_locate_line_end() -> None:
    cursor = locate(read_source_bytes(TEXT.encode()), 2, None)
    assert cursor == Cursor(line=2, col=13, offset=TEXT.index("\n    \n"))


def test_locate_mid_line() -> None:
    cursor = locate(read_source_bytes(TEXT.encode()), 1, 5)
    assert cursor.offset == 4 and TEXT[cursor.offset :].startswith("f(x)")


def test_locate_whitespace_only_line_goes_after_indentation() -> None:
    cursor = locate(read_source_bytes(TEXT.encode()), 3, None)
    assert (cursor.col, TEXT[: cursor.offset].endswith("\n    "), TEXT[cursor.offset]) == (5, True, "\n")


def test_locate_columns_count_code_points() -> None:
    buffer = read_source_bytes("é😀x".encode())
    assert buffer.text[locate(buffer, 1, 3).offset] == "x"


def test_locate_empty_file() -> None:
    buffer = read_source_bytes(b"")
    assert locate(buffer, 1, None) == Cursor(1, 1, 0)
    assert locate(buffer, 1, 1) == Cursor(1, 1, 0)
    with pytest.raises(LocalcoderError, match="line 2 is past the end of <stdin> \\(1 line\\)"):
        locate(buffer, 2, None)


def test_locate_last_line_without_final_newline() -> None:
    buffer = read_source_bytes(TEXT.encode())
    assert locate(buffer, 4, None).offset == len(TEXT)
    with pytest.raises(LocalcoderError, match="line 5 is past the end of <stdin> \\(4 lines\\)"):
        locate(buffer, 5, None)


def test_locate_after_final_newline() -> None:
    text = "a\nbb\n"
    buffer = read_source_bytes(text.encode())
    assert buffer.line_count == 2
    assert locate(buffer, 2, None).offset == 4
    assert locate(buffer, 3, None) == Cursor(3, 1, len(text))
    with pytest.raises(LocalcoderError, match="column 2 is past the end of line 3 \\(0 characters\\)"):
        locate(buffer, 3, 2)
    with pytest.raises(LocalcoderError, match="line 4 is past the end of <stdin> \\(2 lines\\)"):
        locate(buffer, 4, None)


def test_locate_errors_name_the_numbers(tmp_path: Path) -> None:
    path = make(tmp_path, b"".join(b"x = %d\n" % i for i in range(42)))
    buffer = read_source(path)
    with pytest.raises(LocalcoderError) as info:
        locate(buffer, 90, None)
    assert str(info.value) == f"line 90 is past the end of {path} (42 lines)"
    with pytest.raises(LocalcoderError) as info:
        locate(buffer, 5, 30)
    assert str(info.value) == "column 30 is past the end of line 5 (5 characters)"
    assert locate(buffer, 5, 6).col == 6  # one past the end is the end of the line
    for line, col in [(0, None), (-1, None), (1, 0)]:
        with pytest.raises(LocalcoderError, match="must be a positive integer"):
            locate(buffer, line, col)


# --- insert, diff and write --------------------------------------------------------------------


def test_insert_completion_and_render() -> None:
    buffer = read_source_bytes(b"\xef\xbb\xbfdef f():\r\n\r\nx\r\n")
    cursor = locate(buffer, 2, None)
    new_text = insert_completion(buffer, cursor, "    return 1\n    # done")
    assert new_text == "def f():\n    return 1\n    # done\nx\n"
    assert render_file_bytes(buffer, new_text) == b"\xef\xbb\xbfdef f():\r\n    return 1\r\n    # done\r\nx\r\n"


def test_unified_diff() -> None:
    buffer = read_source_bytes(b"a\nb\nc", name="app.py")
    new_text = insert_completion(buffer, locate(buffer, 2, None), "b2\nb3")
    assert unified_diff(buffer, new_text) == (
        "--- a/app.py\n+++ b/app.py\n@@ -1,3 +1,4 @@\n a\n-b\n+bb2\n+b3\n c\n\\ No newline at end of file\n"
    )
    assert unified_diff(buffer, buffer.text) == ""


def test_unified_diff_no_final_newline_change() -> None:
    buffer = read_source_bytes(b"x", name="app.py")
    diff = unified_diff(buffer, "x\n")
    assert diff.endswith("-x\n\\ No newline at end of file\n+x\n")


def test_write_plain_file_mid_line(tmp_path: Path) -> None:
    path = make(tmp_path, b"def add(a, b):\n    return \n")
    write_and_check(path, 2, 12, "a + b", len(b"def add(a, b):\n    return "))


def test_write_crlf(tmp_path: Path) -> None:
    path = make(tmp_path, b"def f():\r\n    pass\r\n\r\nx = 1\r\n")
    after = write_and_check(path, 3, None, "def g():\n    pass\n", len(b"def f():\r\n    pass\r\n"))
    assert b"\n" not in after.replace(b"\r\n", b"")


def test_write_bom(tmp_path: Path) -> None:
    path = make(tmp_path, b"\xef\xbb\xbfimport os\nprint(")
    after = write_and_check(path, 2, None, "os.getcwd())", len(b"\xef\xbb\xbfimport os\nprint("))
    assert after.startswith(b"\xef\xbb\xbf") and after.count(b"\xef\xbb\xbf") == 1


def test_write_no_final_newline(tmp_path: Path) -> None:
    path = make(tmp_path, b"x = [1, 2")
    assert write_and_check(path, 1, None, ", 3]", 9) == b"x = [1, 2, 3]"


def test_write_tab_indented(tmp_path: Path) -> None:
    data = b"def f():\n\tif x:\n\t\t\n\treturn y\n"
    path = make(tmp_path, data)
    write_and_check(path, 3, None, "y = 2\n\t\tz = 3", data.index(b"\t\t\n") + 2)


def test_write_after_final_newline_and_into_empty_file(tmp_path: Path) -> None:
    path = make(tmp_path, b"a\r\n")
    assert write_and_check(path, 2, None, "b\n", 3) == b"a\r\nb\r\n"
    empty = make(tmp_path, b"", "empty.py")
    assert write_and_check(empty, 1, None, "pass\n", 0) == b"pass\n"


def test_write_keeps_mixed_newlines(tmp_path: Path) -> None:
    data = b"a\r\nb\nc\rd\r\ne"
    path = make(tmp_path, data)
    # Dominant style is CRLF; every existing newline keeps its own style.
    write_and_check(path, 4, None, "1\n2", data.index(b"\r\ne"))


def test_write_latin1(tmp_path: Path) -> None:
    data = "s = 'é'\nt = ".encode("latin-1")
    path = make(tmp_path, data)
    write_and_check(path, 2, None, "'ü'", len(data), encoding="latin-1")
    buffer = read_source(path, encoding="latin-1")
    with pytest.raises(LocalcoderError, match="cannot encode; nothing was written"):
        write_completion(path, buffer, locate(buffer, 1, None), "→")
    assert path.read_bytes() == data + "'ü'".encode("latin-1")


def test_write_utf16(tmp_path: Path) -> None:
    path = make(tmp_path, "a\nb\n".encode("utf-16-le"))
    write_and_check(path, 2, None, "c", len("a\nb".encode("utf-16-le")), encoding="utf-16-le")
    bommed = make(tmp_path, "a\nb\n".encode("utf-16"), "bom16.py")
    buffer = read_source(bommed, encoding="utf-16")
    write_completion(bommed, buffer, locate(buffer, 1, None), "z")
    assert bommed.read_bytes() == "az\nb\n".encode("utf-16")


def test_write_preserves_permissions(tmp_path: Path) -> None:
    path = make(tmp_path, b"x\n", "tool.py")
    os.chmod(path, 0o751)
    write_and_check(path, 1, None, " = 1", 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o751
    assert not list(tmp_path.glob("*.localcoder-tmp"))


def test_write_refuses_read_only(tmp_path: Path) -> None:
    path = make(tmp_path, b"x\n")
    os.chmod(path, 0o444)
    buffer = read_source(path)
    with pytest.raises(LocalcoderError) as info:
        write_completion(path, buffer, locate(buffer, 1, None), " = 1")
    assert str(info.value) == f"{path} is read-only; nothing was written"
    assert path.read_bytes() == b"x\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_write_refuses_when_changed_on_disk(tmp_path: Path) -> None:
    path = make(tmp_path, b"x\n")
    buffer = read_source(path)
    path.write_bytes(b"y\n")
    with pytest.raises(LocalcoderError) as info:
        write_completion(path, buffer, locate(buffer, 1, None), " = 1")
    assert str(info.value) == f"{path} changed on disk while completing; nothing was written"
    assert path.read_bytes() == b"y\n"


def test_write_refuses_stdin(tmp_path: Path) -> None:
    buffer = read_source_bytes(b"x\n")
    with pytest.raises(LocalcoderError, match="<stdin> is not a file"):
        write_completion(tmp_path / "x.py", buffer, locate(buffer, 1, None), "y")
    assert not (tmp_path / "x.py").exists()


def test_write_through_symlink(tmp_path: Path) -> None:
    real = make(tmp_path, b"a\n", "real.py")
    link = tmp_path / "link.py"
    link.symlink_to(real)
    write_and_check(link, 1, None, "b", 1)
    assert link.is_symlink() and real.read_bytes() == b"ab\n"


def test_failed_write_leaves_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make(tmp_path, b"x\n")
    buffer = read_source(path)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(edit.os, "fsync", disk_full)
    with pytest.raises(LocalcoderError, match="No space left on device; nothing was written"):
        write_completion(path, buffer, locate(buffer, 1, None), " = 1")
    assert path.read_bytes() == b"x\n"
    assert [p.name for p in tmp_path.iterdir()] == ["app.py"]


def test_buffer_is_frozen() -> None:
    buffer = read_source_bytes(b"x")
    with pytest.raises(AttributeError):
        buffer.text = "y"  # type: ignore[misc]
    assert isinstance(buffer, SourceBuffer)


def test_write_atomically_modes_and_a_refused_rename(tmp_path: Path) -> None:
    """A new file gets the umask's mode (not mkstemp's 0600), a replaced one keeps its own, and a check that
    fails just before the rename leaves the old file and no temporary file behind."""
    import os
    import stat

    from localcoder.errors import LocalcoderError
    from localcoder.files import write_atomically

    old_umask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.py"
        write_atomically(fresh, b"x = 1\n")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644 and fresh.read_bytes() == b"x = 1\n"
    finally:
        os.umask(old_umask)
    kept = tmp_path / "kept.py"
    kept.write_text("old\n")
    kept.chmod(0o750)
    write_atomically(kept, b"new\n", kept.stat())
    assert stat.S_IMODE(kept.stat().st_mode) == 0o750 and kept.read_text() == "new\n"

    def saved_meanwhile() -> None:
        raise LocalcoderError("changed on disk")

    with pytest.raises(LocalcoderError):
        write_atomically(kept, b"lost\n", kept.stat(), before_rename=saved_meanwhile)
    assert kept.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["fresh.py", "kept.py"]
