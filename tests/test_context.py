"""Repository context (localcoder.context): import resolution on small repositories made here, the budget, the
order across keystrokes (through a real tiny model's prompt cache), the path rules and bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from localcoder.completion.generate import Sampling
from localcoder.completion.request import CompletionRequest
from localcoder.completion.snippets import Snippet, render
from localcoder.context import bundled_counter, find_root, gather
from localcoder.pipeline import complete
from localcoder.runtime import LoadOptions, load_model
from localcoder.server.http import ServeOptions
from localcoder.source import read_source_bytes
from tests.helpers import assert_one_line_error, checked_document, localcoder
from tests.server_run import running_server

FILES = {
    "pyproject.toml": "[project]\nname = 'pkg'\n",
    "pkg/__init__.py": "",
    "pkg/config.py": (
        "import os\n\nDEFAULT = 3\n\n\ndef load_config(path, *, strict=False):\n"
        '    """Read the configuration at path."""\n    with open(path) as handle:\n        return handle.read()\n'
    ),
    "pkg/util/__init__.py": "from .helpers import slugify\nfrom .stars import *\n",
    "pkg/util/helpers.py": "def slugify(text):\n    return text.lower().replace(' ', '-')\n",
    "pkg/util/stars.py": "class Starred:\n    '''Found through a star import.'''\n",
    "pkg/util/deep.py": "def deep_thing(a, b):\n    return a + b\n",
}


def make_repo(root: Path, files: dict[str, str] = FILES) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def context_of(root: Path, name: str, text: str, budget: int = 1024, **options):
    """The context at the end of `text`'s last line, for a buffer `name` under `root` (it need not exist)."""
    return gather(root / name, text, len(text), budget=budget, **options)


def spans(context) -> set[tuple[str, int]]:
    return {(s.path, s.start_line) for s in context.snippets}


USES = [
    ("relative from", "from .config import load_config\n\nx = load_config(", ("pkg/config.py", 6)),
    ("absolute from", "from pkg.config import load_config\n\nx = load_config(", ("pkg/config.py", 6)),
    ("from . import module", "from . import config\n\nx = config.load_config(", ("pkg/config.py", 6)),
    ("import x.y as z", "import pkg.util.deep as d\n\nd.deep_thing(", ("pkg/util/deep.py", 1)),
    ("import x.y, then x.y.f", "import pkg.util.deep\n\npkg.util.deep.deep_thing(", ("pkg/util/deep.py", 1)),
    ("re-export via __init__", "from pkg.util import slugify\n\nslugify(", ("pkg/util/helpers.py", 1)),
    ("star import in __init__", "from .util import Starred\n\nStarred(", ("pkg/util/stars.py", 1)),
    ("star import in the buffer", "from pkg.util.stars import *\n\nStarred(", ("pkg/util/stars.py", 1)),
    ("a module constant", "from .config import DEFAULT\n\nprint(DEFAULT", ("pkg/config.py", 3)),
    (
        "a buffer that does not parse",
        "from .config import load_config\ndef f(:\n    x = load_config(",
        ("pkg/config.py", 6),
    ),
]


@pytest.mark.parametrize("rule, text, gold", USES, ids=[u[0] for u in USES])
def test_imports_resolve_to_their_definitions(tmp_path: Path, rule: str, text: str, gold: tuple[str, int]) -> None:
    root = make_repo(tmp_path)
    context = context_of(root, "pkg/app.py", text)
    assert gold in spans(context), (rule, [s.to_dict() for s in context.snippets])
    snippet = next(s for s in context.snippets if (s.path, s.start_line) == gold)
    assert snippet.text.split("\n")[0] == (root / gold[0]).read_text().split("\n")[gold[1] - 1]
    assert context.root == str(root)


def test_a_src_layout_resolves_from_src(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path, {"setup.py": "", "src/lib/__init__.py": "", "src/lib/models.py": "class Model:\n    x = 1\n"}
    )
    context = context_of(root, "src/lib/app.py", "from lib.models import Model\n\nModel(")
    assert spans(context) == {("src/lib/models.py", 1)}


