"""Python: which definitions in other modules of the repository do the names near the cursor come from.

The edited buffer is read by `python_buffer` (it usually does not parse; its reading is kept between keystrokes).
Where an import leads and what a module defines is `python_modules`' work (re-exports through `__init__`, star
imports visited once per module).

A module of the repository bound to a name (`from . import m`, `import a.b as m`, `import a.b`, `from a import b`
where b is a module) is used as `m.N`: each such use offers N's definition like a name imported directly, and the
module itself offers an outline (its public top-level names with their signatures) for the name the cursor is
about to write; where the cursor's line already names one of its definitions, the outline is left out.

Scores: a use at distance d lines above the cursor weighs 1/(1+d), below 0.5/(1+d), summed over the uses; a name
imported and not used yet weighs 1 (it is about to be), LOCAL_IMPORT_WEIGHT when the function around the cursor
imports it. Names imported only under `if TYPE_CHECKING:` weigh TYPE_CHECKING_WEIGHT of that: at run time the code
calls other names. Code uses a module's neighbouring names together (a table of keywords in their module's order, a
visitor's methods in the order of the nodes' module), so a definition weighs at least NEIGHBOUR_SHARE of what the
names defined next to it and used nearest weigh, over 1 + how many definitions the buffer reaches lie between.
An outline weighs OUTLINE_WEIGHT of its module's summed uses, so the names used nearest come first; it keeps the
names the buffer uses first, then their neighbours, when its share of the budget cannot show them all.
Tuned on bench-context's first thirteen packages only; measured once on eight fresh ones (BENCHMARKS.md).
"""

from __future__ import annotations

import re
from pathlib import Path

from localcoder.context.python_buffer import BufferView, view_of
from localcoder.context.python_modules import Definition, ModuleSummary, PythonResolver, Target
from localcoder.context.repository import Repository
from localcoder.context.resolver import Deadline, Found, around_cursor, register

SCAN_LINES_BELOW = 500  # a huge buffer is read this far below the cursor (resolver.around_cursor)
TYPE_CHECKING_WEIGHT = 0.2
OUTLINE_WEIGHT = 0.5  # of the module's summed uses: the names used nearest come before the module's outline
MAX_OUTLINES = 3  # modules whose outline is offered, the most used near the cursor first
LOCAL_IMPORT_WEIGHT = 3  # a name the enclosing function imports and has not used yet: it imported it for this
USE_LINES = 2000  # uses farther from the cursor weigh under 1/2000 each: left out
STAR_LINES = 300  # with a star import, names this near the cursor are looked up in the star-imported modules
NEIGHBOUR_ANCHORS = 4  # a definition weighs at least a share of what these weigh, its module's names used nearest,
NEIGHBOUR_SHARE = 0.5  # over 1 + how many definitions are between them (code uses neighbours together)


def _weight(distance: int) -> float:
    return 1.0 / (1 + abs(distance)) if distance <= 0 else 0.5 / (1 + distance)


