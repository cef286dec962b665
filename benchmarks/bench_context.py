"""Repository context, RepoBench-R style, on real packages nobody here wrote; beside Copilot's Jaccard windows.

    python benchmarks/bench_context.py [--half tuning|held-out|all] [--packages docutils,jinja2,...] [--misses]
                                       [--cases 30] [--budget 1024] [--no-timing] [--no-serve]

The corpus (twenty-one packages' sdists from PyPI, each a git repository in a cache folder), its tuning side (the
thirteen of the first rounds) and its fresh held-out set (eight chosen by a written rule before any run), and the
rule that picks cases are in context_corpus.py. --misses lists the tuning side's misses (never the held-out set's).
The cursor is at the start of the case's line, after its indentation, and the rest of the line is blanked, as if
the user were about to type it.
A snippet is a hit when it is in the gold's file and shows the gold's line (an outline shows only signature lines,
so the line itself must be among the snippet's lines).

Reported per package, per half and per case kind: recall within the budget, MRR (1 / the `rank` of the first
snippet that hits, 0 when none does; `rank` is the stage's own order of preference), and the time per call, for
`localcoder.context.gather` and for the baseline (60-line windows of the package's other modules, stride 30, ranked
by identifier Jaccard similarity with the 60 lines before the cursor, keywords left out, best first until the
budget is full), in the same run. Then the cold `localcoder context` command (a new process, start-up included) on
one git repository holding all twenty-one trees (about 4,000 files), the same calls warm in one process, and the
cost of a keystroke: a line typed one character at a time in a real module (warm `gather()` per keystroke), and in
that module repeated to 15,000 lines; inside a running `localcoder serve` too (its POST /infill reports the context
stage's own time; a random-weight model of the bench shape, built once into --dir; --no-serve skips it). Last,
the windows' path (other languages: no imports to follow) on a git copy of an installed C++ header tree (--headers,
torch's by default), cold with its on-disk index and warm.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from context_corpus import EVERY, HELD_OUT, TUNING, Case, Package, cache_folder, cases_of, repository  # noqa: E402

from localcoder.completion.snippets import Snippet, render  # noqa: E402
from localcoder.context import bundled_counter, gather  # noqa: E402
from localcoder.context.windows import WINDOW_LINES, file_lines, keywords_of, line_sets, query_of, windows  # noqa: E402

PYTHON_KEYWORDS = keywords_of(".py")
Ranked = list[tuple[str, int, int, str]]  # path, first line, last line, text; best first


class Baseline:
    """Copilot's method over the whole package: 60-line windows of the other modules, best Jaccard first."""

    def __init__(self, root: Path, package: Package) -> None:
        self.root = root
        self.files = {}
        for file in sorted((root / package.folder).rglob("*.py")):
            if "_vendor" in file.parts:
                continue
            try:
                source = file.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            self.files[file] = (file_lines(source), line_sets(source))

    def rank(self, case: Case, text: str, offset: int, budget: int) -> Ranked:
        query = query_of(text, offset, WINDOW_LINES, PYTHON_KEYWORDS)
        ranked = []
        for file, (_lines, sets) in self.files.items():
            if file != case.file:
                ranked += [(w.score, file, w) for w in windows(sets, query, keywords=PYTHON_KEYWORDS)]
        ranked.sort(key=lambda r: (-r[0], str(r[1]), r[2].start_line))
        count = bundled_counter()
        chosen: Ranked = []
        room = budget
        for _score, file, window in ranked:
            relative = file.relative_to(self.root).as_posix()
            if any(p == relative and s <= window.end_line and window.start_line <= e for p, s, e, _ in chosen):
                continue
            text = "\n".join(self.files[file][0][window.start_line - 1 : window.end_line])
            tokens = count(render(Snippet(text, relative)))
            if tokens > room:
                break
            chosen.append((relative, window.start_line, window.end_line, text))
            room -= tokens
        return chosen


def reciprocal_rank(ranked: Ranked, gold: tuple[str, int], gold_text: str) -> float:
    for rank, (path, start, end, text) in enumerate(ranked, 1):
        if path == gold[0] and start <= gold[1] <= end and gold_text in text.split("\n"):
            return 1.0 / rank
    return 0.0


