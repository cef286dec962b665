"""Rendering of result objects, in one place: Rich tables for people (each `render_*` takes the console to
write on), JSON for editors and scripts (`print_json`, with the document's schema version). Text that came from a
user (paths, model names, file contents, program output) is always rendered as plain text, never as markup."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from localcoder import schemas
from localcoder.gguf_info import GGUFSummary
from localcoder.names import BIDI_AND_SEPARATORS, shown_name
from localcoder.terminal import escape_controls, human_bytes, human_count, plain, print_untrusted

if TYPE_CHECKING:  # rendering a result needs no converter, model or benchmark loaded
    from convert.pipeline import ConvertResult
    from convert.verify import VerifyReport
    from localcoder.bench import BenchReport
    from localcoder.context import RepoContext
    from localcoder.doctor import DoctorReport
    from localcoder.evaluate.kld import KldReport
    from localcoder.evaluate.runner import EvalSummary


# What JSON output writes as \u escapes although ensure_ascii is off: the value read back is the same.
_JSON_ESCAPED = re.compile(f"[\x7f-\x9f{BIDI_AND_SEPARATORS}]")


def print_json(name: str, value: Any, out: TextIO | None = None) -> None:
    """Write one `--json` document: `schema_version` first, then the value's fields (a dict, or an object with
    to_dict). Its schema is localcoder/schemas/NAME.json; `name` must be one of schemas.NAMES."""
    if name not in schemas.NAMES:
        raise ValueError(f"no shipped schema named {name!r}")
    data = value.to_dict() if hasattr(value, "to_dict") else asdict(value) if is_dataclass(value) else value
    document = {"schema_version": schemas.SCHEMA_VERSION, **data}
    target = out or sys.stdout
    target.write(to_json(document) + "\n")
    target.flush()


def to_json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if is_dataclass(obj):
            return asdict(obj)  # type: ignore[arg-type]
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(type(obj).__name__)

    if hasattr(value, "to_dict"):
        value = value.to_dict()
    text = json.dumps(value, default=default, indent=2, ensure_ascii=False)
    return _JSON_ESCAPED.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _pairs_table(title: str | Text, rows: list[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left", box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, plain("-" if value is None else value))
    return table


def render_summary(console: Console, summary: GGUFSummary, all_tensors: bool = False) -> None:
    console.print(
        _pairs_table(
            plain(summary.path, "bold"),
            [
                ("name", summary.name),
                ("architecture", summary.architecture),
                ("family", summary.family),
                ("prompt format", summary.prompt_format),
                ("file type", summary.file_type),
                ("context length", summary.context_length),
                ("parameters", human_count(summary.parameters)),
                ("tensors", f"{summary.tensor_count} ({_type_counts(summary)})"),
                ("size", human_bytes(summary.file_bytes)),
            ],
        )
    )
    meta = Table(title="metadata", title_justify="left", show_header=False, box=None)
    meta.add_column(style="cyan")
    meta.add_column(overflow="fold")
    for key, value in summary.metadata.items():
        meta.add_row(plain(key), plain(_short(value)))
    console.print(meta)
    tensors = Table(title="tensors", title_justify="left")
    for column in ("name", "type", "shape", "size"):
        tensors.add_column(column, justify="right" if column == "size" else "left")
    shown = summary.tensors if all_tensors else _abridged(summary)
    for t in shown:
        tensors.add_row(plain(t.name), t.type, " x ".join(map(str, t.shape)), human_bytes(t.nbytes))
    console.print(tensors)
    if len(shown) < summary.tensor_count:
        console.print(f"[dim]{summary.tensor_count - len(shown)} more tensors of repeated blocks; --all lists them[/]")


def _type_counts(summary: GGUFSummary) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in sorted(summary.tensor_types.items()))


def _abridged(summary: GGUFSummary) -> list:
    """Non-block tensors and the first block: the rest repeats it."""
    return [t for t in summary.tensors if not t.name.startswith("blk.") or t.name.startswith("blk.0.")]


def _short(value: Any) -> str:
    if isinstance(value, dict) and "length" in value:
        preview = ", ".join(map(repr, value["first"][:4]))
        return f"[{value['length']} items: {preview}, ...]"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 120 else text[:117] + "..."


def render_convert(console: Console, result: ConvertResult) -> None:
    rows = [
        ("wrote", result.output),
        ("architecture", f"{result.architecture} -> {result.family}"),
        ("type", result.file_type),
        ("tensors", result.tensors),
        ("size", f"{human_bytes(result.output_bytes)} (from {human_bytes(result.source_bytes)} of source tensors)"),
        ("time", f"{result.seconds:.1f} s"),
    ]
    if result.fallbacks:
        examples = ", ".join(f"{name} ({kind})" for name, kind in list(result.fallbacks.items())[:3])
        rows.append(("fallbacks", f"{len(result.fallbacks)} tensors whose rows don't fill a block: {examples}, ..."))
    console.print(_pairs_table("[bold green]converted[/]", rows))


def render_verify(console: Console, report: VerifyReport) -> None:
    tok = report.tokenizer
    rows: list[tuple[str, Any]] = [
        (
            "tokenizer",
            f"{'PASS' if tok.ok else 'FAIL'}: {tok.equal}/{tok.strings} strings tokenize identically,"
            f" {tok.round_trips}/{tok.strings} round-trip",
        ),
    ]
    if tok.first_mismatch is not None:
        rows.append(("first mismatch", repr(tok.first_mismatch[:80])))
    if report.logits is not None:
        lg = report.logits
        verdict = "PASS" if lg.ok else "FAIL"
        bound = f" (bound {lg.tolerance:g})" if lg.tolerance is not None else " (lossy file type: no bound)"
        rows.append(("logits", f"{verdict}: max |dlogit| {lg.max_abs_diff:.2e}{bound} over {lg.positions} tokens"))
        agreement = f"{lg.argmax_agreement:.1%} of positions"
        if lg.decisive_positions is not None:
            verdict = "equal" if lg.decisive_argmax_equal else "differs"
            agreement += f"; {verdict} at all {lg.decisive_positions} positions the bound decides"
        rows.append(("top-1 agreement", agreement))
    else:
        rows.append(("logits", f"skipped: {report.logits_skipped}"))
    console.print(_pairs_table("[bold]parity report[/]", rows))


def render_bench(console: Console, report: BenchReport, scenarios: tuple[str, ...], cold: bool) -> None:
    """A row per length; a column per scenario: latency in ms and (in brackets) the prompt tokens read."""
    table = Table(title=plain(f"{report.model}\n{report.machine}, {report.date}"), title_justify="left")
    table.add_column("new tokens", justify="right")
    shown = [scenario for scenario in scenarios if cold or scenario != "cold"]
    for scenario in shown:
        table.add_column(f"{scenario} ms (read)", justify="right")
    if cold:
        table.add_column("cold / hot-type", justify="right")
    for length in dict.fromkeys(row.new_tokens for row in report.rows):  # in the order asked
        rows = {r.scenario: r for r in report.rows if r.new_tokens == length}
        cells = [f"{rows[s].latency_ms:,.0f} ({rows[s].evaluated_tokens})" for s in shown if s in rows]
        if cold:
            cells.append(f"{rows['cold'].latency_ms / rows['hot-type'].latency_ms:.1f}x")
        table.add_row(str(length), *cells)
    console.print(table)
    footer = "; the cold figures include it and the process start-up" if cold else ""
    console.print(f"model load {report.load_ms:,.0f} ms{footer}")


def render_doctor(console: Console, report: DoctorReport) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for check in report.checks:
        value = Text.assemble(("✗ ", "red") if not check.ok else "", escape_controls(check.value))
        if check.hint:
            value.append("\n" + escape_controls(check.hint), "dim")
        table.add_row(plain(check.name), value)
    console.print(table)


def render_eval(console: Console, summary: EvalSummary) -> None:
    """A row per model, a column per pass@k, as the papers' tables are laid out."""
    table = Table(
        title=plain(
            f"{summary.benchmark}: {summary.tasks} tasks, n = {summary.samples_per_task},"
            f" T = {summary.temperature:g}, top-p = {summary.top_p:g}"
        ),
        title_justify="left",
    )
    table.add_column("model")
    for name in summary.pass_at_k:
        table.add_column(name, justify="right")
    for column in ("tasks", "samples", "new", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(
        plain(summary.model),
        *(f"{100 * value:.2f}" for value in summary.pass_at_k.values()),
        str(summary.tasks),
        str(summary.samples),
        str(summary.new_samples),
        f"{summary.seconds:,.1f}",
    )
    console.print(table)
    if summary.failures:
        reasons = ", ".join(f"{reason} ({count})" for reason, count in summary.failures.items())
        console.print(plain(f"pass@k in percent. Most common failures: {reasons}", "dim"))
    if summary.out:
        console.print(plain(f"per-sample results: {summary.out}", "dim"))


def render_kld(console: Console, report: KldReport) -> None:
    table = Table(
        title=plain(f"KL divergence from {Path(report.base).name}: {report.corpus} corpus, top-{report.top_k}"),
        title_justify="left",
    )
    # On a narrow terminal a cell folds onto more lines rather than being cut to "codegen…": model names differ
    # only at their ends.
    for column in ("model", "mode", "mean KLD", "p99 KLD", "top-1", "PPL ratio", "tokens", "seconds"):
        table.add_column(column, justify="left" if column in ("model", "mode") else "right", overflow="fold")
    for model in report.models:
        for score in model.modes:
            table.add_row(
                plain(model.model), score.mode, significant(score.mean_kld), significant(score.p99_kld),
                f"{score.top1_agreement:.3f}", f"{score.ppl_ratio:.4f}", str(score.tokens), f"{model.seconds:.1f}",
            )  # fmt: skip
    console.print(table)
    console.print(
        plain(
            f"base: {report.tokens} tokens in {report.base_seconds:.1f} s, {human_bytes(report.base_stored_bytes)}"
            f" kept; peak memory {human_bytes(max((m.peak_rss_bytes for m in report.models), default=0))}",
            "dim",
        )
    )


def significant(value: float) -> str:
    """Three significant digits: a near-lossless quant's 2.4e-06 must not print as 0.00000."""
    return f"{value:.3g}"


def render_models(console: Console, document: dict[str, Any]) -> None:
    """`models`' document (what --json prints): a row per GGUF, the default starred, broken files marked."""
    if document["default_missing"]:
        setting = "LOCALCODER_MODEL" if document["default_source"] == "env" else "config.toml"
        console.print(plain(f"default model {document['default']} (from {setting}) is missing", "red"))
    if not document["models"]:
        hint = "download one with `localcoder pull`, convert one with `localcoder convert`, or run `localcoder demo`"
        console.print(plain(f"no models in {document['directory']}; {hint}"))
        return
    caption = "* default" if document["default"] else None
    table = Table(title=plain(document["directory"]), title_justify="left", caption=caption)
    for column in ("", "name", "family", "parameters", "type", "size"):
        table.add_column(column, justify="right" if column in ("parameters", "size") else "left")
    for row in document["models"]:
        mark = "*" if row["default"] else ""
        if row["error"]:
            table.add_row(mark, plain(row["name"]), plain(f"broken: {row['error']}", "red"), "-", "-", "-")
            continue
        table.add_row(
            mark,
            plain(row["name"]),
            plain(row["family"] or "-"),
            human_count(row["parameters"]),
            plain(row["type"] or "-"),
            human_bytes(row["bytes"]),
        )
    console.print(table)


def render_context(console: Console, context: RepoContext) -> None:
    """`context`'s result: each snippet as the prompt shows it, under a line saying where it is from and why."""
    for snippet in context.snippets:
        lines = f"{shown_name(snippet.path)}:{snippet.start_line}-{snippet.end_line}"
        where = f"{lines}  #{snippet.rank}  {snippet.tokens} tokens  {shown_name(snippet.why)}"
        console.print(plain(where, "bold"), soft_wrap=True)
        print_untrusted(console, snippet.text)
        console.print()
    root = shown_name(context.root)
    summary = f"{len(context.snippets)} snippet(s), {context.tokens} of {context.budget} tokens, root {root}"
    console.print(plain(summary, "dim"), soft_wrap=True)
