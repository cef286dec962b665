"""TypeScript, TSX and JavaScript (ES modules and CommonJS): relative imports to the definitions they name.

Bindings: `import {a as b}`, `import d` (the module's `default`), `import * as ns` (the module whole: `ns.f`, and
its outline on a blank line), `const x = require('./m')` and `const {a, b: c} = require('./m')`. A specifier
resolves like TypeScript's bundler resolution: the path as written, `./x.js` written for `x.ts` (and `.mjs` for
`.mts`), then each extension, then the folder's `index`. Re-exports are followed: `export {a as b} from`,
`export * from`, `export * as ns from`, `export {a}` of an imported name, `export default X`, and CommonJS's
`module.exports = {...}`, `module.exports = X`, `exports.N = ...`. A bare specifier resolves through the nearest
tsconfig.json's (or jsconfig.json's) `compilerOptions.paths` (`"@app/*": ["src/app/*"]`, relative to `baseUrl`
or else to the config's folder) and then under `baseUrl`; the config is read leniently (comments, trailing
commas; its first 64 KiB; `extends` is not followed). Other bare specifiers (packages) are not the repository's
code and are left alone.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tree_sitter import Node, Tree

from localcoder.context.languages.base import Imported, Request, Summary, TreeSitterLanguage
from localcoder.context.languages.definitions import Definition, definition, node_text

EXTENSIONS = (".ts", ".tsx", ".d.ts", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs")
WRITTEN_FOR = {".js": (".ts", ".tsx", ".d.ts"), ".jsx": (".tsx",), ".mjs": (".mts",), ".cjs": (".cts",)}
GRAMMAR_OF = {".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx"}
CONFIG_NAMES = ("tsconfig.json", "jsconfig.json")  # read MANIFEST_BYTES at most, through the root's walls
MAX_PATH_TARGETS = 8


def resolve_specifier(request: Request, folder: Path, specifier: str) -> Path | None:
    """A relative specifier as the file it names, when that file is one the context may read; a bare one through
    the nearest tsconfig.json's (or jsconfig.json's) `paths` and `baseUrl`."""
    if not specifier.startswith("."):
        return _aliased(request, folder, specifier)
    return _file_for(request, Path(os.path.normpath(folder / specifier)))


def _file_for(request: Request, base: Path) -> Path | None:
    tries = [base]
    if base.suffix in WRITTEN_FOR:
        tries += [base.with_suffix(s) for s in WRITTEN_FOR[base.suffix]]
    tries += [base.with_name(base.name + s) for s in EXTENSIONS]
    tries += [base / f"index{s}" for s in EXTENSIONS]
    for candidate in tries:
        if candidate.suffix and (found := request.exists(candidate)) is not None:
            return found
    return None


def _aliased(request: Request, folder: Path, specifier: str) -> Path | None:
    """`@app/x` through `compilerOptions.paths` (`"@app/*": ["src/app/*"]`, each target in turn), else `x/y` under
    `baseUrl`; a package of node_modules is not the repository's code."""
    config = _tsconfig(request, folder)
    if config is None or not specifier or specifier.startswith("/"):
        return None
    base, base_url, paths = config
    best: tuple[int, list[str], str] | None = None  # TypeScript's rule: the longest prefix before the `*` wins
    for pattern, targets in paths.items():
        prefix, star, suffix = pattern.partition("*")
        if not star and pattern == specifier:
            best = (len(pattern) + 1, targets, "")
            continue
        fits = len(specifier) >= len(pattern) - 1 and specifier.startswith(prefix) and specifier.endswith(suffix)
        if star and fits and (best is None or len(prefix) > best[0]):
            best = (len(prefix), targets, specifier[len(prefix) : len(specifier) - len(suffix)])
    tries = [target.replace("*", best[2], 1) for target in best[1][:MAX_PATH_TARGETS]] if best else []
    places = [base / written for written in tries] + ([base_url / specifier] if base_url is not None else [])
    for place in places:
        found = _file_for(request, Path(os.path.normpath(place)))
        if found is not None:
            return found
    return None


Config = tuple[Path, Path | None, dict[str, list[str]]]  # where `paths` start, baseUrl, `paths`


def _tsconfig(request: Request, folder: Path) -> Config | None:
    """The nearest tsconfig.json or jsconfig.json at or above `folder` inside the root, or None."""
    key = ("tsconfig", folder)
    if key not in request.known:
        request.known[key] = _find_tsconfig(request, folder)
    return request.known[key]  # type: ignore[no-any-return]


