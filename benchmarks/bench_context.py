"""Repository context, RepoBench-R style, on installed packages nobody here wrote; beside Copilot's Jaccard windows.

    python benchmarks/bench_context.py [--cases 30] [--budget 1024] [--packages rich,click,...] [--big transformers]

Each package in site-packages is a repository (its folder is the root). A case is a line of one of its modules
that uses a name the module imports (`from M import name`) from another module of the package, where `name` is a
def, class or assignment at M's top level (found here with `ast`, not with localcoder's resolver). The cursor is at
the start of that line, after its indentation, and the rest of the line is blanked, as if the user were about
to type it. The gold is the line where `name` is defined; a snippet that covers it is a hit.

Reported per package and in total: recall within the budget, MRR (1 / the rank of the first snippet covering the
gold, 0 when none does), and the time per call, for `localcoder.context.gather` and for the baseline (60-line
windows of the package's other files, stride 30, ranked by identifier Jaccard similarity with the 60 lines before
the cursor, best first until the budget is full), in the same run. Then the cold `localcoder context` command
(a new process, start-up included) on a git repository of about 3,000 files (a copy of an installed package), and
the same call warm in one resident process (what `serve` and the language server pay per request), and inside a
running `localcoder serve` (its POST /infill reports the context stage's own time; a random-weight model of the
bench shape, built once into --dir; --no-serve skips it).
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localcoder.completion.snippets import Snippet, render  # noqa: E402
from localcoder.context import bundled_counter, gather  # noqa: E402
from localcoder.context.windows import WINDOW_LINES, line_sets, query_of, windows  # noqa: E402

SITE = (
    Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
).resolve()
PACKAGES = "rich,click,huggingface_hub,jsonschema,pygls,httpx,prompt_toolkit"


@dataclass(frozen=True)
class Case:
    file: Path
    line: int  # 1-based: the line blanked after its indentation, the cursor at its start
    gold: tuple[str, int]  # (path relative to the package, 1-based definition line)

    def buffer(self) -> tuple[str, int]:
        """The file's text with the cursor line blanked after its indentation, and the cursor's offset."""
        lines = self.file.read_text(encoding="utf-8").split("\n")
        line = lines[self.line - 1]
        indent = line[: len(line) - len(line.lstrip())]
        offset = sum(len(x) + 1 for x in lines[: self.line - 1]) + len(indent)
        return "\n".join(lines[: self.line - 1] + [indent] + lines[self.line :]), offset


def top_level_lines(module: Path) -> dict[str, int]:
    try:
        tree = ast.parse(module.read_text(encoding="utf-8"))
    except (SyntaxError, ValueError, UnicodeDecodeError):
        return {}
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found[node.name] = node.lineno
        elif isinstance(node, ast.Assign):
            found.update((t.id, node.lineno) for t in node.targets if isinstance(t, ast.Name))
    return found


def module_path(package: Path, file: Path, node: ast.ImportFrom) -> Path | None:
    if node.level:
        base = file.parent
        for _ in range(node.level - 1):
            base = base.parent
        parts = node.module.split(".") if node.module else []
    else:
        parts = (node.module or "").split(".")
        if parts[0] != package.name:
            return None
        base, parts = package, parts[1:]
    target = base.joinpath(*parts)
    for candidate in (target.with_suffix(".py") if parts else None, target / "__init__.py"):
        if candidate is not None and candidate.is_file() and package in candidate.resolve().parents:
            return candidate
    return None


def cases_of(package: Path, limit: int, seed: int = 0) -> list[Case]:
    found = []
    for file in sorted(package.rglob("*.py")):
        try:
            text = file.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (SyntaxError, ValueError, UnicodeDecodeError):
            continue
        imported: dict[str, tuple[str, int]] = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                module = module_path(package, file, node)
                if module is None or module == file:
                    continue
                lines = top_level_lines(module)
                for alias in node.names:
                    if alias.name in lines:
                        imported[alias.asname or alias.name] = (
                            module.relative_to(package).as_posix(),
                            lines[alias.name],
                        )
        if not imported:
            continue
        used: dict[int, tuple[str, int]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in imported and node.lineno not in used:
                used[node.lineno] = imported[node.id]
        found += [Case(file, number, gold) for number, gold in sorted(used.items())]
    random.Random(seed).shuffle(found)
    return found[:limit]


class Baseline:
    """Copilot's method over the whole package: 60-line windows of the other files, best Jaccard first."""

    def __init__(self, package: Path) -> None:
        self.package = package
        self.files = {}
        for file in sorted(package.rglob("*.py")):
            try:
                source = file.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
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
            relative = file.relative_to(self.package).as_posix()
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


def run_package(package: Path, limit: int, budget: int) -> dict[str, list[float]]:
    cases = cases_of(package, limit)
    baseline = Baseline(package)
    out: dict[str, list[float]] = {"ours": [], "base": [], "ours_s": [], "base_s": []}
    for case in cases:
        text, offset = case.buffer()
        started = time.perf_counter()
        context = gather(case.file, text, offset, budget=budget, root=package)
        out["ours_s"].append(time.perf_counter() - started)
        assert context.tokens <= budget
        ranked = [(s.path, s.start_line, s.end_line) for s in sorted(context.snippets, key=lambda s: s.rank)]
        out["ours"].append(score(ranked, case.gold))
        started = time.perf_counter()
        out["base"].append(score(baseline.rank(case, text, offset, budget), case.gold))
        out["base_s"].append(time.perf_counter() - started)
    return out