def test_signature_and_docstring_come_first_then_the_body_as_the_budget_allows(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    text = "from .config import load_config\n\nx = load_config("
    small = next(iter(context_of(root, "pkg/app.py", text, budget=40).snippets))
    large = next(iter(context_of(root, "pkg/app.py", text, budget=400).snippets))
    assert (small.start_line, small.end_line) == (6, 7)  # the def line and its docstring
    assert (large.start_line, large.end_line) == (6, 9)  # and then the whole body


def test_a_name_the_buffer_binds_itself_is_not_looked_up(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    text = "from .config import load_config, DEFAULT\n\ndef load_config(x):\n    return x\n\ny = load_config("
    assert ("pkg/config.py", 6) not in spans(context_of(root, "pkg/app.py", text))
    parameter = "from .config import DEFAULT\n\ndef f(DEFAULT=2):\n    return DEFAULT + "
    assert spans(context_of(root, "pkg/app.py", parameter)) == set()
    assert ("pkg/config.py", 3) in spans(context_of(root, "pkg/app.py", "from .config import DEFAULT\n\nDEFAULT + "))


@pytest.mark.parametrize("budget", [0, 5, 30, 60, 120, 400, 5000])
def test_the_budget_is_never_exceeded_and_tokens_are_what_the_prompt_shows(tmp_path: Path, budget: int) -> None:
    root = make_repo(tmp_path)
    text = "from .config import load_config, DEFAULT\nfrom .util import slugify, Starred\n\nslugify(load_config("
    extra = (Snippet("def editor_chunk():\n    pass\n", "chunk.py"),)
    context = context_of(root, "pkg/app.py", text, budget=budget, extra=extra)
    count = bundled_counter()
    assert sum(count(render(s)) for s in context.to_snippets()) <= budget
    for snippet in context.snippets:
        assert snippet.tokens == count(render(Snippet(snippet.text, snippet.path)))
    if budget >= 400:
        assert len(context.snippets) == 4 and context.extra == extra


def test_editor_chunks_are_merged_not_duplicated(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    chunk = Snippet((root / "pkg/util/helpers.py").read_text(), "pkg/util/helpers.py")
    context = context_of(root, "pkg/app.py", "from .util import slugify\n\nslugify(", extra=(chunk,))
    assert context.snippets == () and context.to_snippets() == (chunk,)


def test_open_documents_win_over_the_disk(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    edited = "class Starred:\n    '''Edited, not saved.'''\n    def shine(self):\n        pass\n"
    opened = {str(root / "pkg/util/stars.py"): edited}
    context = context_of(root, "pkg/app.py", "from .util.stars import Starred\n\nStarred(", open_documents=opened)
    assert "Edited, not saved." in context.snippets[0].text


def test_the_order_is_stable_across_keystrokes(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    before = "from .config import load_config\nfrom .util import slugify\nfrom pkg.util.deep import deep_thing\n\n"
    states = [before + typed for typed in ("", "x", "x = ", "x = sl", "x = slu")]
    shown = [context_of(root, "pkg/app.py", text).to_snippets() for text in states]
    assert len(shown[0]) == 3 and all(s == shown[0] for s in shown)


def test_a_second_request_reads_only_the_changed_tokens(tmp_path: Path, tiny_f32_gguf: Path) -> None:
    """Through a real tiny model: the context goes first in the prompt and stays byte-identical while the user
    types, so llama.cpp's cache keeps it and the second request reads only the few tokens typed."""
    root = make_repo(tmp_path)
    model = load_model(tiny_f32_gguf, LoadOptions(ctx=1024))
    before = "from .config import load_config\nfrom .util import slugify\n\n\ndef main():\n    "
    read, shown = [], []
    for typed in ("value = ", "value = slugi"):
        text = before + typed
        buffer = read_source_bytes(text.encode(), name=str(root / "pkg" / "app.py"))
        request = CompletionRequest.build(buffer, 6, None, sampling=Sampling(temperature=0, max_tokens=1))
        result = complete(model, request)
        read.append(result.prompt_tokens - result.alternatives[0].cached_tokens)
        shown.append(result.context)
    assert shown[0] == shown[1] and {s["path"] for s in shown[0]} == {"pkg/config.py", "pkg/util/helpers.py"}
    assert read[0] > 60 and read[1] <= 8, read
    off = CompletionRequest.build(buffer, 6, None, sampling=Sampling(temperature=0, max_tokens=1), context_budget=0)
    assert complete(model, off).context == []


def test_nothing_outside_the_root_is_read(tmp_path: Path) -> None:
    outside = make_repo(tmp_path / "outside", {"secret.py": "def secret():\n    pass\n", "lib/__init__.py": ""})
    root = make_repo(tmp_path / "repo")
    (root / "pkg" / "escape.py").symlink_to(outside / "secret.py")
    (root / "pkg" / "linked").symlink_to(outside / "lib", target_is_directory=True)
    (outside / "lib" / "far.py").write_text("def far():\n    pass\n")
    assert find_root(root / "pkg" / "app.py") == root
    for text in (
        "from .escape import secret\n\nsecret(",  # a link to a file outside
        "from .linked.far import far\n\nfar(",  # through a linked folder
        "from ...outside.secret import secret\n\nsecret(",  # `..` above the root
    ):
        assert context_of(root, "pkg/app.py", text).snippets == (), text


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_ignored_and_vendored_files_are_skipped(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    (root / ".gitignore").write_text("pkg/generated.py\n")
    make_repo(root, {"pkg/generated.py": "def made():\n    pass\n", "pkg/vendor/lib.py": "def bundled():\n    pass\n"})
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    text = "from .generated import made\nfrom .vendor.lib import bundled\nfrom .config import DEFAULT\n\nmade(bundled("
    assert spans(context_of(root, "pkg/app.py", text)) == {("pkg/config.py", 3)}


def test_bad_files_are_skipped_quietly(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    (root / "pkg" / "binary.py").write_bytes(b"def f():\x00\n")
    (root / "pkg" / "latin.py").write_bytes("def g():\n    return 'caf\xe9'\n".encode("latin-1"))
    (root / "pkg" / "broken.py").write_text("def broken(a, b):\n    return (\n\nclass Half(\n")
    (root / "pkg" / "loop_a.py").symlink_to(root / "pkg" / "loop_b.py")
    (root / "pkg" / "loop_b.py").symlink_to(root / "pkg" / "loop_a.py")
    (root / "pkg" / "huge.py").write_text("def h():\n    pass\n" + "#" * (2 << 20))
    imports = "".join(f"from .{m} import {n}\n" for m, n in [("binary", "f"), ("latin", "g"), ("loop_a", "x")])
    text = imports + "from .huge import h\nfrom .broken import broken, Half\n\nbroken(f(g(x(h("
    assert spans(context_of(root, "pkg/app.py", text)) == {("pkg/broken.py", 1), ("pkg/broken.py", 4)}


def test_a_file_outside_any_repository_and_an_empty_root(tmp_path: Path) -> None:
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    assert find_root(lonely / "unsaved.py") == lonely
    assert context_of(lonely, "unsaved.py", "import os\n\nos.path.join(").snippets == ()
    assert context_of(lonely, "notes.txt", "some words here and there").snippets == ()


def test_other_languages_get_similar_windows(tmp_path: Path) -> None:
    shared = "function parseHeader(line) {\n  const [key, value] = line.split(':');\n  return { key, value };\n}\n"
    root = make_repo(tmp_path, {"package.json": "{}", "lib/headers.lua": shared * 4, "lib/other.lua": "let x = 1;\n"})
    (root / "setup.py").write_text("")
    context = context_of(root, "lib/app.lua", "const { key, value } = parseHeader(line.split(':')")
    assert [s.path for s in context.snippets] == ["lib/headers.lua"]
    assert "identifier Jaccard" in context.snippets[0].why


def test_the_context_command(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    app = root / "pkg" / "app.py"
    app.write_text("from .config import load_config\n\nvalue = load_config('x')\n")
    done = localcoder("context", f"{app}:3", "--json", "--budget", "200")
    assert done.returncode == 0, done.stderr
    document = checked_document("context", done.stdout)
    assert document["root"] == str(root) and document["budget"] == 200
    assert [(s["path"], s["start_line"]) for s in document["snippets"]] == [("pkg/config.py", 6)]
    text = localcoder("context", f"{app}:3", "--budget", "200")
    assert text.returncode == 0 and "def load_config(path, *, strict=False):" in text.stdout
    assert_one_line_error(localcoder("context", f"{root / 'missing.py'}:1"), "does not exist")
    assert_one_line_error(localcoder("context", f"{app}:99"), "99")


def test_the_tokenizer_is_bundled(tmp_path: Path) -> None:
    """`context` counts tokens with no model anywhere and no network."""
    root = make_repo(tmp_path)
    app = root / "pkg" / "app.py"
    app.write_text("from .config import DEFAULT\n\nDEFAULT\n")
    env = {"LOCALCODER_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "LOCALCODER_MODEL": ""}
    done = localcoder("context", f"{app}:3", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["snippets"][0]["tokens"] == bundled_counter()("# pkg/config.py\nDEFAULT = 3\n\n")
    assert not os.path.exists(tmp_path / "home" / "models")


def test_complete_json_lists_the_same_snippets(tmp_path: Path, tiny_f32_gguf: Path) -> None:
    root = make_repo(tmp_path)
    app = root / "pkg" / "app.py"
    app.write_text("from .config import load_config\nfrom .util import slugify\n\nvalue = slugify(load_config('x'))\n")
    shown = localcoder("context", f"{app}:4", "--json", "--budget", "120")
    options = ["--model", str(tiny_f32_gguf), "--no-server", "--json", "--max-tokens", "1", "--context-budget", "120"]
    completed = localcoder("complete", f"{app}:4", *options)
    assert completed.returncode == 0, completed.stderr
    expected = checked_document("context", shown.stdout)["snippets"]
    assert len(expected) == 2 and checked_document("complete", completed.stdout)["context"] == expected
    with_model = localcoder("context", f"{app}:4", "--json", "--budget", "120", "--model", str(tiny_f32_gguf))
    assert checked_document("context", with_model.stdout)["snippets"] == expected  # the same tokenizer, counted by it
    off = localcoder("complete", f"{app}:4", *options, "--no-repo-context")
    assert checked_document("complete", off.stdout)["context"] == []


def test_the_index_is_kept_on_disk_follows_changes_and_takes_concurrent_saves(tmp_path: Path) -> None:
    """Four processes index one repository at once (a language each): the index ends valid with all of them; a
    changed file is read again, keyed by size and mtime."""
    body = "function parseHeader(line) {\n  const [key, value] = line.split(':');\n  return { key, value };\n}\n"
    languages = ("rb", "lua", "php", "kt")  # languages without a resolver: windows
    files = {"setup.py": "", **{f"lib/headers.{x}": body * 4 for x in languages}}
    root = make_repo(
        tmp_path / "repo", {**files, **{f"lib/app.{x}": "parseHeader(line.split(':'))\n" for x in languages}}
    )
    env = {"LOCALCODER_HOME": str(tmp_path / "home")}
    running = [
        subprocess.Popen(
            [sys.executable, "-m", "localcoder", "context", f"{root / f'lib/app.{x}'}:1", "--json"],
            stdout=subprocess.PIPE,
            env={**os.environ, **env},
        )
        for x in languages
    ]
    for process in running:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0 and json.loads(out)["snippets"]
    [index] = (tmp_path / "home" / "cache" / "context").glob("*.json")
    document = json.loads(index.read_text())
    assert document["root"] == str(root) and {f"lib/headers.{x}" for x in languages} <= set(document["files"])

    (root / "lib" / "headers.rb").write_text("function renamedThing(line) {\n  return line;\n}\n" * 4)
    again = localcoder("context", f"{root / 'lib/app.rb'}:1", "--json", env=env)
    assert [s["end_line"] for s in json.loads(again.stdout)["snippets"]] == [12]  # the new text: 12 lines (not 16)
    assert "renamedThing" in json.loads(index.read_text())["files"]["lib/headers.rb"][2][0]


def test_serve_infill_gathers_context_for_an_absolute_path(tmp_path: Path, tiny_f32_gguf: Path) -> None:
    root = make_repo(tmp_path)
    text = "from .config import load_config\n\nvalue = load_config('x')\n"
    body = {"text": text, "line": 3, "max_tokens": 1, "temperature": 0}
    with running_server("--model", str(tiny_f32_gguf), "--quiet") as server:
        status, answer = server.post("/infill", {**body, "path": str(root / "pkg" / "app.py")})
        assert status == 200, answer
        assert [(s["path"], s["start_line"]) for s in answer["context"]] == [("pkg/config.py", 6)]
        for other in ({"path": "pkg/app.py"}, {"path": str(root / "pkg" / "app.py"), "repo_context": 0}):
            status, answer = server.post("/infill", {**body, **other})
            assert status == 200 and answer["context"] == [], answer
    # A server that does not read repositories (the default off loopback, where whoever asks would see its files).
    with running_server("--model", str(tiny_f32_gguf), "--quiet", "--no-repo-context") as server:
        status, answer = server.post("/infill", {**body, "path": str(root / "pkg" / "app.py")})
        assert status == 200 and answer["context"] == [], answer
    assert not ServeOptions(host="0.0.0.0").reads_repositories and ServeOptions(host="::1").reads_repositories


def test_a_huge_buffer_is_read_around_the_cursor(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    filler = "".join(f"v{i} = {i}\n" for i in range(200_000))  # about 2 MB: the imports above, the use far below
    text = "from .config import load_config\n" + filler + "x = load_config("
    assert spans(context_of(root, "pkg/app.py", text)) == {("pkg/config.py", 6)}


def test_a_huge_tree_stops_at_its_budgets_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = sys.modules["localcoder.context.gather"]
    body = "function parseHeader(line) {\n  return line.split(':');\n}\n"
    root = make_repo(tmp_path, {"setup.py": "", **{f"lib/f{i:02}.lua": body for i in range(30)}})
    monkeypatch.setattr(stage, "MAX_WINDOW_FILES", 10)
    monkeypatch.setattr(stage, "INDEX_SECONDS", 0)
    context = context_of(root, "lib/app.lua", "parseHeader(line.split(':'))")
    assert "repository context looked at the first 10 files only" in context.notes
    assert "indexed 1 of 10 new files in 0 s; more next time" in context.notes
    again = context_of(root, "lib/app.lua", "parseHeader(line.split(':'))")  # the index grows call by call
    assert "indexed 1 of 9 new files in 0 s; more next time" in again.notes


def test_a_folder_outside_any_project_is_not_walked_below(tmp_path: Path) -> None:
    body = "function parseHeader(line) {\n  return line.split(':');\n}\n" * 4
    folder = make_repo(tmp_path, {"near.lua": body, "deep/far.lua": body})
    paths = {s.path for s in context_of(folder, "app.lua", "parseHeader(line.split(':'))").snippets}
    assert paths == {"near.lua"}
    (folder / "setup.py").write_text("")
    paths = {s.path for s in context_of(folder, "app2.lua", "parseHeader(line.split(':'))").snippets}
    assert paths == {"near.lua", "deep/far.lua"}
