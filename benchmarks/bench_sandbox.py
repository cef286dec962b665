"""What the OS sandbox costs eval: HumanEval's 164 canonical checks unconfined and inside bwrap, in one run.

    python benchmarks/bench_sandbox.py [--workers 1] [--rounds 1]

Runs each check through localcoder.evaluate.execution.check, exactly as `localcoder eval` does: first with
unsafe_no_sandbox=True (the path before the OS sandbox: a host temp directory, rlimits, a network namespace and
the audit-hook guard), then in the OS sandbox (bwrap on Linux). Rounds alternate the two so that a busy machine
slows both alike. Prints total seconds for each, the per-program overhead in milliseconds and the ratio; every
check must pass in both.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from localcoder import sandbox  # noqa: E402
from localcoder.evaluate.datasets import load_tasks  # noqa: E402
from localcoder.evaluate.execution import check  # noqa: E402


def timed(tasks, unsafe: bool, workers: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(lambda task: check(task, task.canonical_solution, unsafe_no_sandbox=unsafe), tasks))
    seconds = time.perf_counter() - started
    failed = [task.task_id for task, outcome in zip(tasks, outcomes, strict=True) if not outcome.passed]
    if failed:
        raise SystemExit(f"{'unconfined' if unsafe else 'sandboxed'} checks failed: {failed[:5]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1, help="checks in parallel (eval's --workers)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of both; the best of each counts")
    args = parser.parse_args()
    found = sandbox.status()
    if not found.available:
        raise SystemExit(f"no OS sandbox to measure: {found.detail}; {found.hint}")
    tasks = load_tasks("humaneval")
    times: dict[str, list[float]] = {"unconfined": [], "sandboxed": []}
    for _ in range(args.rounds):
        times["unconfined"].append(timed(tasks, True, args.workers))
        times["sandboxed"].append(timed(tasks, False, args.workers))
    before, after = min(times["unconfined"]), min(times["sandboxed"])
    print(f"{date.today()}  {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}")
    print(f"sandbox: {found.kind} ({found.detail}); {len(tasks)} HumanEval canonical checks, {args.workers} worker(s)")
    print(f"{'':<32}{'total s':>10}{'ms / program':>15}")
    print(f"{'unconfined (--unsafe-no-sandbox)':<32}{before:>10.2f}{before / len(tasks) * 1000:>15.1f}")
    print(f"{'in the OS sandbox':<32}{after:>10.2f}{after / len(tasks) * 1000:>15.1f}")
    overhead = (after - before) / len(tasks) * 1000 * args.workers
    print(f"overhead per program: {overhead:+.1f} ms (per worker); ratio sandboxed / unconfined: {after / before:.2f}")


if __name__ == "__main__":
    main()