def cold_and_warm(package: Path, runs: int, serve_model: Path | None) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / package.name
        shutil.copytree(package, repo, ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
        files = subprocess.run(["git", "-C", str(repo), "ls-files"], capture_output=True, text=True).stdout.split()
        cases = cases_of(repo, runs, seed=1)
        if not cases:
            return
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        cold = []
        for case in cases[:runs]:
            text, _offset = case.buffer()
            live = case.file.with_name(case.file.stem + "_edited.py")
            live.write_text(text)
            command = [
                sys.executable,
                "-m",
                "localcoder",
                "context",
                f"{live}:{case.line}",
                "--json",
                "--budget",
                "1024",
            ]
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
        served = served_context_ms(cases, serve_model) if serve_model else []
        print(f"\nrepository: a git copy of {package.name} ({len(files)} files)")
        print(f"  localcoder context, cold:   median {statistics.median(cold):.2f} s over {len(cold)}")
        print(f"  gather() warm, one process: median {statistics.median(warm) * 1000:.1f} ms over {len(warm)}")
        if served:
            print(
                f"  inside serve, warm (POST /infill's timings_ms.context, the model's tokenizer counting):"
                f" median {statistics.median(served):.1f} ms over {len(served)}"
            )


def served_context_ms(cases: list[Case], gguf: Path) -> list[float]:
    """The context stage's time per request inside a running `localcoder serve` (a random-weight model of the
    bench shape; one token generated): each case's buffer POSTed to /infill with its absolute path, once to warm
    up, once measured; the figure is the server's own `timings_ms.context` for the second."""
    from localcoder.server.http import LocalcoderServer, ServeOptions
    from localcoder.server.pool import ModelPool, PoolOptions
    from tests.server_run import Server

    pool = ModelPool(PoolOptions(str(gguf), 2048, keep_alive=-1))
    server = LocalcoderServer(ServeOptions(port=0, pool=pool.options), pool, lambda _line: None)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    client = Server(f"http://127.0.0.1:{server.server_address[1]}", None)  # type: ignore[arg-type]
    pool.preload(None)
    times = []
    try:
        for case in cases:
            text, offset = case.buffer()
            col = offset - text.rfind("\n", 0, offset)
            body = {
                "text": text,
                "path": str(case.file),
                "line": case.line,
                "col": col,
                "max_tokens": 1,
                "temperature": 0,
                "repo_context": 1024,
            }
            for _ in range(2):
                status, answer = client.post("/infill", body)
                assert status == 200, answer
            times.append(answer["timings_ms"]["context"])
    finally:
        server.shutdown()
        server.server_close()
    return times


def other_language(folder: Path, suffix: str, runs: int) -> None:
    """The windows' path (no imports to follow): cold CLI calls on a git copy of `folder`, the first one building
    the on-disk index, the next ones reading it; then warm calls in one process."""
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
    parser.add_argument("--packages", default=PACKAGES)
    parser.add_argument("--big", default="transformers", help="package copied into a git repo for the cold timing")
    parser.add_argument("--runs", type=int, default=7, help="cold CLI runs")
    parser.add_argument("--headers", default="torch/include/torch", help="a C++ tree for the windows' path")
    parser.add_argument("--no-serve", action="store_true", help="skip the timing inside serve (needs no model)")
    parser.add_argument("--dir", type=Path, default=Path("bench-out"), help="where the bench model is kept")
    args = parser.parse_args()
    print(f"{date.today()}  {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"budget {args.budget} tokens; recall = a snippet covers the definition's first line\n")
    header = f"{'package':18} {'cases':>5} {'recall':>7} {'MRR':>6} {'ms':>8}   {'baseline':>8} {'MRR':>6} {'ms':>8}"
    print(header)
    total: dict[str, list[float]] = {"ours": [], "base": [], "ours_s": [], "base_s": []}
    for name in args.packages.split(","):
        package = SITE / name
        if not package.is_dir():
            print(f"{name:18} not installed")
            continue
        got = run_package(package, args.cases, args.budget)
        for key in total:
            total[key] += got[key]
        print(row(name, got))
    print(row("all", total))
    ours, base = recall(total["ours"]), recall(total["base"])
    print(f"\nrecall@{args.budget}: {ours:.0%} vs {base:.0%} for the baseline ({(ours - base) * 100:+.0f} points)")
    if args.big and (SITE / args.big).is_dir():
        cold_and_warm(SITE / args.big, args.runs, None if args.no_serve else serve_model(args.dir))
    if args.headers and (SITE / args.headers).is_dir():
        other_language(SITE / args.headers, ".h", args.runs)


def serve_model(directory: Path) -> Path:
    """The random-weight GGUF of the bench shape that bench-complete and bench-editor use (built once)."""
    from benchmarks.bench_complete import bench_model

    directory.mkdir(parents=True, exist_ok=True)
    return bench_model("bench", "Q4_K_M", directory)


def recall(scores: list[float]) -> float:
    return sum(1 for s in scores if s > 0) / max(len(scores), 1)


def row(name: str, got: dict[str, list[float]]) -> str:
    n = len(got["ours"])
    mrr = lambda key: sum(got[key]) / max(n, 1)  # noqa: E731
    ms = lambda key: statistics.median(got[key]) * 1000 if got[key] else 0.0  # noqa: E731
    return (
        f"{name:18} {n:5} {recall(got['ours']):7.0%} {mrr('ours'):6.2f} {ms('ours_s'):8.1f}"
        f"   {recall(got['base']):8.0%} {mrr('base'):6.2f} {ms('base_s'):8.1f}"
    )


if __name__ == "__main__":
    main()