def run_package(package: Package, limit: int, budget: int, with_baseline: bool = True) -> list[dict]:
    root = repository(package)
    baseline = Baseline(root, package) if with_baseline else None
    records = []
    for case in cases_of(root, package, limit):
        text, offset = case.buffer()
        gold_text = (root / case.gold[0]).read_text(encoding="utf-8").split("\n")[case.gold[1] - 1]
        started = time.perf_counter()
        context = gather(case.file, text, offset, budget=budget, root=root)
        ours_s = time.perf_counter() - started
        assert context.tokens <= budget
        ours = [(s.path, s.start_line, s.end_line, s.text) for s in sorted(context.snippets, key=lambda s: s.rank)]
        started = time.perf_counter()
        base = baseline.rank(case, text, offset, budget) if baseline is not None else []
        base_s = time.perf_counter() - started
        records.append(
            {
                "package": package.name,
                "kind": case.kind,
                "first": case.first,
                "ours": reciprocal_rank(ours, case.gold, gold_text),
                "base": reciprocal_rank(base, case.gold, gold_text),
                "ours_s": ours_s,
                "base_s": base_s,
                "where": f"{case.file.relative_to(root).as_posix()}:{case.line}",
                "gold": f"{case.gold[0]}:{case.gold[1]}",
            }
        )
    return records


def row(name: str, records: list[dict]) -> str:
    n = len(records)
    recall = lambda key: sum(1 for r in records if r[key] > 0) / max(n, 1)  # noqa: E731
    mrr = lambda key: sum(r[key] for r in records) / max(n, 1)  # noqa: E731
    ms = lambda key: statistics.median(r[key] for r in records) * 1000 if records else 0.0  # noqa: E731
    return (
        f"{name:28} {n:5} {recall('ours'):7.0%} {mrr('ours'):6.2f} {ms('ours_s'):8.1f}"
        f"   {recall('base'):8.0%} {mrr('base'):6.2f} {ms('base_s'):8.1f}"
    )


def recall(records: list[dict], key: str = "ours") -> float:
    return sum(1 for r in records if r[key] > 0) / max(len(records), 1)


def report(records: list[dict], budget: int) -> None:
    header = f"{'':28} {'cases':>5} {'recall':>7} {'MRR':>6} {'ms':>8}   {'baseline':>8} {'MRR':>6} {'ms':>8}"
    tuning, held = "tuning side (the thirteen of the first rounds)", "fresh held-out set (never tuned on)"
    for title, names in ((tuning, TUNING), (held, HELD_OUT)):
        half = [r for r in records if r["package"] in names]
        if not half:
            continue
        print(f"\n{title}\n{header}")
        for name in names:
            if any(r["package"] == name for r in half):
                print(row(name, [r for r in half if r["package"] == name]))
        print(row("all", half))
        print(row("  from x import N; N", [r for r in half if r["kind"] == "from"]))
        print(row("  m.N (a module imported)", [r for r in half if r["kind"] == "module"]))
        print(row("  first use in the file", [r for r in half if r["first"]]))
        print(row("  used above", [r for r in half if not r["first"]]))
    print()
    for title, names in (("tuning side", TUNING), ("fresh held-out", HELD_OUT)):
        half = [r for r in records if r["package"] in names]
        if not half:
            continue
        module = [r for r in half if r["kind"] == "module"]
        ours, base = recall(half), recall(half, "base")
        mrr = sum(r["ours"] for r in half) / len(half)
        print(f"{title} recall@{budget}: {ours:.0%} (target >= 95%), m.N cases {recall(module):.0%} (target >= 90%),")
        gain = (ours - base) * 100
        print(f"  {gain:+.0f} points over the Jaccard baseline's {base:.0%} (target >= +15), MRR {mrr:.2f}")
    print(f"all {len({r['package'] for r in records})} packages: recall@{budget} {recall(records):.0%},"
          f" baseline {recall(records, 'base'):.0%}")  # fmt: skip


def misses(records: list[dict]) -> None:
    """The tuning side's misses, one a line (the held-out set's are never listed: they must not steer the tuning)."""
    print("\nmisses (tuning side only)")
    for r in records:
        if r["package"] in TUNING and r["ours"] == 0:
            first = "first" if r["first"] else "above"
            print(f"  {r['package']:16} {r['kind']:6} {first:5} {r['where']} -> {r['gold']}")


def corpus() -> Path:
    """One git repository holding every package's tree (the cold timing's 3,000-file repository)."""
    root = cache_folder() / f"corpus-{len(EVERY)}"
    if not (root / ".git").is_dir():
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        for package in EVERY:
            tree = repository(package)
            shutil.copytree(tree, partial / tree.name, ignore=shutil.ignore_patterns(".git", "__pycache__"))
        subprocess.run(["git", "init", "-q", str(partial)], check=True)
        subprocess.run(["git", "-C", str(partial), "add", "-A"], check=True)
        partial.rename(root)
    return root


