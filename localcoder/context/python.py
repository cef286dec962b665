"""Python: which definitions in other modules of the repository do the names near the cursor come from.

The edited buffer usually does not parse (the line being typed is incomplete), so its imports are read from the
import statements alone, each parsed on its own, and its own bindings (which shadow an import) by their shape.
Imports resolve like Python's: relative to the file's package, or absolute from the root, `src/` or the file's
top package; `from x import y`, `from . import x`, `import x.y as z` followed by `z.f`, re-exports through
`__init__` (depth-limited) and star imports. Other modules are parsed with `ast`; one that does not parse
contributes its top-level `def` and `class` lines found by their shape.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path

from localcoder.context.repository import Repository
from localcoder.context.resolver import Deadline, Found, register

MAX_REEXPORT_DEPTH = 4
MAX_SCAN_CHARS = 1 << 20  # a larger buffer is read around the cursor only
SCAN_LINES_ABOVE = 2000
SCAN_LINES_BELOW = 500
_IMPORT_START = re.compile(r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+import\b|import[ \t]+\w)")
_CHAIN = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_LOCAL_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.M)
_MODULE_ASSIGN = re.compile(r"^(\w+)[ \t]*(?::[^=\n]*)?=(?!=)", re.M)
_TOP_LEVEL_DEF = re.compile(r"^(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.M)


@dataclass(frozen=True)
class Target:
    """What an imported name stands for: a module file, or a name inside one."""

    module: Path  # the module's file (a package's __init__.py)
    name: str | None = None  # None: the module itself
    statement: str = ""  # the import as written, for `why`


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


class PythonResolver:
    """Resolution for one edited file: its imports, and the repository's modules it reaches."""

    def __init__(self, repository: Repository, path: Path, overlay: dict[Path, str] | None = None) -> None:
        self.repository = repository
        self.path = Path(os.path.realpath(path))
        self.roots = _source_roots(repository, self.path)
        self.overlay = overlay or {}  # open documents (resolved path -> text): their text wins over the disk

    def text_of(self, module: Path) -> str | None:
        if module in self.overlay and self.repository.allowed(module) is not None:
            return self.overlay[module]
        return self.repository.read(module)

    def buffer_imports(self, text: str, cursor_line: int) -> dict[str, Target]:
        return self._imports(_import_statements(text, cursor_line), self.path)

    def resolve(self, chain: list[str], imports: dict[str, Target]) -> tuple[Definition, Target] | None:
        """The definition a dotted use (`f`, `z.f`, `x.y.f`) names, when it comes from another module here."""
        target = imports.get(chain[0])
        if target is None:  # perhaps from a star import
            for key, star in imports.items():
                found = self.definition(star.module, chain[0]) if key.startswith("*") else None
                if found is not None:
                    return found, star
            return None
        module, rest = target.module, chain[1:]
        if target.name is not None:
            sub = _submodule(module, target.name)
            if sub is None or self.repository.allowed(sub) is None:
                found = self.definition(module, target.name)
                return (found, target) if found else None
            module = sub
        while rest:
            sub = _submodule(module, rest[0])
            if sub is None or self.repository.allowed(sub) is None:
                found = self.definition(module, rest[0])
                return (found, target) if found else None
            module, rest = sub, rest[1:]
        return None  # a module, not a definition

    def definition(self, module: Path, name: str, depth: int = 0) -> Definition | None:
        summary = self.summary(module)
        if summary is None or depth > MAX_REEXPORT_DEPTH:
            return None
        if name in summary.definitions:
            return summary.definitions[name]
        target = summary.imports.get(name)
        if target is not None:
            if target.name is None:
                return None
            return self.definition(target.module, target.name, depth + 1)
        for star in summary.star:
            found = self.definition(star, name, depth + 1)
            if found is not None:
                return found
        return None

    def summary(self, module: Path) -> ModuleSummary | None:
        text = self.text_of(module)
        if text is None:
            return None
        if module in self.overlay:
            return self._summarize(module, text)
        return self.repository.memo(("python", module), lambda: self._summarize(module, text))

    def _summarize(self, module: Path, text: str) -> ModuleSummary:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            imports = self._imports(_import_statements(text, 0), module)
            return ModuleSummary(_shaped_definitions(module, text), imports, [])
        definitions: dict[str, Definition] = {}
        statements: list[ast.stmt] = []
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                statements.append(node)
                continue
            for name, definition in _definitions_of(module, node):
                definitions[name] = definition
        imports = self._imports(statements, module)
        star = [t.module for key, t in imports.items() if key.startswith("*")]
        return ModuleSummary(definitions, {k: v for k, v in imports.items() if not k.startswith("*")}, star)

    def _imports(self, statements: list[ast.stmt], module: Path) -> dict[str, Target]:
        found: dict[str, Target] = {}
        for node in statements:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    written = ast.unparse(ast.Import([alias]))
                    parts = alias.name.split(".")
                    if alias.asname:  # import x.y as z: z is x.y
                        file = self._absolute(parts)
                        if file is not None:
                            found[alias.asname] = Target(file, None, written)
                    else:  # import x.y: x is bound; x.y.f resolves through it
                        file = self._absolute(parts[:1])
                        if file is not None:
                            found[parts[0]] = Target(file, None, written)
            elif isinstance(node, ast.ImportFrom):
                parts = node.module.split(".") if node.module else []
                base = self._relative(module, node.level, parts) if node.level else self._absolute(parts)
                if base is None:
                    continue
                for alias in node.names:
                    written = ast.unparse(ast.ImportFrom(node.module, [alias], node.level))
                    if alias.name == "*":
                        found[f"*{len(found)}"] = Target(base, None, written)
                    else:
                        found[alias.asname or alias.name] = Target(base, alias.name, written)
        return found

    def _absolute(self, parts: list[str]) -> Path | None:
        for base in self.roots:
            file = _module_file(base, parts)
            if file is not None and self.repository.allowed(file) is not None:
                return file
        root = self.repository.real_root
        if parts and parts[0] == root.name and (root / "__init__.py").is_file():
            file = _module_file(root, parts[1:])  # the root is itself the package (an installed one, say)
            if file is not None and self.repository.allowed(file) is not None:
                return file
        return None

    def _relative(self, module: Path, level: int, parts: list[str]) -> Path | None:
        package = module.parent
        for _ in range(level - 1):
            package = package.parent
        file = _module_file(package, parts)
        return file if file is not None and self.repository.allowed(file) is not None else None