def _find_tsconfig(request: Request, folder: Path) -> Config | None:
    root = request.repository.real_root
    here = Path(os.path.realpath(folder))
    while here == root or root in here.parents:
        for name in CONFIG_NAMES:
            try:
                stat = os.stat(here / name)
            except OSError:
                continue
            make = lambda file=here / name: _config(request, file)  # noqa: E731
            found = request.repository.stamped("tsconfig", str(here / name), (stat.st_size, stat.st_mtime_ns), make)
            if found is not None:
                return found
        here = here.parent
    return None


def _config(request: Request, file: Path) -> Config | None:
    """A config's baseUrl and paths, parsed once per version of it (`request.manifest` reads it within the root)."""
    text = request.manifest(file)
    if text is None:
        return None
    options = lenient_json(text).get("compilerOptions")
    options = options if isinstance(options, dict) else {}
    written = options.get("baseUrl")
    base_url = Path(os.path.normpath(file.parent / written)) if isinstance(written, str) else None
    paths = options.get("paths") if isinstance(options.get("paths"), dict) else {}
    kept = {k: [t for t in v if isinstance(t, str)] for k, v in paths.items() if isinstance(v, list)}
    return base_url or file.parent, base_url, kept  # `paths` without a baseUrl start at the config's folder


def lenient_json(text: str) -> dict:
    """tsconfig's JSON with comments and trailing commas, as an object; {} when it is not one."""
    out, i, n = [], 0, len(text)
    while i < n:  # strings kept whole, comments dropped
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if text.find("\n", i) >= 0 else n
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = end + 2 if end >= 0 else n
        else:
            out.append(c)
            i += 1
    cleaned = re.sub(r",(\s*[}\]])", r"\1", "".join(out))
    try:
        value = json.loads(cleaned)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _string(node: Node | None) -> str:
    return node_text(node).strip("'\"`") if node is not None else ""


def _required(node: Node | None) -> str | None:
    """The specifier of `require('x')` (or `require('x').y`'s), else None."""
    if node is not None and node.type == "call_expression":
        function, arguments = node.child_by_field_name("function"), node.child_by_field_name("arguments")
        if node_text(function) == "require" and arguments is not None and arguments.named_children:
            first = arguments.named_children[0]
            return _string(first) if first.type == "string" else None
    return None


class ScriptLanguage(TreeSitterLanguage):
    suffixes = (".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs")
    window_families = (suffixes[:4], suffixes[4:])
    name = "javascript"
    import_nodes = frozenset({"import_statement"})

    def grammar(self, path: Path) -> str:
        return GRAMMAR_OF.get(path.suffix.lower(), "javascript")

    def imports(self, request: Request, tree: Tree, text: str) -> dict[str, Imported]:
        found = self._bindings(request, request.edited, tree)
        for name, target in found.items():  # `export default {a, b}`: the default import is a module's namespace
            if target.name == "default" and self._exports_an_object(request, target.file):
                found[name] = Imported(target.file, None, target.statement)
        return found

    def _exports_an_object(self, request: Request, file: Path) -> bool:
        summary = self.summary(request, file)
        return summary is not None and "default" not in summary.definitions and "default" not in summary.exports

    def _bindings(self, request: Request, file: Path, tree: Tree) -> dict[str, Imported]:
        found: dict[str, Imported] = {}
        for node in tree.root_node.named_children:
            if request.deadline.expired():
                break
            if node.type == "import_statement":
                target = resolve_specifier(request, file.parent, _string(node.child_by_field_name("source")))
                if target is not None:
                    found.update(_import_clause(node, target))
            elif node.type in ("lexical_declaration", "variable_declaration"):
                for declarator in node.named_children:
                    found.update(self._require(request, file, declarator))
        return found

    def _require(self, request: Request, file: Path, declarator: Node) -> dict[str, Imported]:
        value, name = declarator.child_by_field_name("value"), declarator.child_by_field_name("name")
        member = None
        if value is not None and value.type == "member_expression":  # require('./m').f
            member = node_text(value.child_by_field_name("property"))
            value = value.child_by_field_name("object")
        specifier = _required(value)
        target = resolve_specifier(request, file.parent, specifier) if specifier else None
        if target is None or name is None:
            return {}
        written = node_text(declarator)[:120]
        if name.type == "identifier":
            return {node_text(name): Imported(target, member, written, alone="default")}
        found = {}
        if name.type == "object_pattern":
            for part in name.named_children:
                if part.type == "shorthand_property_identifier_pattern":
                    found[node_text(part)] = Imported(target, node_text(part), written)
                elif part.type == "pair_pattern":
                    key, bound = part.child_by_field_name("key"), part.child_by_field_name("value")
                    if bound is not None and bound.type == "identifier":
                        found[node_text(bound)] = Imported(target, node_text(key), written)
        return found

    def reexports(self, request: Request, file: Path, tree: Tree, summary: Summary) -> None:
        local = self._bindings(request, file, tree)

        def bound(name: str) -> Imported:
            return local.get(name) or Imported(file, name, "")

        for node in tree.root_node.named_children:
            if node.type == "export_statement":
                self._export(request, file, node, summary, bound)
            elif node.type == "expression_statement" and node.named_children:
                _commonjs(request, file, node, node.named_children[0], summary, bound)

    def _export(self, request: Request, file: Path, node: Node, summary: Summary, bound) -> None:  # noqa: ANN001
        source = node.child_by_field_name("source")
        target = resolve_specifier(request, file.parent, _string(source)) if source is not None else None
        if source is not None and target is None:
            return
        clause = next((c for c in node.named_children if c.type == "export_clause"), None)
        namespace = next((c for c in node.named_children if c.type == "namespace_export"), None)
        if target is not None and clause is None:
            if namespace is not None and namespace.named_children:
                summary.exports[node_text(namespace.named_children[-1])] = Imported(target, None, node_text(node))
            else:
                summary.stars.append(target)
            return
        if clause is not None:
            for specifier in clause.named_children:
                name, alias = specifier.child_by_field_name("name"), specifier.child_by_field_name("alias")
                exported = node_text(alias or name)
                if target is not None:
                    summary.exports[exported] = Imported(target, node_text(name), node_text(node))
                elif exported not in summary.definitions or alias is not None:
                    summary.exports[exported] = bound(node_text(name))
            return
        value = node.child_by_field_name("value")
        if value is not None and value.type == "identifier" and "default" not in summary.definitions:
            summary.exports["default"] = bound(node_text(value))
        elif value is not None and value.type == "object":
            _object_exports(value, summary, bound)


