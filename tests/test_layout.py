"""The package's shape: no module-level import circles among localcoder's own modules (type-only imports
included), imports that run one way down the layers (docs/architecture.md), and test modules that share helpers
through tests/helpers.py rather than importing each other."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path, package: str) -> set[str]:
    """Modules of `package` that `path` imports outside function bodies (an `if TYPE_CHECKING:` block counts)."""
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            pending.extend(ast.iter_child_nodes(node))
    return {name for name in found if name == package or name.startswith(package + ".")}


def graph(package: str) -> dict[str, set[str]]:
    modules = {module_name(path): path for path in (ROOT / package).rglob("*.py")}
    return {
        name: {m for m in top_level_imports(path, package) if m in modules and m != name}
        for name, path in modules.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_localcoder_has_no_import_circles() -> None:
    edges = graph("localcoder")
    assert len(edges) > 50  # it really read the package
    assert cycles(edges) == []


# The layers, lowest first (docs/architecture.md): a module imports only modules of its own layer or lower ones,
# anywhere in the file (a function-level import is still a dependency). A module not named here is a front end.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("ggufkit", "localcoder.errors", "localcoder.names", "localcoder.paths", "localcoder.hang_up",
     "localcoder.source", "localcoder.files", "localcoder.terminal", "localcoder.schemas", "localcoder.gguf_info",
     "localcoder.edit", "localcoder.sandbox", "localcoder.supersede"),
    ("localcoder.completion", "localcoder.context"),  # the stages
    ("localcoder.pipeline",),  # complete(): the stages in order
    ("localcoder.runtime", "localcoder.tokenizer_only", "localcoder.models"),  # the loader
)  # fmt: skip
FRONT = len(LAYERS)  # cli, server, lsp, chat, evaluate, bench, demo, doctor, render


def layer_of(module: str) -> int:
    for rank, layer in enumerate(LAYERS):
        if any(module == name or module.startswith(name + ".") for name in layer):
            return rank
    return FRONT


def all_imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (function bodies included), as written."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from localcoder import paths`
    return found


def layer_breaches(package: str) -> list[str]:
    """'importer -> imported' for every import of a higher layer, and of the converter below the front ends."""
    breaches = []
    for path in sorted((ROOT / package).rglob("*.py")):
        name = module_name(path)
        for imported in sorted(all_imports(path)):
            top = imported.split(".")[0]
            if top not in ("localcoder", "ggufkit", "convert"):
                continue
            above = top == "convert" and layer_of(name) < FRONT  # the converter is a front end's tool
            if above or layer_of(imported) > layer_of(name):
                breaches.append(f"{name} -> {imported}")
    return breaches


def test_layer_order_finds_a_breach() -> None:
    assert layer_of("localcoder.context.stage") == layer_of("localcoder.completion.infill") == 1
    assert layer_of("localcoder.pipeline") < layer_of("localcoder.runtime") < layer_of("localcoder.render")
    assert layer_of("localcoder.cli.complete_cmd") == layer_of("localcoder.server.http") == FRONT


def test_imports_run_down_the_layers() -> None:
    """Front ends -> pipeline -> the context and completion stages -> ggufkit and the low modules: the stages
    never import the pipeline, the loader, the renderers or the converter."""
    assert layer_breaches("localcoder") == []
    assert layer_breaches("ggufkit") == []


def test_the_completion_stages_never_import_the_context_stage() -> None:
    """context/ takes the request and snippet types from completion/; the pipeline calls both, so completion/
    never needs context/ (the two packages depend one way)."""
    edges = graph("localcoder")
    offenders = sorted(
        f"{name} -> {m}" for name, imported in edges.items() if name.startswith("localcoder.completion")
        for m in imported if m.startswith("localcoder.context")
    )  # fmt: skip
    assert offenders == []


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in tests/helpers.py (and the other non-test modules); a test module never imports a
    test module, so running one file never drags in, or depends on the fixtures of, another."""
    offenders = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.name}: {name}" for name in names if name.startswith("tests.test_")]
    assert offenders == []