def cold_and_warm(runs: int) -> list[Case]:
    root = corpus()
    files = subprocess.run(["git", "-C", str(root), "ls-files"], capture_output=True, text=True).stdout.split()
    cases = []
    for package in EVERY:
        if package.name in HELD_OUT:
            tree = root / f"{package.name}-{package.version}"
            cases += cases_of(tree, package, 2, seed=1)[:2]
    cases = cases[:runs]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    cold = []
    for case in cases:
        text, _offset = case.buffer()
        live = case.file.with_name(case.file.stem + "_edited.py")
        live.write_text(text)
        command = [sys.executable, "-m", "localcoder", "context", f"{live}:{case.line}", "--json", "--budget", "1024"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, env=env, check=False)
        cold.append(time.perf_counter() - started)
        live.unlink()
        assert done.returncode == 0, done.stderr
    buffers = [(case.file, *case.buffer()) for case in cases]
    for file, text, offset in buffers:
        gather(file, text, offset, budget=1024)
    warm = []
    for file, text, offset in buffers:
        started = time.perf_counter()
        gather(file, text, offset, budget=1024)
        warm.append(time.perf_counter() - started)
    print(f"\nrepository: all {len(EVERY)} trees in one git repository ({len(files)} files)")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "localcoder", "context", "--help"], capture_output=True, env=env, check=True)
    startup = time.perf_counter() - started
    print(f"  localcoder context, cold:   median {statistics.median(cold):.2f} s over {len(cold)}")
    print(f"  of which start-up alone (localcoder context --help): {startup:.2f} s")
    print(f"  gather() warm, one process: median {statistics.median(warm) * 1000:.1f} ms over {len(warm)}")
    return cases


