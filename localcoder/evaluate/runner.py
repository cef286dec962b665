"""run_eval: tasks -> completions (one model, in order) -> checks (in parallel) -> results file -> pass@k.

Generation runs on the calling thread, since there is one model in-process; through an engine,
`concurrency` completions may be in flight at once (a pool of that many threads, each waiting on one request).
Each completion is handed to a pool of `workers` threads, each of which runs one sandboxed program at a time,
so programs run while the model writes the next completion. Every finished sample is appended to the results
file at once, in the order samples finish.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from localcoder.completion.backends import backend_for
from localcoder.completion.engine import EngineError
from localcoder.completion.generate import Sampling
from localcoder.errors import LocalcoderError
from localcoder.evaluate.datasets import Benchmark, Task, benchmark, load_tasks
from localcoder.evaluate.execution import check
from localcoder.evaluate.generation import check_model, completion_for, sampling_for
from localcoder.evaluate.passk import mean_pass_at_k
from localcoder.evaluate.results import ResultsFile, SampleRecord
from localcoder.runtime import LoadOptions, load_model
from localcoder.sandbox import SandboxFailed
from localcoder.sandbox import require as require_sandbox


@dataclass(frozen=True)
class EvalRequest:
    benchmark: str
    model: Path
    samples: int = 1  # n, per task
    ks: tuple[int, ...] = (1,)
    temperature: float = 0.2
    top_p: float = 0.95
    seed: int = 0
    max_tokens: int | None = None  # None: the benchmark's budget
    limit: int | None = None  # the first N tasks
    workers: int = 1
    out: Path | None = None
    ctx: int | None = None
    threads: int | None = None
    gpu_layers: int | None = None
    unsafe_no_sandbox: bool = False  # run the programs without the OS sandbox (the user said so)
    engine: Any = None  # a localcoder.completion.engine.Engine generates; the GGUF here gives the tokenizer
    concurrency: int = 1  # completions in flight at once; above 1 only with an engine


@dataclass
class EvalSummary:
    benchmark: str
    model: str
    samples_per_task: int
    pass_at_k: dict[str, float]  # "pass@1" -> fraction of tasks
    tasks: int
    samples: int  # scored: tasks x n
    passed: int
    new_samples: int  # generated and run by this call; the rest came from the results file
    seconds: float
    temperature: float
    top_p: float
    seed: int
    out: str | None
    failures: dict[str, int] = field(default_factory=dict)  # the most common reasons, with counts

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "seconds": round(self.seconds, 3)}


class EvalEvents(Protocol):
    def started(self, total: int, already_done: int) -> None: ...
    def sample_finished(self, record: SampleRecord) -> None: ...


class EvalInterrupted(Exception):
    """Ctrl-C: the samples finished so far are in the results file."""


Completer = Callable[[Task, int], str]


def validate(request: EvalRequest) -> Benchmark:
    chosen = benchmark(request.benchmark)
    if request.samples < 1:
        raise LocalcoderError(f"-n must be at least 1, not {request.samples}")
    if not request.ks:
        raise LocalcoderError("-k needs at least one value")
    for k in request.ks:
        if not 1 <= k <= request.samples:
            raise LocalcoderError(f"pass@{k} needs k between 1 and n = {request.samples} samples per task; raise -n")
    if request.concurrency < 1:
        raise LocalcoderError(f"--concurrency must be at least 1, not {request.concurrency}")
    if request.concurrency > 1 and request.engine is None:
        raise LocalcoderError("--concurrency above 1 needs --engine (in-process generation is one at a time)")
    if request.limit is not None and request.limit < 1:
        raise LocalcoderError(f"--limit must be at least 1, not {request.limit}")
    require_sandbox(request.unsafe_no_sandbox)  # before a model is loaded: no sample could be checked
    return chosen


def run_eval(request: EvalRequest, events: EvalEvents | None = None) -> EvalSummary:
    """Evaluate the model on the benchmark; resumes from (and appends to) `request.out`."""
    started = time.monotonic()
    chosen = validate(request)
    tasks = load_tasks(chosen.name, request.limit)
    base = Sampling(temperature=request.temperature, top_p=request.top_p, seed=request.seed)
    with ResultsFile(request.out, _config(request)) as results:
        model = None
        if pending(tasks, request.samples, results):  # a finished run resumes without loading the model
            backend = backend_for(request.engine)
            options = LoadOptions(ctx=request.ctx, threads=request.threads, gpu_layers=request.gpu_layers)
            model = load_model(request.model, options, backend)
            check_model(model, chosen)

        def complete(task: Task, sample: int) -> str:
            sampling = sampling_for(base, chosen, task, sample, request.max_tokens)
            assert model is not None  # pending work means the model was loaded above
            return completion_for(model, chosen, task, sampling)

        unsafe = request.unsafe_no_sandbox
        new = score(
            chosen, tasks, request.samples, complete, results, request.workers, events, unsafe, request.concurrency
        )
        return summarize(chosen, request, tasks, results, new, time.monotonic() - started)


def pending(tasks: list[Task], n: int, results: ResultsFile) -> list[tuple[Task, int]]:
    """The (task, sample) pairs that `results` does not hold yet, in order."""
    return [(task, sample) for task in tasks for sample in range(n) if (task.task_id, sample) not in results.records]


def score(
    chosen: Benchmark,
    tasks: list[Task],
    n: int,
    complete: Completer,
    results: ResultsFile,
    workers: int = 1,
    events: EvalEvents | None = None,
    unsafe_no_sandbox: bool = False,
    concurrency: int = 1,
) -> int:
    """Complete and check every (task, sample) that `results` does not hold yet; return how many were done.

    A completion that crashes or hangs its program is a failed sample; a completion the model could not be
    asked for (its prompt does not fit the window) is one too, with that reason. A program the sandbox could not
    start is no sample at all: the run stops there (SandboxFailed), keeping what was done, and resumes later.
    """
    todo = pending(tasks, n, results)
    if events:
        events.started(len(tasks) * n, len(tasks) * n - len(todo))
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="eval-check")
    errors: list[BaseException] = []  # what went wrong in a worker (writing the results file)

    def keep_error(future: Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            errors.append(future.exception())  # type: ignore[arg-type]

    def submit(*args: Any) -> None:
        pool.submit(_record, results, events, unsafe_no_sandbox, *args).add_done_callback(keep_error)

    def hand_over(task: Task, sample: int, generate: Callable[[], str]) -> None:
        try:
            completion = generate()
        except EngineError as exc:  # not an answer about this sample: stop, keep what is done
            raise _EngineStopped(exc) from None
        except LocalcoderError as exc:  # this task's prompt does not fit the window
            submit(task, sample, "", f"not generated: {exc}", None)
            return
        submit(task, sample, completion, None, chosen.seconds)

    try:
        if concurrency <= 1:
            for task, sample in todo:
                if errors:
                    raise errors[0]
                hand_over(task, sample, partial(complete, task, sample))
        else:
            _in_flight(todo, complete, concurrency, hand_over, errors)
        pool.shutdown(wait=True)
        if errors:
            raise errors[0]
    except (_EngineStopped, SandboxFailed) as stopped:
        pool.shutdown(wait=True)
        kept = f"{len(results.records)} samples are in {results.path}; rerun to resume"
        kept = kept if results.path else "nothing was kept (no --out file)"
        raise LocalcoderError(f"{stopped.args[0]}; {kept}") from None
    except KeyboardInterrupt:
        pool.shutdown(wait=True, cancel_futures=True)  # what is running now finishes (within its time limit)
        kept = f"{len(results.records)} samples are in {results.path}; run the same command again to resume"
        raise EvalInterrupted(f"interrupted; {kept if results.path else 'nothing was kept (no --out file)'}") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return len(todo)


class _EngineStopped(Exception):
    """The engine failed: the run stops once what is in flight is in (args[0]: the EngineError)."""


def _in_flight(
    todo: list[tuple[Task, int]],
    complete: Completer,
    concurrency: int,
    hand_over: Callable[[Task, int, Callable[[], str]], None],
    errors: list[BaseException],
) -> None:
    """Keep `concurrency` completions in flight; each is handed over (to the checks) as it finishes. On an
    error the requests not sent yet are dropped and those in flight finish, so their samples are kept."""
    generators = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="eval-generate")
    futures = {generators.submit(complete, task, sample): (task, sample) for task, sample in todo}
    try:
        waiting = set(futures)
        first_error: BaseException | None = None
        while waiting:
            done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
            for future in done:
                if future.cancelled():
                    continue
                try:
                    hand_over(*futures[future], future.result)
                except Exception as exc:  # re-raised once the requests in flight are in
                    if first_error is None:
                        first_error = exc
                        for rest in waiting:
                            rest.cancel()
            if errors and first_error is None:
                first_error = errors[0]
                for rest in waiting:
                    rest.cancel()
        if first_error is not None:
            raise first_error
    finally:
        generators.shutdown(wait=False, cancel_futures=True)


def _record(
    results: ResultsFile,
    events: EvalEvents | None,
    unsafe_no_sandbox: bool,
    task: Task,
    sample: int,
    completion: str,
    failure: str | None,
    seconds: float | None,
) -> None:
    if failure is not None:
        record = SampleRecord(task.task_id, sample, completion, False, failure, 0.0)
    else:
        try:
            outcome = check(task, completion, seconds, unsafe_no_sandbox=unsafe_no_sandbox)
            record = SampleRecord(task.task_id, sample, completion, outcome.passed, outcome.reason, outcome.seconds)
        except SandboxFailed:  # not this sample's result: the run stops (see score)
            raise
        except Exception as exc:  # the executor itself failed (e.g. no processes left): this sample fails
            record = SampleRecord(task.task_id, sample, completion, False, f"executor error: {exc}", 0.0)
    results.append(record)
    if events:
        events.sample_finished(record)


def summarize(
    chosen: Benchmark,
    request: EvalRequest,
    tasks: list[Task],
    results: ResultsFile,
    new_samples: int,
    seconds: float,
) -> EvalSummary:
    n = request.samples
    records = [results.records[(task.task_id, s)] for task in tasks for s in range(n)]
    counts = [(n, sum(results.records[(task.task_id, s)].passed for s in range(n))) for task in tasks]
    reasons = Counter(_reason_kind(r.reason) for r in records if not r.passed)
    return EvalSummary(
        benchmark=chosen.name,
        model=request.model.name,
        samples_per_task=n,
        pass_at_k={f"pass@{k}": mean_pass_at_k(counts, k) for k in request.ks},
        tasks=len(tasks),
        samples=len(records),
        passed=sum(r.passed for r in records),
        new_samples=new_samples,
        seconds=seconds,
        temperature=request.temperature,
        top_p=request.top_p,
        seed=request.seed,
        out=str(request.out) if request.out else None,
        failures=dict(reasons.most_common(5)),
    )


def _reason_kind(reason: str) -> str:
    """Group reasons: "NameError: name 'x' is not defined" counts as NameError, an MTPB mismatch as wrong output."""
    if reason.startswith("printed "):
        return "wrong output"
    head = reason.split(":", 1)[0]
    return head if len(head) <= 40 else head[:37] + "..."


def _config(request: EvalRequest) -> dict[str, Any]:
    """What makes two runs' samples comparable; n, k, --limit and --workers may change between runs."""
    try:
        size = request.model.stat().st_size
    except OSError as exc:
        raise LocalcoderError(f"cannot read {request.model}: {exc.strerror or exc}") from None
    return {
        "benchmark": request.benchmark,
        "model": request.model.name,
        "model_bytes": size,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "seed": request.seed,
        "max_tokens": request.max_tokens,
        "ctx": request.ctx,
        # In-process and engine samples are not mixed silently, even greedy ones (the engine's arithmetic may
        # differ); the engine's served model name counts, its URL does not (a restarted engine keeps its samples).
        "engine": None if request.engine is None else {"model": request.engine.model},
    }