def _import_clause(node: Node, target: Path) -> dict[str, Imported]:
    found: dict[str, Imported] = {}
    written = node_text(node)[:160]
    for clause in node.named_children:
        if clause.type != "import_clause":
            continue
        for part in clause.named_children:
            if part.type == "identifier":
                found[node_text(part)] = Imported(target, "default", written)
            elif part.type == "namespace_import" and part.named_children:
                found[node_text(part.named_children[-1])] = Imported(target, None, written)
            elif part.type == "named_imports":
                for specifier in part.named_children:
                    name, alias = specifier.child_by_field_name("name"), specifier.child_by_field_name("alias")
                    if name is not None:
                        found[node_text(alias or name)] = Imported(target, node_text(name), written)
    return found


def _commonjs(request: Request, file: Path, statement: Node, node: Node, summary: Summary, bound) -> None:  # noqa: ANN001
    """`module.exports = ...`, `module.exports.N = ...` and `exports.N = ...` as definitions and re-exports."""
    if node.type != "assignment_expression":
        return
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    written = node_text(left)
    if right is None or not written.startswith(("module.exports", "exports.")):
        return
    if written == "module.exports":
        if right.type == "identifier":
            summary.exports["default"] = bound(node_text(right))
        elif right.type == "object":
            _object_exports(right, summary, bound)
        elif (specifier := _required(right)) is not None:
            target = resolve_specifier(request, file.parent, specifier)
            if target is not None:
                summary.stars.append(target)
                summary.exports["default"] = Imported(target, "default", written)
        else:
            _define(summary, definition("default", right, statement))
        return
    name = written.rsplit(".", 1)[-1]
    if written.count(".") == (2 if written.startswith("module.") else 1):
        if right.type == "identifier" and node_text(right) != name:
            summary.exports[name] = bound(node_text(right))
        else:
            _define(summary, definition(name, right, statement))


def _object_exports(node: Node, summary: Summary, bound) -> None:  # noqa: ANN001
    """`{a, b: c, d() {...}, ...m}` exported whole: each key is a name of the module, and so is each name of a module
    spread into it (`...utils` after `import * as utils`, or a default import of such an object)."""
    for pair in node.named_children:
        spread = pair.named_children[0] if pair.type == "spread_element" and pair.named_children else None
        if spread is not None and spread.type == "identifier":
            target = bound(node_text(spread))
            if target.statement and target.name in (None, "default") and target.file not in summary.stars:
                summary.stars.append(target.file)
        elif pair.type == "shorthand_property_identifier":
            summary.exports[node_text(pair)] = bound(node_text(pair))
        elif pair.type in ("pair", "method_definition"):
            key = pair.child_by_field_name("key") or pair.child_by_field_name("name")
            value = pair.child_by_field_name("value")
            if value is not None and value.type == "identifier":
                summary.exports[node_text(key)] = bound(node_text(value))
            elif key is not None:
                _define(summary, definition(node_text(key), pair))


def _define(summary: Summary, found: Definition) -> None:
    if found.name not in summary.definitions:
        summary.definitions[found.name] = found
        summary.order.append(found)


LANGUAGE = ScriptLanguage()
