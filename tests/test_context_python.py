"""Python's resolver on small repositories made here: modules imported whole (`m.N`) and their outlines, the
budget (run-time imports above TYPE_CHECKING ones, bodies capped), ranks, end lines, star-import cycles, keyword-free
windows and the buffer reading kept between keystrokes."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcoder.context import gather
from localcoder.context.gather import BODY_SHARE
from localcoder.context.python_buffer import view_of
from localcoder.context.python_modules import PythonResolver
from localcoder.context.windows import keywords_of, line_sets, query_of, windows
from tests.helpers import checked_document, localcoder

NODES = (
    "class Node:\n"  # 1
    '    """A node of the tree."""\n'
    "    def walk(self):\n"
    "        return []\n"
    "\n"
    "\n"
    "class CallBlock(Node):\n"  # 7
    '    """A call."""\n'
    "    def __init__(self, name, args):\n"
    "        self.name = name\n"
    "\n"
    "\n"
    "def make_node(kind, *children,\n"  # 13
    "              strict=False):\n"
    '    """Build a node of `kind`."""\n'
    "    return Node()\n"
    "\n"
    "\n"
    "MAX_DEPTH = 10\n"  # 19
    "_private = 1\n"
)
FILES = {
    "pyproject.toml": "[project]\nname = 'pkg'\n",
    "pkg/__init__.py": "",
    "pkg/nodes.py": NODES,
    "pkg/http.py": 'def quote_etag(etag, weak=False):\n    """Quote an etag."""\n    return etag\n',
    "pkg/sub/__init__.py": "",
    "pkg/sub/utils.py": "def helper(x):\n    return x\n\n\ndef other(y):\n    return y\n",
    "pkg/abc_types.py": "class Shape:\n    '''Only for the type checker.'''\n",
}


def make_repo(root: Path, files: dict[str, str] = FILES) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def context_of(root: Path, text: str, budget: int = 1024, name: str = "pkg/app.py"):
    return gather(root / name, text, len(text), budget=budget)


def spans(context) -> set[tuple[str, int, str]]:
    return {(s.path, s.start_line, s.kind) for s in context.snippets}


MODULE_FORMS = [
    ("from . import m", "from . import nodes\n\ndef f():\n    return nodes.CallBlock('a', [])\n\ndef g():\n    "),
    ("from pkg import m", "from pkg import nodes\n\nx = nodes.CallBlock('a', [])\n"),
    ("import a.b as m", "import pkg.nodes as nodes\n\nx = nodes.CallBlock('a', [])\n"),
    ("import a.b, then a.b.N", "import pkg.nodes\n\nx = pkg.nodes.CallBlock('a', [])\n"),
]


@pytest.mark.parametrize("form, text", MODULE_FORMS, ids=[f[0] for f in MODULE_FORMS])
def test_a_module_used_as_m_n_offers_the_names_used_and_an_outline(tmp_path: Path, form: str, text: str) -> None:
    root = make_repo(tmp_path)
    context = context_of(root, text)
    assert ("pkg/nodes.py", 7, "definition") in spans(context), form  # CallBlock, used above
    [outline] = [s for s in context.snippets if s.kind == "outline"]
    assert (
        outline.path == "pkg/nodes.py"
        and "def make_node(kind, *children,\n              strict=False):" in outline.text
    )


def test_from_a_import_b_where_b_is_a_module(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    context = context_of(root, "from pkg.sub import utils\n\nutils.helper(2)\n")
    assert ("pkg/sub/utils.py", 1, "definition") in spans(context)
    [outline] = [s for s in context.snippets if s.kind == "outline"]
    assert outline.text == "def other(y):"  # helper's definition is shown whole: the outline does not repeat it


def test_the_outline_on_a_blank_line_holds_public_signatures_only(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    context = context_of(root, "from . import nodes\n\n")
    [outline] = context.snippets
    assert outline.kind == "outline" and (outline.start_line, outline.end_line) == (1, 19)
    shown = outline.text.split("\n")
    signatures = ["def make_node(kind, *children,", "              strict=False):"]
    assert shown == ["class Node:", "class CallBlock(Node):", *signatures, "MAX_DEPTH = 10"]
    # After `nodes.ma` on the cursor's line: that module's names starting `ma`.
    typed = context_of(root, "from . import nodes\n\nx = nodes.ma")
    assert [s.text for s in typed.snippets if s.kind == "outline"] == [
        "def make_node(kind, *children,\n              strict=False):"
    ]
    # Where the line already names a definition of the module, its definition comes instead of the outline.
    named = context_of(root, "from . import nodes\n\nx = nodes.make_node(")
    assert spans(named) == {("pkg/nodes.py", 13, "definition")}


def test_an_outline_too_long_for_its_share_keeps_the_neighbours_of_the_names_used(tmp_path: Path) -> None:
    checks = "".join(f"def check_{n:02}(validator, value, instance, schema):\n    return {n}\n\n\n" for n in range(60))
    root = make_repo(tmp_path, {**FILES, "pkg/checks.py": checks})

    def outline_after(*used: int) -> str:
        lines = "".join(f"    'k{n}': checks.check_{n:02},\n" for n in used)
        context = context_of(root, f"from . import checks\n\nTABLE = {{\n{lines}    ", budget=512)
        [outline] = [s for s in context.snippets if s.kind == "outline" and s.path == "pkg/checks.py"]
        assert 0 < outline.text.count("def check_") < 50  # its share cannot show all sixty
        return outline.text

    late = outline_after(40, 41)
    assert "def check_42(" in late and "def check_39(" in late and "def check_00(" not in late
    early = outline_after(5, 6)  # the control: near the start of the module, the start of the module
    assert "def check_07(" in early and "def check_04(" in early and "def check_42(" not in early


def test_a_name_imported_by_name_ranks_with_its_neighbours_in_its_module(tmp_path: Path) -> None:
    names = [f"OPTION_{n:02}" for n in range(30)]
    defaults = "".join(f"{name} = 'the default value of option {n}, spelled out'\n" for n, name in enumerate(names))
    root = make_repo(tmp_path, {**FILES, "pkg/defaults.py": defaults})

    def shown_after(*used: int) -> set[int]:
        head = f"from .defaults import ({', '.join(names)})\n\n\ndef configure(\n"
        near = "".join(f"    option_{n}={names[n]},\n" for n in used)
        far = "\n" * 300 + "".join(f"print({name})\n" for name in names)  # every name is used, far below
        text = head + near + "    "
        context = gather(root / "pkg/app.py", text + "\n" + far, len(text), budget=256)
        return {s.start_line for s in context.snippets if s.path == "pkg/defaults.py"}

    shown = shown_after(10, 11, 12)
    assert {11, 12, 13, 14} <= shown and 1 not in shown and 30 not in shown and len(shown) < 30
    control = shown_after(0, 1, 2)  # near the start of the module: its start, not its middle
    assert {1, 2, 3, 4} <= control and 14 not in control


def test_a_type_checking_import_ranks_below_a_run_time_one(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    text = (
        "from typing import TYPE_CHECKING\n\nfrom .http import quote_etag\n\nif TYPE_CHECKING:\n"
        "    from .abc_types import Shape\n\n\ndef f(shape):\n    return quote_etag(shape, Shape)\n"
    )
    ranks = {s.path: s.rank for s in context_of(root, text).snippets}
    assert ranks == {"pkg/http.py": 1, "pkg/abc_types.py": 2}
    run_time = text.replace("if TYPE_CHECKING:\n    from", "from")  # control: the same import at run time
    assert {s.path: s.rank for s in context_of(root, run_time).snippets} == {"pkg/abc_types.py": 1, "pkg/http.py": 2}


def test_a_body_is_capped_and_the_budget_reaches_further_definitions(tmp_path: Path) -> None:
    big = "def big(a):\n    '''Huge.'''\n" + "".join(f"    a = a + {i} * a - {i}\n" for i in range(400))
    root = make_repo(tmp_path, {**FILES, "pkg/big.py": big + "    return a\n"})
    text = "from .big import big\nfrom .http import quote_etag\n\nx = quote_etag(big("
    context = context_of(root, text, budget=1024)
    grown = next(s for s in context.snippets if s.path == "pkg/big.py")
    assert grown.start_line == 1 and 2 < grown.end_line < 403 and grown.tokens <= 1024 // BODY_SHARE
    assert ("pkg/http.py", 1, "definition") in spans(context)


def test_end_lines_stay_within_the_file(tmp_path: Path) -> None:
    body = "function parseHeader(line) {\n  return line.split(':');\n}\n" * 5  # 15 lines and a final newline
    root = make_repo(tmp_path, {"setup.py": "", "lib/near.lua": body, "pkg/__init__.py": "", "pkg/m.py": "X = 1\n"})
    [window] = context_of(root, "parseHeader(line.split(':'))", name="lib/app.lua").snippets
    assert (window.start_line, window.end_line, window.kind) == (1, 15, "window")
    [definition] = context_of(root, "from .m import X\n\nX").snippets
    assert (definition.start_line, definition.end_line) == (1, 1)


def test_ranks_are_present_and_consistent_in_every_front_end(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    text = "from .http import quote_etag\nfrom .sub.utils import helper, other\n\nhelper(1)\n\nx = quote_etag("
    context = context_of(root, text)
    assert sorted(s.rank for s in context.snippets) == list(range(1, len(context.snippets) + 1))
    assert min(context.snippets, key=lambda s: s.rank).path == "pkg/http.py"  # the name on the cursor's line
    assert [(s.path, s.start_line) for s in context.snippets] == sorted(
        (s.path, s.start_line) for s in context.snippets
    )
    (root / "pkg" / "app.py").write_text(text + "'x')\n")
    shown = localcoder("context", f"{root / 'pkg' / 'app.py'}:6:16", "--json")
    document = checked_document("context", shown.stdout)
    assert [(s["path"], s["rank"]) for s in document["snippets"]] == [(s.path, s.rank) for s in context.snippets]


def test_modules_that_star_import_each_other_are_visited_once_each(tmp_path: Path, monkeypatch) -> None:
    count = 16
    files = {"setup.py": "", "pkg/__init__.py": ""}
    for i in range(count):
        stars = "".join(f"from .m{j:02} import *\n" for j in range(count) if j != i)
        files[f"pkg/m{i:02}.py"] = stars + f"\n\ndef f_{i}(x):\n    return x\n"
    root = make_repo(tmp_path, files)
    visits: list[Path] = []
    summary = PythonResolver.summary
    monkeypatch.setattr(PythonResolver, "summary", lambda self, m: visits.append(m) or summary(self, m))
    context = context_of(root, "from .m00 import *\n\nvalue = f_15(3) + missing_name(")
    assert ("pkg/m15.py", count + 2, "definition") in spans(context)  # found through the stars
    assert len(visits) <= 3 * count  # each module once per name looked up (f_15, missing_name, value), not per path


def test_windows_compare_identifiers_without_the_keywords() -> None:
    python = keywords_of(".py")
    others = keywords_of(".go") | keywords_of(".rs") | keywords_of(".ts") | keywords_of(".java") | keywords_of(".c")
    assert {"def", "return", "self", "None"} <= python and {"func", "fn", "let", "public", "struct"} <= others
    other = line_sets("def a(self):\n    return None\n")
    typed = "def b(self):\n    return None"
    query = query_of(typed, len(typed), keywords=python)
    assert query == {"b"} and windows(other, query, keywords=python) == []
    shared = line_sets("def b(self):\n    return None\n")  # control: a real identifier in common
    assert windows(shared, query, keywords=python)[0].score == 1.0


def test_the_buffer_reading_kept_between_keystrokes_equals_a_fresh_one(tmp_path: Path) -> None:
    head = "from .http import quote_etag\nimport pkg.nodes as nodes\n"
    body = "".join(f"x{i} = nodes.Node{i % 7}(quote_etag)\n" for i in range(300))
    text = head + body + "def f(a, b):\n    c = 1\n    " + body
    offset = len(head + body) + 30
    view_of("kept", text, offset)
    edits = [
        text[:offset] + "nodes.M" + text[offset:],  # typing on the line
        text[:offset] + "\n    y = nodes.Call\n    " + text[offset:],  # new lines (the lines below shift)
        text[:offset] + "q" + text[offset:].replace("x299 =", "z299 ="),  # an edit far below: read again
    ]
    for number, edited in enumerate(edits):
        at = offset + 7 if number == 0 else offset + 1
        kept, fresh = view_of("kept", edited, at), view_of(f"fresh{number}", edited, at)
        uses = {head: kept.uses_of(head) for head in kept.heads()}
        assert uses == {head: fresh.uses_of(head) for head in fresh.heads()} and kept.heads() == fresh.heads()
        assert kept.cursor_line == fresh.cursor_line and kept.bound == fresh.bound
        assert [(i.line, i.type_checking) for i in kept.imports] == [(i.line, i.type_checking) for i in fresh.imports]
        assert kept.parameters == fresh.parameters == {"a", "b", "c"} and kept.uses_of("nodes")


def test_the_context_command_lists_the_outline_with_its_kind_and_rank(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    (root / "pkg" / "app.py").write_text("from . import nodes\n\n\n")
    shown = checked_document("context", localcoder("context", f"{root / 'pkg' / 'app.py'}:3", "--json").stdout)
    assert [(s["kind"], s["rank"]) for s in shown["snippets"]] == [("outline", 1)]


def test_generated_by_in_prose_is_not_a_generated_file(tmp_path: Path) -> None:
    prose = '"""AST nodes generated by the parser for the compiler."""\n\n\nclass Template:\n    pass\n'
    tool = "# Generated by the protocol buffer compiler.\n\n\nclass Message:\n    pass\n"
    root = make_repo(tmp_path, {**FILES, "pkg/tree.py": prose, "pkg/made.py": tool})
    context = context_of(root, "from .tree import Template\nfrom .made import Message\n\nTemplate(Message(")
    assert {s.path for s in context.snippets} == {"pkg/tree.py"}  # the tool's file is still skipped: control
