"""The context stage on hostile or huge repositories: how long one call takes against its deadline.

    python benchmarks/bench_context_hazards.py [--dir DIR] [--before CHECKOUT] [--calls 5]

Builds, once, under DIR (default ~/.cache/localcoder-bench/hazards; about 1 GB of small files): a git work tree
of 200,000 one-line .js files, a project of 50,000 small .js files without git, and a project whose gitdir's
HEAD is a FIFO (git blocks opening it). Each scenario runs in a new process (a cold index under a fresh
LOCALCODER_HOME): `gather()` with the resident deadline (0.3 s, what serve and the language server give a request)
`--calls` times in a row, then the CLI's (3 s). Printed: each call's seconds and its ratio to the deadline, and
whether it found context. With `--before CHECKOUT` (an older checkout of localcoder) the same calls run on that
code too, in the same run, for the ratio between them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
QUERY = "const { key, value } = parseHeader(line.split(':'))"
PY_TEXT = "from util import helper\n\nvalue = helper(1, 2)\n"
SCENARIOS = {  # name: (buffer, text)
    "git tree, 200,000 files": ("tree200k/lib/app.js", QUERY),
    "no git, 50,000 small .js": ("js50k/lib/app.js", QUERY),
    "gitdir HEAD is a FIFO": ("fifo/app.py", PY_TEXT),
}
HEADERS = "function parseHeader(line) {\n  const [key, value] = line.split(':');\n  return { key, value };\n}\n" * 4
CALL = """
import json, sys, time
from pathlib import Path
from localcoder.context import bundled_counter, gather
from localcoder.context.resolver import Deadline
bundled_counter()("warm")
path, text, seconds, calls = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
for _ in range(calls):
    started = time.monotonic()
    context = gather(Path(path), text, len(text), budget=512, deadline=Deadline.after(seconds))
    print(json.dumps({"seconds": time.monotonic() - started, "snippets": len(context.snippets)}), flush=True)
"""


def build(base: Path) -> None:
    def files(root: Path, count: int, body: str) -> None:
        (root / "lib").mkdir(parents=True, exist_ok=True)
        (root / "setup.py").write_text("")
        (root / "lib" / "a_headers.js").write_text(HEADERS)
        for index in range(count):
            folder = root / "lib" / f"d{index // 1000:03}"
            folder.mkdir(exist_ok=True)
            (folder / f"f{index}.js").write_text(body.format(index=index))

    if not (base / "tree200k" / ".git").exists():
        files(base / "tree200k", 200_000, "let v{index} = {index};\n")
        subprocess.run(["git", "init", "-q", str(base / "tree200k")], check=True)
    if not (base / "js50k" / "setup.py").exists():
        files(base / "js50k", 50_000, "function parse{index}(line) {{\n  return line.split(':');\n}}\n")
    fifo = base / "fifo"
    if not (fifo / ".git" / "HEAD").exists():
        (fifo / ".git").mkdir(parents=True)
        (fifo / ".git" / "config").write_text("[core]\n")
        (fifo / "setup.py").write_text("")
        (fifo / "util.py").write_text("def helper(a, b):\n    return a + b\n")
        os.mkfifo(fifo / ".git" / "HEAD")


def run(checkout: Path, path: Path, text: str, seconds: float, calls: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PYTHONPATH": str(checkout), "LOCALCODER_HOME": home}
        command = [sys.executable, "-c", CALL, str(path), text, str(seconds), str(calls)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True, timeout=1200, cwd=home)
    return [json.loads(line) for line in done.stdout.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path.home() / ".cache" / "localcoder-bench" / "hazards")
    parser.add_argument("--before", type=Path, help="an older localcoder checkout to run the same calls on")
    parser.add_argument("--calls", type=int, default=5)
    options = parser.parse_args()
    build(options.dir)
    print(f"{date.today()}  {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    checkouts = [("this checkout", HERE)] + ([("before", options.before)] if options.before else [])
    for name, (buffer, text) in SCENARIOS.items():
        print(f"\n{name}")
        for label, checkout in checkouts:
            for seconds in (0.3, 3.0):
                calls = run(checkout, options.dir / buffer, text, seconds, options.calls if seconds < 1 else 1)
                shown = "  ".join(f"{c['seconds']:.2f} s ({c['seconds'] / seconds:.1f}x)" for c in calls)
                found = "context" if calls[-1]["snippets"] else "no context yet"
                print(f"  {label:14} deadline {seconds:.1f} s: {shown}; last call: {found}")


if __name__ == "__main__":
    main()