def scan_view(text: str, offset: int) -> tuple[str, str, int]:
    """What to read a buffer's imports from, the lines around the cursor to read its names from, and the cursor's
    line in those: the whole buffer when it is small; else its first lines and a window around the cursor, so a
    50 MB file costs no more than a large one."""
    if len(text) <= MAX_SCAN_CHARS:
        return text, text, text.count("\n", 0, offset) + 1
    head_end = _line_boundary(text, 0, SCAN_LINES_ABOVE, forward=True)
    start = _line_boundary(text, offset, SCAN_LINES_ABOVE, forward=False)
    end = _line_boundary(text, offset, SCAN_LINES_BELOW, forward=True)
    return text[:head_end], text[start:end], text.count("\n", start, offset) + 1


def _line_boundary(text: str, offset: int, lines: int, forward: bool) -> int:
    position = offset
    for _ in range(lines):
        found = text.find("\n", position + 1) if forward else text.rfind("\n", 0, position)
        if found < 0:
            return len(text) if forward else 0
        position = found
    return position if forward else position + 1


def names_near(text: str, cursor_line: int) -> list[tuple[list[str], int]]:
    """Every dotted name in the buffer outside import statements, with its line's distance from the cursor
    (negative above). The cursor's own line counts as distance 0."""
    found = []
    for number, line in enumerate(text.split("\n"), 1):
        if _IMPORT_START.match(line):
            continue
        code = line.split("#", 1)[0]
        for match in _CHAIN.finditer(code):
            found.append((match.group().split("."), number - cursor_line))
    return found