_TYPED_ATTRIBUTE = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\.(\w*)$")


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
        text, offset = around_cursor(text, offset, SCAN_LINES_BELOW)
        view = view_of(str(resolver.path), text, offset)
        imports = resolver.buffer_imports(view)
        if not imports:
            return []
        shadowed = view.bound | view.parameters
        uses: list[tuple[list[str], int]] = []
        for name in imports:
            if name.startswith("*") or name in shadowed:
                continue
            seen, anywhere = view.uses_near(name, USE_LINES)
            if seen:
                uses += [(list(chain), line - view.cursor_line) for line, chain in seen]
            elif not anywhere:  # imported, used nowhere yet: about to be, as if on the cursor's line
                local = 0 < view.function_line < imports[name].line < view.cursor_line  # in the enclosing function
                uses += [([name], 0)] * (LOCAL_IMPORT_WEIGHT if local else 1)
        if any(key.startswith("*") for key in imports):
            for head in view.heads() - imports.keys() - shadowed:
                cursor = view.cursor_line
                uses += [(list(c), n - cursor) for n, c in view.uses_of(head) if abs(n - cursor) <= STAR_LINES]
        weights: dict[tuple[str, ...], list[float]] = {}  # each dotted name: its summed weight, how many uses
        for chain, distance in uses:
            entry = weights.setdefault(tuple(chain), [0.0, 0])
            entry[0] += _weight(distance)
            entry[1] += 1
        scores: dict[tuple[Path, int], float] = {}
        found: dict[tuple[Path, int], tuple[Definition, str]] = {}
        modules: dict[Path, tuple[float, Target]] = {}
        for number, (key, (weight, count)) in enumerate(weights.items()):
            if number % 32 == 0 and deadline.expired():
                break
            chain = list(key)
            target = imports.get(chain[0])
            weight *= TYPE_CHECKING_WEIGHT if target and target.type_checking else 1.0
            reached = resolver.module_of(chain, imports) if target is not None else None
            if target is not None and reached is not None:
                module = reached[0] if reached[1] < len(chain) or target.whole is None else target.whole
                modules[module] = (modules.get(module, (0.0, target))[0] + weight, target)
            hit = resolver.resolve(chain, imports)
            if hit is None or hit[0].path == resolver.path:
                continue
            definition, via = hit
            where = (definition.path, definition.start_line)
            scores[where] = scores.get(where, 0.0) + weight + (count if definition.path in resolver.overlay else 0.0)
            found.setdefault(where, (definition, f"{'.'.join(chain)}: {via.statement}"))
        scores = _with_neighbours(scores)
        candidates = []
        for where, score in scores.items():
            definition, why = found[where]
            source = resolver.text_of(definition.path)
            if source is not None:
                start, head_end, end = definition.start_line, definition.head_end, definition.end_line
                candidates.append(Found(score, definition.path, source, start, head_end, end, f"definition of {why}"))
        used = {(c.path, c.start_line): c.score for c in candidates}
        candidates += self._outlines(resolver, view, imports, modules, used, deadline)
        candidates.sort(key=lambda c: (-c.score, resolver.relative(c.path), c.start_line))
        return candidates

    def _outlines(
        self,
        resolver: PythonResolver,
        view: BufferView,
        imports: dict[str, Target],
        modules: dict[Path, tuple[float, Target]],
        used: dict[tuple[Path, int], float],
        deadline: Deadline,
    ) -> list[Found]:
        """The outlines of the modules most used near the cursor (by `m.N`), unless its line already names one
        of their definitions; after `m.` or `m.pre` on the cursor's line, that module's names (starting `pre`)."""
        named: set[Path] = set()  # modules one of whose names the cursor's line already holds
        for chain in view.on_cursor_line():
            reached = resolver.module_of(list(chain), imports) if chain[0] in imports else None
            if reached is not None and reached[1] < len(chain) and resolver.resolve(list(chain), imports):
                named.add(reached[0])
        ranked = [(m, s) for m, (s, _) in sorted(modules.items(), key=lambda m: -m[1][0]) if m not in named]
        prefix = ""
        typed = _TYPED_ATTRIBUTE.search(view.cursor_text)
        if typed is not None:  # `m.` or `m.pre` being typed: that module first, its names starting `pre`
            reached = resolver.module_of(typed.group(1).split("."), imports)
            if reached is not None and reached[1] == len(typed.group(1).split(".")):
                ranked = [(reached[0], modules.get(reached[0], (0.0, None))[0] + 2.0)]
                prefix = typed.group(2)
        found: list[Found] = []
        for module, score in ranked[:MAX_OUTLINES]:
            summary = resolver.summary(module) if not deadline.expired() and module != resolver.path else None
            source = resolver.text_of(module) if summary is not None else None
            entries = [(s, e) for n, s, e in summary.outline if n.startswith(prefix)] if summary else []
            entries = _kept_first(entries, [used.get((module, _start(summary, s)), 0.0) for s, _ in entries])
            if source is None or not entries:
                continue
            why = f"outline of {resolver.relative(module)}: its public names"
            first, last = min(s for s, _ in entries), max(e for _, e in entries)
            shown = tuple(entries)
            found.append(Found(score * OUTLINE_WEIGHT, module, source, first, first, last, why, "outline", shown))
        return found


def _kept_first(entries: list[tuple[int, int]], weights: list[float]) -> list[tuple[int, int]]:
    """An outline's entries (in file order, each with its weight near the cursor) in the order to keep them when
    the budget cannot show them all: by weight, the names used nearest first; a name weighs at least what a
    neighbour of it in the module does, over 1 + how many entries away it is, for the NEIGHBOUR_ANCHORS names used
    nearest (code uses neighbours together: jinja2's compiler visits its nodes in nodes.py's order, jsonschema's
    validators list their keywords much as _keywords.py defines them). With no name used, file order."""
    anchors = sorted((i for i, w in enumerate(weights) if w > 0), key=lambda i: -weights[i])[:NEIGHBOUR_ANCHORS]
    if not anchors:
        return entries
    weighed = [max(w, *(weights[a] / (1 + abs(i - a)) for a in anchors)) for i, w in enumerate(weights)]
    return [entries[i] for i in sorted(range(len(entries)), key=lambda i: (-weighed[i], i))]


def _with_neighbours(scores: dict[tuple[Path, int], float]) -> dict[tuple[Path, int], float]:
    """The definitions' scores, each at least NEIGHBOUR_SHARE of what a definition next to it in the same module
    (among those the buffer reaches) weighs, over 1 + how many are between them: jinja2's Environment takes
    its defaults' constants in defaults.py's order, each used once, far from the others' uses."""
    by_module: dict[Path, list[tuple[int, float]]] = {}
    for (path, line), score in scores.items():
        by_module.setdefault(path, []).append((line, score))
    raised = dict(scores)
    for path, found in by_module.items():
        if len(found) < 2:
            continue
        found.sort()
        anchors = sorted(range(len(found)), key=lambda i: -found[i][1])[:NEIGHBOUR_ANCHORS]
        for i, (line, score) in enumerate(found):
            near = max((found[a][1] / (1 + abs(i - a)) for a in anchors if a != i), default=0.0)
            raised[(path, line)] = max(score, NEIGHBOUR_SHARE * near)
    return raised


def _start(summary: ModuleSummary | None, line: int) -> int:
    """The first line (decorators included) of the definition whose name is on `line`: how candidates are keyed."""
    starts = summary.starts if summary is not None else {}
    return starts.get(line, line)


register(PythonLanguage())
