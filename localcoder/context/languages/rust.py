"""Rust: `use` trees and paths within the crate, to the items they name.

The crate is the nearest Cargo.toml's folder; its modules are files under src/: `a::b` is src/a/b.rs or
src/a/b/mod.rs, the crate itself src/lib.rs (or main.rs). A `use` tree is read whole: groups, `as`, `self`, globs;
its path starts at `crate::`, `self::`, `super::` (repeatable), the crate's own name, or a module declared by
`mod x;` (2018 paths), else the crate root (2015 paths); other crates are not the repository's code. A path names
a module while a file exists for it, then the item in the last module: `use crate::a::{self, B as C}` binds `a`
whole and `C` to `a::B`. Paths in code resolve the same way (`crate::a::f()`, `a::f()` after `use crate::a`).
`pub use` re-exports (globs included) are followed; glob imports make the module's names visible unqualified.
`#[path = "x.rs"] mod m;` is followed (relative to the declaring file's folder), and an inline `mod m { ... }`'s
items are `m::item` of its file: `use crate::m::f`, `m::f()` after `use crate::m`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tree_sitter import Node, Tree

from localcoder.context.languages.base import Imported, Request, Summary, TreeSitterLanguage
from localcoder.context.languages.definitions import Definition, node_text

_PACKAGE_NAME = re.compile(r'^\s*name\s*=\s*"([^"]+)"', re.M)
_PATH = re.compile(r'^#\[\s*path\s*=\s*"([^"]+)"\s*\]$')
ROOT_FILES = ("lib.rs", "main.rs")

Use = tuple[list[str], str]  # the path as written, and the name it binds ("*" for a glob)


def use_tree(node: Node | None, prefix: list[str]) -> list[Use]:
    """The bindings of a `use` tree: `a::{self, b as c, d::*}` -> ([a], a), ([a, b], c), ([a, d], *)."""
    if node is None:
        return []
    kind = node.type
    if kind in ("identifier", "crate", "self", "super", "scoped_identifier", "type_identifier"):
        path = prefix + _segments(node)
        if path and path[-1] == "self":
            path = path[:-1]
        return [(path, path[-1])] if path else []
    if kind == "use_as_clause":
        path = prefix + _segments(node.child_by_field_name("path"))
        if path and path[-1] == "self":
            path = path[:-1]
        return [(path, node_text(node.child_by_field_name("alias")))] if path else []
    if kind == "use_wildcard":
        inner = node.named_children[0] if node.named_children else None
        return [(prefix + _segments(inner), "*")]
    if kind == "scoped_use_list":
        base = prefix + _segments(node.child_by_field_name("path"))
        return use_tree(node.child_by_field_name("list"), base)
    if kind == "use_list":
        return [u for child in node.named_children for u in use_tree(child, prefix)]
    return []


def _segments(node: Node | None) -> list[str]:
    return [s for s in re.split(r"::", node_text(node).replace(" ", "")) if s] if node is not None else []


class RustLanguage(TreeSitterLanguage):
    suffixes = (".rs",)
    name = "rust"
    import_nodes = frozenset({"use_declaration", "mod_item", "extern_crate_declaration"})
    scope_why = "a glob import"

    def imports(self, request: Request, tree: Tree, text: str) -> dict[str, Imported]:
        crate = _crate(request, request.edited)
        if crate is None:
            return {}
        here = _module_parts(crate, request.edited)
        found: dict[str, Imported] = {}
        for word, parts in (("crate", []), ("self", here), ("super", here[:-1])):
            file = self._module_file(request, crate, parts)
            if file is not None:
                found[word] = Imported(file, None, f"{word}::")
        for node in tree.root_node.named_children:
            if request.deadline.expired():
                break
            if node.type == "mod_item" and node.child_by_field_name("body") is None:
                name = node_text(node.child_by_field_name("name"))
                written = _path_attribute(node)
                file = request.exists(_beside(request.edited, written)) if written else None
                file = file or self._module_file(request, crate, here + [name])
                if file is not None:
                    found[name] = Imported(file, None, f"mod {name};")
            elif node.type == "use_declaration":
                for path, bound in use_tree(node.child_by_field_name("argument"), []):
                    target = self._target(request, crate, here, path, node_text(node))
                    if target is not None and bound != "*":
                        found[bound] = target
        return found

    def scope(self, request: Request, tree: Tree) -> list[Path]:
        crate = _crate(request, request.edited)
        if crate is None:
            return []
        here = _module_parts(crate, request.edited)
        globs = []
        for node in tree.root_node.named_children:
            if node.type == "use_declaration":
                for path, bound in use_tree(node.child_by_field_name("argument"), []):
                    target = self._target(request, crate, here, path, "") if bound == "*" else None
                    if target is not None and target.name is None:
                        globs.append(target.file)
        return globs

    def member(self, request: Request, target: Imported, rest: list[str]) -> tuple[Path, Definition] | None:
        crate = _crate(request, target.file)
        if crate is None:
            return self.lookup(request, target.file, rest[0])
        found = self._target(request, crate, _module_parts(crate, target.file), ["self", *rest], "")
        if found is None or found.name is None:
            return None
        return self.lookup(request, found.file, found.name)

    def lookup(self, request: Request, file: Path, name: str, depth: int = 0) -> tuple[Path, Definition] | None:
        """`m::f` in a file is f of its inline `mod m {...}`; where there is none, `Kind::A` is the type Kind (but
        `m::x` is not the module m: nom's `crate::lib::std::ops` re-exports the standard library)."""
        hit = super().lookup(request, file, name, depth)
        while hit is None and "::" in name:
            name = name.rsplit("::", 1)[0]
            hit = super().lookup(request, file, name, depth)
            summary = self.summary(request, hit[0]) if hit is not None else None
            if summary is not None and any(key.startswith(name + "::") for key in summary.definitions):
                return None
        return hit

    def _resolve(
        self, request: Request, chain: list[str], target: Imported | None, scope: dict[str, Path]
    ) -> tuple[Path, Definition] | None:
        if target is not None and target.name is not None and len(chain) > 1:  # `m::f()` after `use crate::m`
            hit = super().lookup(request, target.file, "::".join([target.name, *chain[1:]]))  # an inline mod's f
            if hit is not None:
                return hit
        return super()._resolve(request, chain, target, scope)

    def reexports(self, request: Request, file: Path, tree: Tree, summary: Summary) -> None:
        for node in tree.root_node.named_children:  # `mod m;` and `#[path = "x.rs"] mod m;`
            if node.type == "mod_item" and node.child_by_field_name("body") is None:
                summary.modules[node_text(node.child_by_field_name("name"))] = _path_attribute(node)
        crate = _crate(request, file)
        if crate is None:
            return
        here = _module_parts(crate, file)
        for node in tree.root_node.named_children:
            public = any(c.type == "visibility_modifier" for c in node.children)
            if node.type != "use_declaration" or not public:
                continue
            for path, bound in use_tree(node.child_by_field_name("argument"), []):
                target = self._target(request, crate, here, path, node_text(node))
                if target is None:
                    continue
                if bound == "*" and target.name is None:
                    summary.stars.append(target.file)
                elif bound != "*":
                    summary.exports[bound] = target

    def _target(self, request: Request, crate: tuple[Path, str], here: list[str], path: list[str], written: str):  # noqa: ANN202
        """A `use` path from module `here` as the module file it names (name None) or an item in one."""
        if not path:
            return None
        first, rest = path[0], path[1:]
        if first == "crate" or first == crate[1]:
            base: list[str] = []
        elif first == "self":
            base = list(here)
        elif first == "super":
            base = here[:-1]
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        elif self._module_file(request, crate, here + [first]) is not None:
            base, rest = here + [first], rest
        elif self._module_file(request, crate, [first]) is not None:
            base, rest = [first], rest
        else:
            return None
        module = self._module_file(request, crate, base)
        while rest and module is not None:
            deeper = self._module_file(request, crate, base + [rest[0]])
            if deeper is None:  # an item of the module, or of an inline module in it (`m::f`; see `lookup`)
                return Imported(module, "::".join(rest), written)
            base, rest, module = base + [rest[0]], rest[1:], deeper
        return Imported(module, None, written) if module is not None else None

    def _module_file(self, request: Request, crate: tuple[Path, str], parts: list[str]) -> Path | None:
        key = ("module", crate[0], tuple(parts))
        if key not in request.known:
            request.known[key] = self._find_module_file(request, crate, parts)
        return request.known[key]  # type: ignore[no-any-return]

    def _find_module_file(self, request: Request, crate: tuple[Path, str], parts: list[str]) -> Path | None:
        source = crate[0] / "src"
        if not parts:
            tries = [source / name for name in ROOT_FILES]
        else:
            tries = [source.joinpath(*parts[:-1], parts[-1] + ".rs"), source.joinpath(*parts, "mod.rs")]
        for file in tries:
            real = request.allowed(file)
            if real is not None:
                return real
        parent = self._module_file(request, crate, parts[:-1]) if parts else None
        summary = self.summary(request, parent) if parent is not None else None
        if summary is None or parts[-1] not in summary.modules:
            return None
        written = summary.modules[parts[-1]]  # `#[path = "x.rs"] mod m;`, or `mod m;` in a file reached so
        for file in [_beside(parent, written)] if written else [_beside(parent, f"{parts[-1]}.rs")]:
            real = request.allowed(file)
            if real is not None:
                return real
        return None


def _path_attribute(node: Node) -> str:
    """The `x.rs` of `#[path = "x.rs"]` above a `mod m;`, else ""."""
    above = node.prev_named_sibling
    while above is not None and above.type in ("attribute_item", "line_comment", "block_comment"):
        match = _PATH.search(node_text(above)) if above.type == "attribute_item" else None
        if match:
            return match.group(1)
        above = above.prev_named_sibling
    return ""


def _beside(file: Path, written: str) -> Path:
    """A `#[path]` is relative to the folder of the file that declares the module."""
    return Path(os.path.normpath(file.parent / written))


def _crate(request: Request, file: Path) -> tuple[Path, str] | None:
    """The folder of the Cargo.toml above `file` (inside the repository) and the crate's name as code spells it."""
    key = ("crate", file.parent)
    if key not in request.known:
        request.known[key] = _find_crate(request, file)
    return request.known[key]  # type: ignore[no-any-return]


def _find_crate(request: Request, file: Path) -> tuple[Path, str] | None:
    root = request.repository.real_root
    folder = file.parent
    while folder == root or root in folder.parents:
        text = request.manifest(folder / "Cargo.toml")
        if text is not None and (folder / "src").is_dir():
            match = _PACKAGE_NAME.search(text)
            return folder, (match.group(1).replace("-", "_") if match else "")
        folder = folder.parent
    return None


def _module_parts(crate: tuple[Path, str], file: Path) -> list[str]:
    """The module path of a file under src/: src/a/b.rs and src/a/b/mod.rs -> [a, b]; lib.rs -> []."""
    try:
        relative = file.relative_to(crate[0] / "src")
    except ValueError:
        return []
    parts = list(relative.parts)
    if parts[-1] in ("mod.rs", *ROOT_FILES):
        parts = parts[:-1]
    else:
        parts[-1] = parts[-1][: -len(".rs")]
    return [] if parts[:1] == ["bin"] else parts


LANGUAGE = RustLanguage()