def shadowed_names(text: str, cursor_line: int) -> set[str]:
    """Names the buffer binds itself (def, class, module-level assignment, the enclosing function's parameters
    and assignments up to the cursor): an import of the same name is not what the code near the cursor means."""
    names = set(_LOCAL_DEF.findall(text)) | set(_MODULE_ASSIGN.findall(text))
    lines = text.split("\n")[: max(cursor_line - 1, 0)]
    for index in range(len(lines) - 1, -1, -1):
        match = re.match(r"^([ \t]*)(?:async[ \t]+)?def[ \t]+\w+[ \t]*\((.*)", lines[index])
        if match:
            header = " ".join([match.group(2), *lines[index + 1 : index + 6]]).split(")", 1)[0]
            names |= set(re.findall(r"(?:^|,|\(|\*)\s*([A-Za-z_]\w*)", header))
            for line in lines[index + 1 :]:
                names |= set(re.findall(r"^[ \t]+([A-Za-z_]\w*)[ \t]*(?::[^=\n]*)?=(?!=)", line))
            break
    return names


def _import_statements(text: str, cursor_line: int) -> list[ast.stmt]:
    """The import statements of a buffer that may not parse: the whole if it parses, else each one alone."""
    for candidate in (text, _blank_line(text, cursor_line)):
        try:
            return [n for n in ast.walk(ast.parse(candidate)) if isinstance(n, ast.Import | ast.ImportFrom)]
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    statements: list[ast.stmt] = []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        if not _IMPORT_START.match(lines[index]):
            index += 1
            continue
        piece = lines[index].strip()
        index += 1
        while index < len(lines) and (piece.count("(") > piece.count(")") or piece.endswith("\\")):
            piece = piece.rstrip("\\") + " " + lines[index].strip()
            index += 1
        try:
            statements.extend(ast.parse(piece).body)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return statements


def _blank_line(text: str, line: int) -> str:
    if line < 1:
        return text
    lines = text.split("\n")
    if line <= len(lines):
        lines[line - 1] = ""
    return "\n".join(lines)


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


def _module_file(base: Path, parts: list[str]) -> Path | None:
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


class PythonLanguage:
    """Python's `Resolver`: imports resolved like Python's, uses near the cursor ranked by their distance to it."""

    suffixes = (".py", ".pyi")

    def candidates(
        self,
        repository: Repository,
        edited: Path,
        text: str,
        offset: int,
        overlay: dict[Path, str],
        deadline: Deadline,
    ) -> list[Found]:
        resolver = PythonResolver(repository, edited, overlay)
        head, text, cursor_line = scan_view(text, offset)
        imports = resolver.buffer_imports(head, cursor_line if head is text else 0)
        if not imports:
            return []
        shadowed = shadowed_names(text, cursor_line)
        used = names_near(text, cursor_line)
        seen_heads = {chain[0] for chain, _ in used}
        stars = any(key.startswith("*") for key in imports)
        uses = [(c, d) for c, d in used if (stars or c[0] in imports) and c[0] not in shadowed]
        # An imported name used nowhere yet is about to be: as if on the cursor's line.
        uses += [([n], 0) for n, t in imports.items() if t.name and n not in seen_heads and n not in shadowed]
        scores: dict[tuple[Path, int], float] = {}
        found: dict[tuple[Path, int], tuple[Definition, str]] = {}
        resolved: dict[tuple[str, ...], tuple[Definition, Target] | None] = {}
        for chain, distance in uses:
            if deadline.expired():
                break
            key = tuple(chain)
            if key not in resolved:
                resolved[key] = resolver.resolve(chain, imports)
            hit = resolved[key]
            if hit is None:
                continue
            definition, target = hit
            where = (definition.path, definition.start_line)
            weight = 1.0 / (1 + abs(distance)) if distance <= 0 else 0.5 / (1 + distance)
            scores[where] = scores.get(where, 0.0) + weight + (1.0 if definition.path in resolver.overlay else 0.0)
            found.setdefault(where, (definition, f"{'.'.join(chain)}: {target.statement}"))
        candidates = []
        for where, score in scores.items():
            definition, why = found[where]
            source = resolver.text_of(definition.path)
            if source is not None:
                start, head_end, end = definition.start_line, definition.head_end, definition.end_line
                candidates.append(Found(score, definition.path, source, start, head_end, end, f"definition of {why}"))
        candidates.sort(key=lambda c: (-c.score, repository.relative(c.path), c.start_line))
        return candidates


register(PythonLanguage())
