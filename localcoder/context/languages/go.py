"""Go: imports of the module's own packages (go.mod's module path -> package folders), and the file's own package.

`import "example.com/m/store"` (or `s "example.com/m/store"`) binds the package whole: `store.Open` is `Open` in
any non-test file of the folder store/ under go.mod's folder. Names of the file's own package need no import: a
name used in the buffer that no import binds is looked up in the folder's other files of the same package clause
(test files only from a test file); a package imported with `.` (`import . "example.com/m/store"`) is looked up so
too. On a blank line the imported packages and the own package offer their outline.
Standard-library and third-party packages are not the repository's code and are left alone (vendor/ is skipped).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tree_sitter import Tree

from localcoder.context.languages.base import Imported, Request, TreeSitterLanguage
from localcoder.context.languages.definitions import node_text, walk

_MODULE = re.compile(r"^module\s+(\S+)", re.M)
_PACKAGE = re.compile(r"^package\s+(\w+)", re.M)
MAX_PACKAGE_FILES = 400


class GoLanguage(TreeSitterLanguage):
    suffixes = (".go",)
    name = "go"
    import_nodes = frozenset({"import_declaration", "package_clause"})

    def imports(self, request: Request, tree: Tree, text: str) -> dict[str, Imported]:
        module = _go_module(request)
        if module is None:
            return {}
        folder, path = module
        found: dict[str, Imported] = {}
        for spec in walk(tree.root_node, frozenset({"import_spec"}), frozenset({"function_declaration"})):
            if request.deadline.expired():
                break
            written = node_text(spec.child_by_field_name("path")).strip('"`')
            if written != path and not written.startswith(path + "/"):
                continue
            files = _package_files(request, folder / written[len(path) :].lstrip("/"), test=False)
            if not files:
                continue
            alias = node_text(spec.child_by_field_name("name"))
            if alias in ("_", "."):
                continue  # `_` binds nothing; `.` puts the package's names in scope (`scope`)
            package = alias or _package_name(request, files) or written.rsplit("/", 1)[-1]
            found[package] = Imported(files[0], None, f'import "{written}"', tuple(files))
        return found

    def scope(self, request: Request, tree: Tree) -> list[Path]:
        clause = next((n for n in tree.root_node.named_children if n.type == "package_clause"), None)
        own = node_text(clause.named_children[0]) if clause is not None and clause.named_children else ""
        folder = request.edited.parent
        files = set(_package_files(request, folder, test=request.edited.name.endswith("_test.go")))
        try:
            when = folder.stat().st_mtime_ns
        except OSError:
            return []
        listed = request.repository.stamped("go-package", str(folder), (when, 0), lambda: _listing(request, folder))
        return [f for f, package in listed if f in files and package == own] + self._dotted(request, tree)

    def _dotted(self, request: Request, tree: Tree) -> list[Path]:
        """The files of the module's packages imported with `.`, whose exported names need no qualifier."""
        module = _go_module(request)
        if module is None:
            return []
        folder, path = module
        found: list[Path] = []
        for spec in walk(tree.root_node, frozenset({"import_spec"}), frozenset({"function_declaration"})):
            written = node_text(spec.child_by_field_name("path")).strip('"`')
            if node_text(spec.child_by_field_name("name")) == "." and written.startswith(path + "/"):
                found += _package_files(request, folder / written[len(path) + 1 :], test=False)
        return found


def _go_module(request: Request) -> tuple[Path, str] | None:
    """The folder of the nearest go.mod (inside the repository) and its module path."""
    root = request.repository.real_root
    folder = request.edited.parent
    while folder == root or root in folder.parents:
        text = request.manifest(folder / "go.mod")
        if text is not None:
            match = _MODULE.search(text)
            return (folder, match.group(1)) if match else None
        folder = folder.parent
    return None


def _package_files(request: Request, folder: Path, test: bool) -> list[Path]:
    """The package's .go files in `folder` that may be read, in name order (no test files unless `test`); the
    listing is kept until the folder changes."""
    folder = Path(os.path.realpath(folder))
    root = request.repository.real_root
    if folder != root and root not in folder.parents:
        return []  # `..` in an import path, or a link out: not even the names of what is there are listed
    try:
        when = folder.stat().st_mtime_ns
    except OSError:
        return []
    listed = request.repository.stamped("go-package", str(folder), (when, 0), lambda: _listing(request, folder))
    return [f for f, _ in listed if (test or not f.name.endswith("_test.go")) and f != request.edited]


def _listing(request: Request, folder: Path) -> list[tuple[Path, str]]:
    """Each readable .go file of a folder, with its package clause's name (kept with the listing: a file's package
    changes far more rarely than its text)."""
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(".go"))
    except OSError:
        return []
    found = []
    for name in names[:MAX_PACKAGE_FILES]:
        real = request.repository.allowed(folder / name)
        text = request.text(real) if real is not None else None
        if real is not None and text is not None:
            match = _PACKAGE.search(text)
            found.append((real, match.group(1) if match else ""))
    return found


def _package_name(request: Request, files: list[Path]) -> str:
    for file in files:
        text = request.text(file)
        match = _PACKAGE.search(text or "")
        if match:
            return match.group(1)
    return ""


LANGUAGE = GoLanguage()
