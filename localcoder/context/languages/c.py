"""C and C++: `#include "..."` to the declarations of the headers it names.

A quoted include is looked up as the compiler's `-iquote` would: beside the including file, then in each folder
above it up to the root and in their include/ and src/ folders, then in the -I folders the build's files name
(compile_commands.json, Makefiles, CMakeLists.txt, in the folders from the file's up to the root), then any header
of the repository whose path ends in what was written. Headers included by an included header count too,
two levels deep. Every top-level declaration of those headers is visible unqualified (functions, prototypes, structs,
unions, enums, classes, typedefs, macros, and what namespaces and `extern "C"` blocks hold), so a name the buffer
uses resolves to the first header that declares it, and a blank line offers their outline. `#include <...>` is
looked up in those include/ and src/ folders only, and with a folder in its path (`<brotli/encode.h>`) anywhere:
many projects include their own public headers so; `<stdio.h>` is the system's.

On a blank line a header included by the buffer itself offers its outline twice as strongly as one included by a
header (with the typedef heads of `base` and a typedef's tag and name outlined once, brotli 68% -> 72%). Weighing
each name by its nearest use only, and the buffer's own header (`foo.h` for `foo.c`) above the others, were tried on
brotli and changed nothing or lost (72% -> 62%), so they are not done. Nor, in the fourth round (brotli 85%; 90%
with base.py's weighing of a big header's outline entries by its size, 92% when `API T f(...)`, which C++'s grammar
reads as a name qualified by T, is named f and not `T f`, 95% when the head of `T *` above `f(...)` starts on f's
line): the buffer's own header's outline weighed twice or three times (85%, 88% with the size rule: it wins some
cases and loses as many), each name's uses counted over the whole file (82%, 90%: no gain, and a slower warm call),
an outline weighed by how many of its header's names the buffer already uses (80% to 68%: the big common headers are
the used ones), and words compared without a plural `s` or `ed` (88%) or by their first five or six letters (90%: no
gain).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tree_sitter import Tree

from localcoder.context.languages.base import Imported, Request, TreeSitterLanguage
from localcoder.context.languages.definitions import Definition, node_text, parse, walk

HEADERS = (".h", ".hh", ".hpp", ".hxx", ".h++", ".inl")
SOURCES = (".c", ".cc", ".cpp", ".cxx", ".c++")
INCLUDE_DEPTH = 2
MAX_HEADERS = 64
MAX_LISTED = 20_000
INCLUDE_FOLDERS = ("", "include", "src")
BUILD_FILES = ("compile_commands.json", "Makefile", "makefile", "GNUmakefile", "CMakeLists.txt")
MAX_FLAGGED = 32
_FLAG = re.compile(r'(?:-I|-iquote|-isystem)\s*(?:",\s*")?([^\s"\\]+)')
_CMAKE = re.compile(r"(?:target_)?include_directories\s*\(([^)]*)\)", re.I)
_CMAKE_DIR = re.compile(r"^\$\{(?:CMAKE_CURRENT_SOURCE_DIR|PROJECT_SOURCE_DIR|CMAKE_SOURCE_DIR)\}/?")
_CMAKE_WORDS = frozenset({"PUBLIC", "PRIVATE", "INTERFACE", "SYSTEM", "BEFORE", "AFTER"})
_INCLUDES = frozenset({"preproc_include"})
_NOT_INTO = frozenset({"function_definition", "compound_statement"})


class CLanguage(TreeSitterLanguage):
    suffixes = (*SOURCES, *HEADERS)
    window_families = ((".c", ".h"), (*SOURCES[1:], *HEADERS))
    name = "c"
    import_nodes = frozenset({"preproc_include"})
    scope_why = "#include"

    def grammar(self, path: Path) -> str:
        return "c" if path.suffix.lower() == ".c" else "cpp"  # a .h may be either: C++'s grammar reads both

    def imports(self, request: Request, tree: Tree, text: str) -> dict[str, Imported]:
        return {}  # a header's names are not bound by the include: they are in scope

    def scope(self, request: Request, tree: Tree) -> list[Path]:
        found: list[Path] = []
        direct = request.known.setdefault("c-direct", set())  # the headers the buffer includes itself
        level: list[tuple[Path, Tree | None]] = [(request.edited, tree)]
        for _ in range(INCLUDE_DEPTH):
            deeper = []
            for file, parsed in level:
                if parsed is not None:
                    included = _includes(request, file, parsed)
                else:
                    included = self._included_by(request, file)
                for header in included:
                    if header not in found and header != request.edited and len(found) < MAX_HEADERS:
                        found.append(header)
                        deeper.append(header)
                        if parsed is not None:
                            direct.add(header)
                if request.deadline.expired():
                    return found
            level = [(h, None) for h in deeper]
        return found

    def scope_weight(self, request: Request, file: Path) -> float:
        """A header the buffer includes itself offers its outline twice as strongly as one included by a header: a
        file includes what it uses, and brotli's encoder reaches 40 headers, most of them through others."""
        weight = super().scope_weight(request, file)
        return weight if file in request.known.get("c-direct", ()) else weight / 2

    def _resolve(
        self, request: Request, chain: list[str], target: Imported | None, scope: dict[str, Path]
    ) -> tuple[Path, Definition] | None:
        hit = super()._resolve(request, chain, target, scope)
        if hit is None and len(chain) > 1:  # C++'s `ns::Name`: a namespace's names are kept unqualified
            hit = super()._resolve(request, chain[-1:], target, scope)
        return hit

    def _included_by(self, request: Request, header: Path) -> list[Path]:
        """The headers a header includes, kept per version of it (its size and mtime: one stat on a warm call; they
        were kept from the second call on, and brotli's first warm call parsed its 28 headers again: 30 ms, not
        14), or read anew while it is open in the editor."""
        if header in request.overlay:
            return self._parsed_includes(request, header)
        try:
            stat = os.stat(header)
        except OSError:
            return []
        make = lambda: self._parsed_includes(request, header)  # noqa: E731
        return request.repository.stamped("c-includes", str(header), (stat.st_size, stat.st_mtime_ns), make)

    def _parsed_includes(self, request: Request, header: Path) -> list[Path]:
        text = request.text(header)
        if text is None:
            return []
        tree = parse(self.grammar(header), text)
        return _includes(request, header, tree) if tree is not None else []


