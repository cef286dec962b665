"""Java: imports and the file's own package, class to file by its package path.

The buffer's `package a.b;` and its path give the source root (the folder the package path hangs from); a class
`a.b.C` is a/b/C.java under that root or under its twin (src/main/java <-> src/test/java, and so for any
src/<set>/java), else any file of the repository whose path ends in a/b/C.java. Single imports bind the class
(`import a.b.C`; a nested `a.b.C.D` binds the file of C), wildcard imports every class of the package folder,
static imports the class that holds the member. Classes of the same package need no import: their files are the
scope, looked up by name, and offer their outline on a blank line. The JDK and libraries are not the
repository's code and are left alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from tree_sitter import Tree

from localcoder.context.languages.base import Imported, Request, TreeSitterLanguage
from localcoder.context.languages.definitions import node_text

MAX_PACKAGE_FILES = 400
MAX_LISTED = 20_000


class JavaLanguage(TreeSitterLanguage):
    suffixes = (".java",)
    name = "java"
    import_nodes = frozenset({"import_declaration", "package_declaration"})

    def imports(self, request: Request, tree: Tree, text: str) -> dict[str, Imported]:
        roots = _source_roots(request, tree)
        found: dict[str, Imported] = {}
        for node in tree.root_node.named_children:
            if node.type != "import_declaration" or request.deadline.expired():
                continue
            written = node_text(node)
            static = any(c.type == "static" for c in node.children)
            wildcard = any(c.type == "asterisk" for c in node.children)
            parts = [p for p in node_text(node.named_children[0]).replace(" ", "").split(".") if p]
            if wildcard and not static:
                for file in _package_files(request, roots, parts):
                    found.setdefault(file.stem, Imported(file, file.stem, written))
                continue
            for cut in range(len(parts), 0, -1):  # a.b.C.D (nested) and a.b.C.m (static): the file of C
                file = _class_file(request, roots, parts[:cut])
                if file is not None:
                    if not wildcard:
                        found[parts[-1]] = Imported(file, parts[cut - 1], written)
                    break
        return found

    def scope(self, request: Request, tree: Tree) -> list[Path]:
        roots = _source_roots(request, tree)
        files = _package_files(request, roots, _package(tree)) if roots else []
        return files or _package_files(request, [request.edited.parent], [])


def _package(tree: Tree) -> list[str]:
    for node in tree.root_node.named_children:
        if node.type == "package_declaration" and node.named_children:
            return node_text(node.named_children[-1]).replace(" ", "").split(".")
    return []


def _source_roots(request: Request, tree: Tree) -> list[Path]:
    """The folder the buffer's package path hangs from, and its twins under src/<set>/java."""
    package = _package(tree)
    folder = request.edited.parent
    for part in reversed(package):
        if folder.name != part:
            return [request.edited.parent] if not package else []
        folder = folder.parent
    roots = [folder]
    if folder.name == "java" and folder.parent.parent.name == "src":
        sets = folder.parent.parent
        try:
            roots += sorted(
                Path(e.path) / "java" for e in os.scandir(sets) if e.is_dir() and e.path != str(folder.parent)
            )
        except OSError:
            pass
    return roots


def _class_file(request: Request, roots: list[Path], parts: list[str]) -> Path | None:
    for root in roots:
        found = request.exists(root.joinpath(*parts[:-1], parts[-1] + ".java"))
        if found is not None:
            return found
    tail = "/".join(parts) + ".java"
    listed, _notes = request.repository.listed((".java",), MAX_LISTED)
    for file, relative in listed:
        if relative == tail or relative.endswith("/" + tail):
            return file
    return None


def _package_files(request: Request, roots: list[Path], parts: list[str]) -> list[Path]:
    """The .java files of a package in every root, the listing kept until the folder changes."""
    found = []
    for root in roots:
        folder = root.joinpath(*parts)
        try:
            when = folder.stat().st_mtime_ns
        except OSError:
            continue
        make = lambda folder=folder: _listing(request, folder)  # noqa: E731
        listed = request.repository.stamped("java-package", str(folder), (when, 0), make)
        found += [f for f in listed if f != request.edited]
    return found


def _listing(request: Request, folder: Path) -> list[Path]:
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(".java"))
    except OSError:
        return []
    return [real for name in names[:MAX_PACKAGE_FILES] if (real := request.allowed(folder / name)) is not None]


LANGUAGE = JavaLanguage()