def typing_trace(file: Path, times: int) -> tuple[list[tuple[str, int]], int]:
    """A line of `file` (its body repeated `times` times) typed one character at a time, in the middle of the
    module: the buffer and cursor after each keystroke, and the module's line count."""
    lines = file_lines(file.read_text(encoding="utf-8"))
    body_start = next((i for i, line in enumerate(lines) if line.startswith(("def ", "class "))), len(lines) // 2)
    lines = lines[:body_start] + lines[body_start:] * times
    middle = len(lines) // 2
    target = next(i for i in range(middle, len(lines)) if lines[i].strip() and "." in lines[i] and lines[i][:1] == " ")
    typed = lines[target]
    indent = len(typed) - len(typed.lstrip())
    before = "\n".join(lines[:target]) + "\n" + typed[:indent]
    after = "\n" + "\n".join(lines[target + 1 :])
    trace = [(before + typed[indent:k] + after, len(before) + k - indent) for k in range(indent, len(typed) + 1)]
    return trace, len(lines)


def keystrokes(root: Path, module: Path, serve_model: Path | None) -> None:
    print("\nper keystroke, warm (a line typed one character at a time in the middle of the module)")
    for times in (1, None):
        size = len(file_lines(module.read_text(encoding="utf-8")))
        trace, lines = typing_trace(module, times or max(1, -(-15_000 // size)))
        gather(module, *trace[0], budget=1024)
        spent = []
        for text, offset in trace[1:]:
            started = time.perf_counter()
            gather(module, text, offset, budget=1024)
            spent.append((time.perf_counter() - started) * 1000)
        where = f"{module.relative_to(root)} ({lines} lines)"
        print(f"  gather(), one process, {where}: median {statistics.median(spent):.1f} ms, max {max(spent):.1f}"
              f" over {len(spent)} keystrokes")  # fmt: skip
        if serve_model is not None:
            served = served_context_ms(module, trace, serve_model)
            print(f"  inside serve (POST /infill's timings_ms.context), {where}: median {statistics.median(served):.1f}"
                  f" ms, max {max(served):.1f}")  # fmt: skip


def served_context_ms(file: Path, trace: list[tuple[str, int]], gguf: Path) -> list[float]:
    """The context stage's time per request inside a running `localcoder serve` (a random-weight model of the bench
    shape; one token generated): each keystroke's buffer POSTed to /infill with the file's absolute path; the figure
    is the server's own `timings_ms.context`, the first request left out."""
    from localcoder.runtime import LoadOptions
    from localcoder.server.http import LocalcoderServer, ServeOptions
    from localcoder.server.pool import ModelPool, PoolOptions
    from tests.server_run import Server

    pool = ModelPool(PoolOptions(LoadOptions(str(gguf), 2048), keep_alive=-1))
    server = LocalcoderServer(ServeOptions(port=0, pool=pool.options), pool, lambda _line: None)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    client = Server(f"http://127.0.0.1:{server.server_address[1]}", None)  # type: ignore[arg-type]
    pool.preload(None)
    times = []
    try:
        for text, offset in trace:
            line = text.count("\n", 0, offset) + 1
            col = offset - text.rfind("\n", 0, offset)
            body = {"text": text, "path": str(file), "line": line, "col": col, "max_tokens": 1, "temperature": 0,
                    "repo_context": 1024}  # fmt: skip
            status, answer = client.post("/infill", body)
            assert status == 200, answer
            times.append(answer["timings_ms"]["context"])
    finally:
        server.shutdown()
        server.server_close()
    return times[1:]


def other_language(folder: Path, suffix: str, runs: int) -> None:
    """The windows' path (no imports to follow): cold CLI calls on a git copy of `folder`, the first one building
    the on-disk index, the next ones reading it; then warm calls in one process."""
    import random
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / folder.name
        shutil.copytree(folder, repo)
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
        files = sorted(repo.rglob(f"*{suffix}"))
        picked = random.Random(2).sample(files, min(runs, len(files)))
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "LOCALCODER_HOME": scratch}
        cold = []
        for file in picked:
            line = max(1, file.read_text(encoding="utf-8", errors="replace").count("\n") // 2)
            command = [sys.executable, "-m", "localcoder", "context", f"{file}:{line}", "--json", "--budget", "1024"]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, env=env, check=False)
            cold.append(time.perf_counter() - started)
            assert done.returncode == 0, done.stderr
        os.environ["LOCALCODER_HOME"] = scratch
        buffers = [(file, file.read_text(encoding="utf-8", errors="replace")) for file in picked]
        warm = []
        for file, text in buffers * 2:
            started = time.perf_counter()
            gather(file, text, len(text) // 2, budget=1024)
            warm.append(time.perf_counter() - started)
        print(f"\nother languages: a git copy of {folder.name} ({len(files)} {suffix} files), windows from the index")
        print(f"  localcoder context, first (builds the index): {cold[0]:.2f} s")
        print(f"  localcoder context, cold, index on disk:      median {statistics.median(cold[1:]):.2f} s")
        warm_ms = statistics.median(warm[len(buffers) :]) * 1000
        print(f"  gather() warm, one process:                   median {warm_ms:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=30, help="cases per package")
    parser.add_argument("--budget", type=int, default=1024)
    parser.add_argument("--half", choices=("tuning", "held-out", "all"), default="all", help="which packages")
    parser.add_argument("--packages", help="these packages only (comma-separated), whatever --half says")
    parser.add_argument("--misses", action="store_true", help="list the tuning side's misses")
    parser.add_argument("--no-baseline", action="store_true", help="skip the Jaccard windows (quicker tuning runs)")
    parser.add_argument("--runs", type=int, default=7, help="cold CLI runs")
    parser.add_argument("--no-timing", action="store_true", help="recall only: no cold, warm or keystroke timings")
    parser.add_argument("--no-serve", action="store_true", help="skip the timing inside serve (needs no model)")
    parser.add_argument("--dir", type=Path, default=Path("bench-out"), help="where the bench model is kept")
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    parser.add_argument(
        "--headers", type=Path, default=site / "torch/include/torch", help="a C++ tree for the windows' path"
    )
    args = parser.parse_args()
    print(f"{date.today()}  {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"budget {args.budget} tokens; corpus in {cache_folder()}")
    print(f"tuning side {', '.join(TUNING)}\nfresh held-out set {', '.join(HELD_OUT)}")
    halves = {"tuning": TUNING, "held-out": HELD_OUT, "all": TUNING + HELD_OUT}
    wanted = set(args.packages.split(",")) if args.packages else set(halves[args.half])
    records: list[dict] = []
    for package in EVERY:
        if package.name in wanted:
            records += run_package(package, args.cases, args.budget, not args.no_baseline)
    report(records, args.budget)
    if args.misses:
        misses(records)
    if args.no_timing:
        return
    cold_and_warm(args.runs)
    root = corpus()
    model = None if args.no_serve else serve_model(args.dir)
    keystrokes(root, root / "docutils-0.21.2" / "docutils" / "writers" / "_html_base.py", model)
    if args.headers.is_dir():
        other_language(args.headers, ".h", args.runs)


def serve_model(directory: Path) -> Path:
    """The random-weight GGUF of the bench shape that bench-complete and bench-editor use (built once)."""
    from benchmarks.bench_complete import bench_model

    directory.mkdir(parents=True, exist_ok=True)
    return bench_model("bench", "Q4_K_M", directory)


if __name__ == "__main__":
    main()