def _includes(request: Request, file: Path, tree: Tree) -> list[Path]:
    found = []
    for node in walk(tree.root_node, _INCLUDES, _NOT_INTO):
        path = node.child_by_field_name("path")
        if path is None or path.type not in ("string_literal", "system_lib_string"):
            continue
        header = _header(request, file, node_text(path)[1:-1], quoted=path.type == "string_literal")
        if header is not None:
            found.append(header)
    return found


def _header(request: Request, including: Path, written: str, quoted: bool) -> Path | None:
    """The repository's header an include names; `<...>` only from include folders, or a path with a folder in it
    (`<brotli/encode.h>`): `<stdio.h>` is the system's even where the repository has a stdio.h of its own."""
    root = request.repository.real_root
    folder = including.parent
    while folder == root or root in folder.parents:
        for base in INCLUDE_FOLDERS if quoted else INCLUDE_FOLDERS[1:]:
            real = request.allowed(Path(os.path.normpath(folder / base / written)))
            if real is not None:
                return real
        folder = folder.parent
    for flagged in _include_flags(request, including):  # -I folders of the build's files
        real = request.allowed(Path(os.path.normpath(flagged / written)))
        if real is not None:
            return real
    if not quoted and "/" not in written:
        return None
    tail = "/" + written.lstrip("./")
    listed, _notes = request.repository.listed(HEADERS, MAX_LISTED)
    for file, relative in listed:
        if ("/" + relative).endswith(tail):
            return file
    return None


def _include_flags(request: Request, including: Path) -> list[Path]:
    """The include folders that the build files in the including file's folder and above it (up to the root) name:
    `-I`/`-iquote`/`-isystem` in compile_commands.json (where clangd looks for it: build/ is skipped as generated,
    as everywhere in the context) and Makefiles, CMake's
    `include_directories` and `target_include_directories`; each read MANIFEST_BYTES at most and kept per version;
    folders outside the root, and those written with a variable, are left out. MAX_FLAGGED at most."""
    key = ("c-flags", including.parent)
    if key in request.known:
        return request.known[key]  # type: ignore[no-any-return]
    root = request.repository.real_root
    found: list[Path] = []
    folder = including.parent
    while (folder == root or root in folder.parents) and len(found) < MAX_FLAGGED:
        for name in BUILD_FILES:
            text = request.manifest(folder / name)
            if text is None:
                continue
            for written in _flagged(name, text):  # relative: to the folder of the build file (or of build/)
                place = Path(os.path.normpath(written if os.path.isabs(written) else folder / written))
                if (place == root or root in place.parents) and place not in found:
                    found.append(place)
        folder = folder.parent
    request.known[key] = found[:MAX_FLAGGED]
    return request.known[key]  # type: ignore[no-any-return]


def _flagged(name: str, text: str) -> list[str]:
    if name == "CMakeLists.txt":
        words = [w for args in _CMAKE.findall(text) for w in args.replace('"', " ").split()]
        words = [_CMAKE_DIR.sub("", w) for w in words if w not in _CMAKE_WORDS]
    else:
        words = _FLAG.findall(text)
    return [w for w in words if "$" not in w and "(" not in w and w]


LANGUAGE = CLanguage()
