"""Python modules of a repository: where an import leads, what a module defines, re-exports and outlines.

Imports resolve like Python's: relative to the file's package, or absolute from the root, `src/` or the file's top
package; re-exports through `__init__` are followed MAX_REEXPORT_DEPTH deep, star imports each module once per
look-up (fifteen modules that star-import each other used to cost 55 s for one `context` call: every path between
them was walked). A module is parsed with `ast` once per version of its text; one that does not parse contributes
its top-level `def` and `class` lines found by their shape.
"""

from __future__ import annotations

import ast
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from localcoder.context.python_buffer import BufferView, read_part
from localcoder.context.repository import Repository

T = TypeVar("T")

MAX_REEXPORT_DEPTH = 4
FRESH_SECONDS = 2.0
MAX_FRESH = 50_000
_FRESH: dict[tuple[object, ...], tuple[float, object]] = {}
OUTLINE_SIGNATURE_LINES = 2  # a long signature shows its start; the definition shows the rest
_TOP_LEVEL_DEF = re.compile(r"^(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.M)


@dataclass(frozen=True)
class Target:
    """What an imported name stands for: a module file, or a name inside one."""

    module: Path  # the module's file (a package's __init__.py)
    name: str | None = None  # None: the module itself
    statement: str = ""  # the import as written, for `why`
    type_checking: bool = False  # imported only under `if TYPE_CHECKING:`
    whole: Path | None = None  # `import a.b` binds a, and brings a.b: this is a.b's file
    line: int = 0  # where the import is (1-based; 0: not in the edited buffer)


@dataclass(frozen=True)
class Definition:
    path: Path  # resolved file
    name: str
    start_line: int  # 1-based, decorators included
    head_end: int  # last line of the signature and docstring
    end_line: int


@dataclass
class ModuleSummary:
    definitions: dict[str, Definition]
    imports: dict[str, Target]
    star: list[Path]
    outline: list[tuple[str, int, int]] = field(default_factory=list)  # public top-level name, its signature lines
    starts: dict[int, int] = field(default_factory=dict)  # an outline entry's line -> its definition's first line


class PythonResolver:
    """Resolution for one edited file: its imports, and the repository's modules it reaches."""

    def __init__(self, repository: Repository, path: Path, overlay: dict[Path, str] | None = None) -> None:
        self.repository = repository
        self.path = Path(os.path.realpath(path))
        self.roots = _source_roots(repository, self.path)
        self.overlay = overlay or {}  # open documents (resolved path -> text): their text wins over the disk
        self.texts: dict[Path, str | None] = {}  # read once per request
        self.summaries: dict[Path, ModuleSummary | None] = {}

    def allowed(self, path: Path) -> Path | None:
        """`Repository.allowed`, remembered for FRESH_SECONDS: every keystroke asks about the same modules."""
        return _fresh(("allowed", self.repository.real_root, path), lambda: self.repository.allowed(path))

    def text_of(self, module: Path) -> str | None:
        if module not in self.texts:
            if module in self.overlay and self.allowed(module) is not None:
                self.texts[module] = self.overlay[module]
            else:
                self.texts[module] = self.repository.read(module)
        return self.texts[module]

    def buffer_imports(self, view: BufferView) -> dict[str, Target]:
        runtime = self._imports([(i.statement, False, i.line) for i in view.imports if not i.type_checking], self.path)
        checking = self._imports([(i.statement, True, i.line) for i in view.imports if i.type_checking], self.path)
        return {**checking, **runtime}  # a name imported both ways is a run-time name

    def module_of(self, chain: list[str], imports: dict[str, Target]) -> tuple[Path, int] | None:
        """The module a dotted use reaches through modules only, and how many of its parts that took."""
        target = imports.get(chain[0])
        if target is None:
            return None
        module = target.module
        if target.name is not None:
            sub = _submodule(module, target.name)
            if sub is None or self.allowed(sub) is None:
                return None
            module = sub
        used = 1
        for part in chain[1:]:
            sub = _submodule(module, part)
            if sub is None or self.allowed(sub) is None:
                break
            module, used = sub, used + 1
        return module, used

    def resolve(self, chain: list[str], imports: dict[str, Target]) -> tuple[Definition, Target] | None:
        """The definition a dotted use (`f`, `z.f`, `x.y.f`) names, when it comes from another module here."""
        target = imports.get(chain[0])
        if target is None:  # perhaps from a star import
            seen: set[Path] = set()
            for key, star in imports.items():
                found = self.definition(star.module, chain[0], seen=seen) if key.startswith("*") else None
                if found is not None:
                    return found, star
            return None
        reached = self.module_of(chain, imports)
        if reached is None:  # a name inside the module imported from
            found = self.definition(target.module, target.name or "")
            return (found, target) if found else None
        module, used = reached
        if used == len(chain):
            return None  # a module, not a definition
        found = self.definition(module, chain[used])
        return (found, target) if found else None

    def definition(self, module: Path, name: str, depth: int = 0, seen: set[Path] | None = None) -> Definition | None:
        """`name` in `module`: defined there, re-exported (depth-limited), or star-imported (each module once)."""
        seen = set() if seen is None else seen
        if module in seen or depth > MAX_REEXPORT_DEPTH:
            return None
        seen.add(module)
        summary = self.summary(module)
        if summary is None:
            return None
        if name in summary.definitions:
            return summary.definitions[name]
        target = summary.imports.get(name)
        if target is not None:
            if target.name is None:
                return None
            return self.definition(target.module, target.name, depth + 1)
        for star in summary.star:
            found = self.definition(star, name, depth, seen)  # a star chain is bounded by `seen`, not by depth
            if found is not None:
                return found
        return None

    def summary(self, module: Path) -> ModuleSummary | None:
        if module not in self.summaries:
            text = self.text_of(module)
            if text is None:
                self.summaries[module] = None
            elif module in self.overlay:
                self.summaries[module] = self._summarize(module, text)
            else:
                make = lambda: self._summarize(module, text)  # noqa: E731
                self.summaries[module] = self.repository.memo(("python", module), make)
        return self.summaries[module]

    def relative(self, path: Path) -> str:
        return _fresh(("relative", self.repository.real_root, path), lambda: self.repository.relative(path))

    def _summarize(self, module: Path, text: str) -> ModuleSummary:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            imports = self._imports([(s, False, 0) for _, s, _ in read_part(text, 0, len(text)).imports], module)
            shaped = _shaped_definitions(module, text)
            outline = [(n, d.start_line, d.start_line) for n, d in shaped.items() if _public(n)]
            return ModuleSummary(shaped, imports, [], outline)
        definitions: dict[str, Definition] = {}
        statements: list[tuple[ast.stmt, bool, int]] = []
        outline: list[tuple[str, int, int]] = []
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                statements.append((node, False, 0))
                continue
            for name, definition in _definitions_of(module, node):
                definitions[name] = definition
            outline += _outline_of(node)
        imports = self._imports(statements, module)
        star = [t.module for key, t in imports.items() if key.startswith("*")]
        named = {k: v for k, v in imports.items() if not k.startswith("*")}
        starts = {line: definitions[name].start_line for name, line, _ in outline if name in definitions}
        return ModuleSummary(definitions, named, star, outline, starts)

    def _imports(self, statements: list[tuple[ast.stmt, bool, int]], module: Path) -> dict[str, Target]:
        found: dict[str, Target] = {}
        for node, checking, line in statements:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    written = ast.unparse(ast.Import([alias]))
                    parts = alias.name.split(".")
                    if alias.asname:  # import x.y as z: z is x.y
                        file = self._absolute(parts)
                        if file is not None:
                            found[alias.asname] = Target(file, None, written, checking, None, line)
                    else:  # import x.y: x is bound; x.y.f resolves through it
                        file = self._absolute(parts[:1])
                        if file is not None:
                            whole = self._absolute(parts) if len(parts) > 1 else file
                            found[parts[0]] = Target(file, None, written, checking, whole, line)
            elif isinstance(node, ast.ImportFrom):
                parts = node.module.split(".") if node.module else []
                base = self._relative(module, node.level, parts) if node.level else self._absolute(parts)
                if base is None:
                    continue
                for alias in node.names:
                    written = ast.unparse(ast.ImportFrom(node.module, [alias], node.level))
                    if alias.name == "*":
                        found[f"*{len(found)}"] = Target(base, None, written, checking, None, line)
                    else:
                        found[alias.asname or alias.name] = Target(base, alias.name, written, checking, None, line)
        return found

    def _absolute(self, parts: list[str]) -> Path | None:
        for base in self.roots:
            file = _module_file(base, parts)
            if file is not None and self.allowed(file) is not None:
                return file
        root = self.repository.real_root
        if parts and parts[0] == root.name and (root / "__init__.py").is_file():
            file = _module_file(root, parts[1:])  # the root is itself the package (an installed one, say)
            if file is not None and self.allowed(file) is not None:
                return file
        return None

    def _relative(self, module: Path, level: int, parts: list[str]) -> Path | None:
        package = module.parent
        for _ in range(level - 1):
            package = package.parent
        file = _module_file(package, parts)
        return file if file is not None and self.allowed(file) is not None else None


def _outline_of(node: ast.stmt) -> list[tuple[str, int, int]]:
    """A top-level statement's entry in its module's outline: a public name and the lines of its signature."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        if not _public(node.name):
            return []
        end = max(node.lineno, node.body[0].lineno - 1) if node.body else node.lineno
        return [(node.name, node.lineno, min(end, node.lineno + OUTLINE_SIGNATURE_LINES - 1))]
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    names = [t.id for t in targets if isinstance(t, ast.Name) and _public(t.id)]
    return [(names[0], node.lineno, node.lineno)] if names else []


def _definitions_of(module: Path, node: ast.stmt) -> list[tuple[str, Definition]]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        end = node.end_lineno or node.lineno
        first = node.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            head = first.end_lineno or first.lineno
        else:
            head = max(first.lineno - 1, node.lineno)
        return [(node.name, Definition(module, node.name, start, min(head, end), end))]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    end = node.end_lineno or node.lineno
    return [(t.id, Definition(module, t.id, node.lineno, end, end)) for t in targets if isinstance(t, ast.Name)]


def _shaped_definitions(module: Path, text: str) -> dict[str, Definition]:
    """Top-level defs and classes of a module that does not parse, each up to the next top-level line."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line[:1].strip() and not line.startswith(("#", ")", "]", "}"))]
    found: dict[str, Definition] = {}
    for position, index in enumerate(starts):
        match = _TOP_LEVEL_DEF.match(lines[index])
        if match:
            end = (starts[position + 1] if position + 1 < len(starts) else len(lines)) - 1
            while end > index and not lines[end].strip():
                end -= 1
            found[match.group(1)] = Definition(module, match.group(1), index + 1, index + 1, end + 1)
    return found


def _fresh(key: tuple[object, ...], make: Callable[[], T]) -> T:
    """`make()`, remembered for FRESH_SECONDS (what the file system says of a path: a new file is seen that late)."""
    now = time.monotonic()
    kept = _FRESH.get(key)
    if kept is not None and now - kept[0] < FRESH_SECONDS:
        return kept[1]  # type: ignore[no-any-return]
    value = make()
    if len(_FRESH) > MAX_FRESH:
        _FRESH.clear()
    _FRESH[key] = (now, value)
    return value


def _module_file(base: Path, parts: list[str]) -> Path | None:
    return _fresh(("module", base, *parts), lambda: _find_module_file(base, parts))


def _find_module_file(base: Path, parts: list[str]) -> Path | None:
    folder = base.joinpath(*parts)
    if (folder / "__init__.py").is_file():
        return folder / "__init__.py"
    if parts and folder.with_name(parts[-1] + ".py").is_file():
        return folder.with_name(parts[-1] + ".py")
    if parts and folder.with_name(parts[-1] + ".pyi").is_file():
        return folder.with_name(parts[-1] + ".pyi")
    return None


def _submodule(module: Path, name: str) -> Path | None:
    """`name` as a submodule of the package whose __init__ is `module`."""
    if module.name not in ("__init__.py", "__init__.pyi"):
        return None
    return _module_file(module.parent, [name])


def _source_roots(repository: Repository, path: Path) -> list[Path]:
    root = repository.real_root
    roots = [root, root / "src"]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder != root and root in folder.parents:
        folder = folder.parent
    if folder not in roots and (folder == root or root in folder.parents):
        roots.append(folder)
    return roots


def _public(name: str) -> bool:
    """Worth an outline's line: not private; `__version__` and the like are, `__all__` is not."""
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__") and name != "__all__")
