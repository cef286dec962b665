"""Repository context in TypeScript, JavaScript, Go, Rust, Java and C, on real repositories nobody here wrote,
beside Copilot's Jaccard windows.

    python benchmarks/bench_context_langs.py [--cases 40] [--budget 1024] [--languages go,rust] [--cache DIR]
        [--split tuning] [--runs 3]
        [--serve N [--dir bench-out]]

Corpora are fetched at run time into the cache folder (default ~/.cache/localcoder-bench/context-langs, or
$LOCALCODER_BENCH_CACHE) and laid out there as git repositories; nothing is committed to localcoder. TypeScript,
JavaScript and Java come from npm tarballs (`npm pack`; the Java of Cordova's and Capacitor's Android runtimes and
react-native-svg's Android code), Go and Rust from Debian's golang-*-dev and librust-*-dev packages
(`apt-get download` + `dpkg -x`: their upstream sources), C from PyPI source distributions that carry a C library
(`pip download --no-binary`). Debian source packages (`apt-get source`) would need deb-src lines, which this
machine's apt sources lack. Every version is pinned, so a rerun sees the same code.

Cases, chosen with tree-sitter by a rule of this file that does not use localcoder's resolvers: a line of a source
file that uses (as an identifier node, outside import statements) a name defined at the top level of exactly one
other file of the repository, when the file can reach it: the name (or, for `x.name`, the `x`) occurs in the
file's import statements (TS/JS, Rust, Java), the name is qualified by an imported package or defined in the same
folder (Go), the same folder (Java's package), or defined in a header the file includes by name (C). One case per
line, sampled with a fixed seed; the line is blanked after its indentation and the cursor put there. The gold is
the line of the definition's name; a snippet covering it is a hit. The repositories of each language were split
into a tuning half and a held-out half before any tuning (`split` below); both are reported. react-native-maps was
added to Java's tuning half later (issue 34's third round), after a full run read Java's held-out figure.

Figures: recall within the budget and MRR for `localcoder.context.gather` and for the baseline (60-line windows of
the repository's other files of the language, stride 30, best identifier Jaccard with the 60 lines before the
cursor first, until the budget is full), in one run; the time of a cold call (a fresh Repository: every file read
and parsed anew, the interpreter already started) and of a warm one (the same call again in the process, as in
`serve` and the language server), with the bundled CodeGen tokenizer counting. `--serve N` also times the first N
cases of each tuning repository inside a running `localcoder serve` (its POST /infill's own `timings_ms.context`,
the model's tokenizer counting; the random-weight model of `bench-context`, built once into --dir). `--split tuning`
runs one half only; with BENCH_SHOW_MISSES=1 set, the tuning repositories' misses are listed (never the held-out
ones'); `--cases 0` leaves the `localcoder context` timing (--runs per language) alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from context_corpus import blanked  # noqa: E402
from tree_sitter import Node  # noqa: E402

from localcoder.completion.snippets import Snippet, render  # noqa: E402
from localcoder.context import bundled_counter, gather  # noqa: E402
from localcoder.context import repository as repository_module  # noqa: E402
from localcoder.context.languages.definitions import parse  # noqa: E402
from localcoder.context.windows import WINDOW_LINES, line_sets, query_of, windows  # noqa: E402


@dataclass(frozen=True)
class Corpus:
    language: str
    name: str
    source: str  # npm:<spec>, deb:<package>, pypi:<spec>
    keep: str  # the folder of the unpacked archive that is the repository (a glob for versioned names)
    split: str  # "tuning" or "held-out", fixed before any tuning


GOCODE = "usr/share/gocode/src/github.com/"
CORPORA = [
    Corpus("typescript", "rxjs", "npm:rxjs@7.8.2", "package/src", "tuning"),
    Corpus("typescript", "trpc-server", "npm:@trpc/server@11.25.2", "package/src", "held-out"),
    Corpus("typescript", "gesture-handler", "npm:react-native-gesture-handler@3.5.0", "package/src", "held-out"),
    Corpus("javascript", "axios", "npm:axios@1.21.1", "package/lib", "tuning"),
    Corpus("javascript", "lodash", "npm:lodash@4.18.1", "package", "held-out"),
    Corpus("javascript", "express", "npm:express@5.3.0", "package", "held-out"),
    Corpus("go", "go-cmp", "deb:golang-github-google-go-cmp-dev", GOCODE + "google/go-cmp", "tuning"),
    Corpus("go", "hcl", "deb:golang-github-hashicorp-hcl-dev", GOCODE + "hashicorp/hcl", "held-out"),
    Corpus("go", "cobra", "deb:golang-github-spf13-cobra-dev", GOCODE + "spf13/cobra", "held-out"),
    Corpus("rust", "regex-syntax", "deb:librust-regex-syntax-dev", "usr/share/cargo/registry/regex-syntax-*", "tuning"),
    Corpus("rust", "serde_json", "deb:librust-serde-json-dev", "usr/share/cargo/registry/serde_json-*", "held-out"),
    Corpus("rust", "nom", "deb:librust-nom-dev", "usr/share/cargo/registry/nom-*", "held-out"),
    Corpus("java", "cordova-android", "npm:cordova-android@15.1.0", "package/framework", "tuning"),
    Corpus("java", "react-native-maps", "npm:react-native-maps@1.29.11", "package/android", "tuning"),  # added later
    Corpus("java", "capacitor", "npm:@capacitor/android@8.6.0", "package/capacitor", "held-out"),
    Corpus("java", "react-native-svg", "npm:react-native-svg@15.16.1", "package/android", "held-out"),
    Corpus("c", "brotli", "pypi:brotli==1.2.1", "brotli-*/c", "tuning"),
    Corpus("c", "psutil", "pypi:psutil==7.2.2", "psutil-*/psutil", "held-out"),
    Corpus("c", "pycryptodome", "pypi:pycryptodome==3.23.0", "pycryptodome-*/src", "held-out"),
]  # fmt: skip
SUFFIXES = {
    "typescript": (".ts", ".tsx"), "javascript": (".js", ".mjs", ".cjs", ".jsx"), "go": (".go",), "rust": (".rs",),
    "java": (".java",), "c": (".c", ".h"),
}  # fmt: skip
GRAMMAR = {".ts": "typescript", ".tsx": "tsx", ".go": "go", ".rs": "rust", ".java": "java", ".c": "c", ".h": "c"}
IMPORTS = {  # statements whose identifiers are not uses, and whose text says what the file can reach
    "typescript": ("import_statement",), "javascript": ("import_statement",), "go": ("import_declaration",),
    "rust": ("use_declaration", "mod_item"), "java": ("import_declaration", "package_declaration"),
    "c": ("preproc_include",),
}  # fmt: skip
WRAPPERS = {  # nodes whose children are top-level too
    "export_statement", "ambient_declaration", "preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif",
    "linkage_specification", "declaration_list", "type_declaration", "const_declaration", "var_declaration",
    "lexical_declaration", "variable_declaration", "template_declaration",
}  # fmt: skip
SHOW_MISSES = bool(os.environ.get("BENCH_SHOW_MISSES"))  # lists the tuning half's misses (never the held-out's)
USE_TYPES = {
    "identifier", "type_identifier", "property_identifier", "field_identifier", "shorthand_property_identifier"
}  # fmt: skip


@dataclass(frozen=True)
class Case:
    file: Path
    line: int
    gold: tuple[str, int]  # path relative to the repository, line of the definition's name

    def buffer(self) -> tuple[str, int]:
        return blanked(self.file, self.line)


# --- corpora ----------------------------------------------------------------------------------------------------


def fetch(corpus: Corpus, cache: Path) -> Path | None:
    """The corpus as a git repository under `cache` (downloaded and unpacked on first use)."""
    repo = cache / "repos" / corpus.name
    if (repo / ".git").is_dir():
        return repo
    downloads = cache / "downloads" / corpus.name
    unpacked = cache / "unpacked" / corpus.name
    shutil.rmtree(downloads, ignore_errors=True)
    shutil.rmtree(unpacked, ignore_errors=True)
    downloads.mkdir(parents=True)
    unpacked.mkdir(parents=True)
    kind, spec = corpus.source.split(":", 1)
    commands = {
        "npm": ["npm", "pack", spec, "--silent", "--pack-destination", str(downloads)],
        "deb": ["apt-get", "download", spec],
        "pypi": [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", spec,
                 "-d", str(downloads)],
    }  # fmt: skip
    done = subprocess.run(commands[kind], cwd=downloads, capture_output=True, text=True, check=False)
    archives = sorted(downloads.iterdir())
    if done.returncode != 0 or not archives:
        print(f"  {corpus.name}: could not fetch {corpus.source}: {(done.stderr or done.stdout).strip()[-200:]}")
        return None
    for archive in archives:
        if archive.suffix == ".deb":
            subprocess.run(["dpkg", "-x", str(archive), str(unpacked)], check=True)
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(unpacked, filter="data")
    folders = sorted(unpacked.glob(corpus.keep))
    if not folders:
        print(f"  {corpus.name}: {corpus.keep} not in the archive")
        return None
    shutil.copytree(folders[0], repo, symlinks=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    return repo


# --- cases: this file's own rule, with tree-sitter, not the resolvers ------------------------------------------


def grammar_of(path: Path) -> str:
    return GRAMMAR.get(path.suffix, "javascript")


def source_files(repo: Path, language: str) -> list[Path]:
    skipped = {"node_modules", "dist", "build", "vendor", "target", ".git", "testdata"}
    return [
        f for f in sorted(repo.rglob("*"))
        if f.suffix in SUFFIXES[language] and not f.name.endswith(".d.ts") and f.is_file() and not f.is_symlink()
        and not skipped & set(f.relative_to(repo).parts)
    ]  # fmt: skip


def declared_names(node: Node) -> list[Node]:
    """The name nodes a top-level node declares (this file's own reading, for choosing cases)."""
    if node.type in WRAPPERS:
        return [n for child in node.named_children for n in declared_names(child)]
    if node.type == "method_declaration":
        return []  # a Go method is reached through its receiver, not by its name
    value = node.child_by_field_name("value")
    if value is not None and (value.text or b"").startswith(b"require("):
        return []  # a binding of another file's export, not a definition
    found = []
    name = node.child_by_field_name("name")
    if name is not None and name.type in USE_TYPES | {"type_identifier"} and node.type not in ("mod_item",):
        found.append(name)
    declarator = node.child_by_field_name("declarator")
    while declarator is not None and declarator.type not in USE_TYPES:
        declarator = declarator.child_by_field_name("declarator")
    if declarator is not None and node.type != "function_definition":
        found.append(declarator)
    return found


def cases_of(repo: Path, language: str, limit: int, seed: int = 0) -> list[Case]:
    files = source_files(repo, language)
    parsed = {}
    definitions: dict[str, list[tuple[Path, int]]] = {}
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        tree = parse(grammar_of(file), text)
        if tree is None:
            continue
        parsed[file] = (tree, text)
        if language == "c" and file.suffix != ".h":
            continue  # C's definitions that count are the headers' declarations
        for node in tree.root_node.named_children:
            for name in declared_names(node):
                definitions.setdefault(name.text.decode(), []).append((file, name.start_point.row + 1))
    unique = {name: places[0] for name, places in definitions.items() if len(places) == 1 and len(name) > 1}
    found = []
    for file, (tree, _text) in parsed.items():
        imports = [
            n for n in tree.root_node.named_children
            if n.type in IMPORTS[language] or (n.type.endswith("declaration") and b"require(" in (n.text or b""))
        ]  # fmt: skip
        imported_words = set(b" ".join(n.text for n in imports).decode().replace(".", " ").replace("/", " ").split())
        imported_words |= {w.strip("{}(),;'\"*:") for w in list(imported_words)}
        import_rows = {r for n in imports for r in range(n.start_point.row, n.end_point.row + 1)}
        used: dict[int, tuple[str, int]] = {}
        stack = [tree.root_node]
        while stack:
            node = stack.pop()
            stack.extend(node.named_children)
            row = node.start_point.row
            if node.type not in USE_TYPES or row in import_rows or row + 1 in used:
                continue
            name = node.text.decode()
            place = unique.get(name)
            if place is None or place[0] == file or not reachable(language, file, node, name, place[0], imported_words):
                continue
            used[row + 1] = (place[0].relative_to(repo).as_posix(), place[1])
        found += [Case(file, line, gold) for line, gold in sorted(used.items())]
    random.Random(seed).shuffle(found)
    return found[:limit]


def reachable(language: str, file: Path, node: Node, name: str, defined: Path, imported: set[str]) -> bool:
    parent = node.parent
    qualifier = ""
    if parent is not None and parent.type in ("member_expression", "selector_expression", "qualified_type",
                                              "scoped_identifier", "scoped_type_identifier", "field_access"):
        first = parent.named_children[0] if parent.named_children else None
        qualifier = first.text.decode() if first is not None and first != node else ""
    if language == "rust" and qualifier[:1].isupper():
        return False  # `Kind::Name` is a variant or an associated item of a type, not a top-level name
    if language in ("typescript", "javascript", "rust"):
        qualified = qualifier != "" and (qualifier in imported or qualifier in ("crate", "self", "super"))
        return name in imported or qualified
    if language == "go":
        return (qualifier != "" and qualifier in imported) or (qualifier == "" and defined.parent == file.parent)
    if language == "java":
        return name in imported or defined.parent == file.parent
    return defined.stem in imported  # C: a header this file includes by name


# --- the baseline and the scoring ------------------------------------------------------------------------------


class Baseline:
    """Copilot's method over the repository: 60-line windows of the other files, best Jaccard first."""

    def __init__(self, repo: Path, language: str) -> None:
        self.repo = repo
        self.files = {}
        for file in source_files(repo, language):
            source = file.read_text(encoding="utf-8", errors="replace")
            self.files[file] = (source.split("\n"), line_sets(source))

    def rank(self, case: Case, text: str, offset: int, budget: int) -> list[tuple[str, int, int]]:
        query = query_of(text, offset, WINDOW_LINES)
        ranked = []
        for file, (_lines, sets) in self.files.items():
            if file != case.file:
                ranked += [(w.score, file, w) for w in windows(sets, query)]
        ranked.sort(key=lambda r: (-r[0], str(r[1]), r[2].start_line))
        count = bundled_counter()
        chosen, room = [], budget
        for _score, file, window in ranked:
            relative = file.relative_to(self.repo).as_posix()
            if any(p == relative and s <= window.end_line and window.start_line <= e for p, s, e in chosen):
                continue
            text = "\n".join(self.files[file][0][window.start_line - 1 : window.end_line])
            tokens = count(render(Snippet(text, relative)))
            if tokens > room:
                break
            chosen.append((relative, window.start_line, window.end_line))
            room -= tokens
        return chosen


def score(ranked: list[tuple[str, int, int]], gold: tuple[str, int]) -> float:
    for rank, (path, start, end) in enumerate(ranked):
        if path == gold[0] and start <= gold[1] <= end:
            return 1.0 / (rank + 1)
    return 0.0


def run_corpus(repo: Path, language: str, limit: int, budget: int, misses: bool = False) -> dict[str, list[float]]:
    cases = cases_of(repo, language, limit)
    baseline = Baseline(repo, language)
    out: dict[str, list[float]] = {"ours": [], "base": [], "cold_s": [], "warm_s": []}
    for case in cases:
        text, offset = case.buffer()
        repository_module._REPOSITORIES.clear()  # cold: a fresh Repository reads and parses every file anew
        started = time.perf_counter()
        context = gather(case.file, text, offset, budget=budget, root=repo)
        out["cold_s"].append(time.perf_counter() - started)
        started = time.perf_counter()
        gather(case.file, text, offset, budget=budget, root=repo)
        out["warm_s"].append(time.perf_counter() - started)
        assert context.tokens <= budget
        ranked = [(s.path, s.start_line, s.end_line) for s in sorted(context.snippets, key=lambda s: s.rank)]
        out["ours"].append(score(ranked, case.gold))
        if misses and not out["ours"][-1]:
            print(f"    miss {case.file.relative_to(repo)}:{case.line} gold {case.gold[0]}:{case.gold[1]}: "
                  f"{text.split(chr(10))[case.line - 1]!r} / {ranked[:4]}")  # fmt: skip
        out["base"].append(score(baseline.rank(case, text, offset, budget), case.gold))
    return out


def cold_cli(repo: Path, language: str, runs: int) -> list[float]:
    """`localcoder context` in a new process (start-up included) on edited copies of a few cases' files."""
    times = []
    for case in cases_of(repo, language, runs, seed=1):
        text, _offset = case.buffer()
        live = case.file.with_name(case.file.stem + "_edited" + case.file.suffix)
        live.write_text(text)
        try:
            times.append(timed_context(live, case.line))
        finally:
            live.unlink()
    return times


def timed_context(file: Path, line: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-m", "localcoder", "context", f"{file}:{line}", "--json", "--budget", "1024"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return time.perf_counter() - started


def start_up(runs: int) -> list[float]:
    """The same command on a one-line text file in an empty folder: the process's start-up, imports and the
    tokenizer, with nothing to resolve."""
    with tempfile.TemporaryDirectory() as scratch:
        note = Path(scratch) / "note.txt"
        note.write_text("hello\n")
        return [timed_context(note, 1) for _ in range(runs)]


def recall(scores: list[float]) -> float:
    return sum(1 for s in scores if s > 0) / max(len(scores), 1)


def row(name: str, got: dict[str, list[float]]) -> str:
    n = len(got["ours"])
    mrr = lambda key: sum(got[key]) / max(n, 1)  # noqa: E731
    ms = lambda key: statistics.median(got[key]) * 1000 if got[key] else 0.0  # noqa: E731
    return (
        f"{name:24} {n:5} {recall(got['ours']):7.0%} {mrr('ours'):6.2f}   {recall(got['base']):8.0%} "
        f"{mrr('base'):6.2f}   {ms('cold_s'):8.1f} {ms('warm_s'):8.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=40, help="cases per repository")
    parser.add_argument("--budget", type=int, default=1024)
    parser.add_argument("--languages", default=",".join(SUFFIXES))
    parser.add_argument("--runs", type=int, default=3, help="cold CLI runs per language")
    default_cache = os.environ.get("LOCALCODER_BENCH_CACHE", str(Path.home() / ".cache/localcoder-bench"))
    parser.add_argument("--cache", type=Path, default=Path(default_cache) / "context-langs")
    parser.add_argument("--serve", type=int, default=0, help="N cases of each tuning repository timed inside serve")
    parser.add_argument("--dir", type=Path, default=Path("bench-out"), help="where the bench model is kept")
    parser.add_argument("--split", choices=("tuning", "held-out"), help="only the repositories of this half")
    args = parser.parse_args()
    print(f"{date.today()}  {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"budget {args.budget} tokens; recall = a snippet covers the line of the definition's name; corpora in "
          f"{args.cache}\n")  # fmt: skip
    if args.runs:
        print(f"localcoder context start-up alone (a text file, nothing to resolve): median "
              f"{statistics.median(start_up(args.runs)):.2f} s over {args.runs}\n")  # fmt: skip
    print(f"{'repository':24} {'cases':>5} {'recall':>7} {'MRR':>6}   {'windows':>8} {'MRR':>6}   "
          f"{'cold ms':>8} {'warm ms':>8}")  # fmt: skip
    keys = ("ours", "base", "cold_s", "warm_s")
    summary, served = [], []
    for language in args.languages.split(","):
        totals = {split: {k: [] for k in keys} for split in ("tuning", "held-out")}
        cli: list[float] = []
        for corpus in (c for c in CORPORA if c.language == language and args.split in (None, c.split)):
            repo = fetch(corpus, args.cache)
            if repo is None:
                continue
            got = run_corpus(repo, language, args.cases, args.budget, SHOW_MISSES and corpus.split == "tuning")
            for key in keys:
                totals[corpus.split][key] += got[key]
            print(row(f"{language}/{corpus.name} ({corpus.split[0]})", got))
            if corpus.split == "tuning" and args.runs:
                cli = cold_cli(repo, language, args.runs)
            if corpus.split == "tuning" and args.serve:
                served.append((f"{language}/{corpus.name}", served_ms(repo, language, args.serve, args.dir)))
        everything = {k: totals["tuning"][k] + totals["held-out"][k] for k in keys}
        for split in ("tuning", "held-out"):
            print(row(f"{language} {split}", totals[split]))
        print(row(f"{language} all", everything))
        if cli:
            print(f"{'':24} localcoder context in a new process (start-up included): median "
                  f"{statistics.median(cli):.2f} s over {len(cli)}")  # fmt: skip
        print()
        summary.append((language, recall(everything["ours"]), recall(everything["base"])))
    for language, ours, base in summary:
        print(f"{language:12} recall@{args.budget}: {ours:.0%} vs {base:.0%} for windows ({(ours - base) * 100:+.0f})")
    for name, times in served:
        print(f"{name:24} inside serve, warm (POST /infill's timings_ms.context): median "
              f"{statistics.median(times):.1f} ms, max {max(times):.1f} ms over {len(times)}")  # fmt: skip


def served_ms(repo: Path, language: str, cases: int, directory: Path) -> list[float]:
    """The context stage's own time inside a running `serve` (bench-context's method and random-weight model):
    each of the repository's first cases posted twice to /infill, the second one's `timings_ms.context`."""
    from benchmarks.bench_context import serve_model, served_context_ms

    gguf = serve_model(directory)
    times: list[float] = []
    for case in cases_of(repo, language, cases):  # served_context_ms leaves each trace's first request out
        buffer = case.buffer()
        times += served_context_ms(case.file, [buffer, buffer], gguf)
    return times


if __name__ == "__main__":
    main()
