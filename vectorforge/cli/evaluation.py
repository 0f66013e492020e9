"""`vectorforge goldset ...` and `vectorforge eval ...`: gold sets and continuous evaluation, kept in
the data folder (`evaluation/`), where the server sees them too."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from vectorforge.cli.common import (
    DEFAULT_DATA,
    FAILURE,
    INTERRUPTED,
    CliError,
    CollectionOpt,
    DataOpt,
    console,
    err,
    open_collection,
)

if TYPE_CHECKING:
    from vectorforge.evaluation.continuous import Outcome, RecordOptions
    from vectorforge.evaluation.history import History
    from vectorforge.evaluation.store import GoldSetStore

__all__ = ["eval_app", "goldset_app"]

goldset_app = typer.Typer(help="Versioned gold sets: queries, judgments, segments.", no_args_is_help=True)
eval_app = typer.Typer(
    help="Evaluate collections on gold sets; history and regressions.", no_args_is_help=True
)

GoldsetOpt = Annotated[str, typer.Option("--goldset", "-g", help="gold set name, or NAME@VERSION")]


def _store(data: Path) -> GoldSetStore:
    from vectorforge.evaluation.workspace import Workspace

    return Workspace(data).goldsets


def _history(data: Path) -> History:
    from vectorforge.evaluation.workspace import Workspace

    return Workspace(data).history


# ------------------------------------------------------------------ goldset


@goldset_app.command("import")
def goldset_import(
    name_arg: Annotated[str | None, typer.Argument(metavar="NAME", help="the gold set's name")] = None,
    name_opt: Annotated[str | None, typer.Option("--name", help="the name, as an option")] = None,
    data: DataOpt = DEFAULT_DATA,
    beir: Annotated[Path | None, typer.Option(help="a BEIR folder (queries.jsonl, qrels/SPLIT.tsv)")] = None,
    split: Annotated[str, typer.Option(help="the BEIR split to import")] = "test",
    jsonl: Annotated[Path | None, typer.Option(help='one query a line: {"id", "text", "qrels"}')] = None,
    tsv: Annotated[Path | None, typer.Option(help="query-id, query, corpus-id, score columns")] = None,
    segment_field: Annotated[
        list[str] | None, typer.Option("--segment-field", help="a JSONL/TSV field that tags segments")
    ] = None,
    segment_prefix: Annotated[
        str | None, typer.Option(help="tag `source` from the query id before this separator, e.g. '-'")
    ] = None,
    segment_file: Annotated[
        list[str] | None,
        typer.Option(help="DIMENSION=PATH: a JSON or TSV mapping of query id -> segment (repeatable)"),
    ] = None,
    length_buckets: Annotated[
        int, typer.Option(help="tag `length` with this many query-length buckets (0: none)")
    ] = 3,
    description: Annotated[str, typer.Option(help="a note kept with the version")] = "",
) -> None:
    """Import a gold set; new content becomes a new version, older versions stay."""
    from vectorforge.evaluation import goldsets as gs

    if (name_arg is None) == (name_opt is None):
        raise CliError("name the gold set once: `goldset import NAME ...` or `--name NAME`")
    name = name_arg or name_opt
    assert name is not None

    sources = [s for s in (beir, jsonl, tsv) if s is not None]
    if len(sources) != 1:
        raise CliError("give exactly one of --beir, --jsonl, --tsv", "e.g. --beir ../shared/data/scifact")
    fields = segment_field or []
    if beir is not None:
        if fields:
            raise CliError("--segment-field applies to --jsonl and --tsv; BEIR queries have no fields")
        gold = gs.from_beir(beir, name=name, split=split, description=description)
    elif jsonl is not None:
        gold = gs.from_jsonl(jsonl, name=name, segment_fields=fields, description=description)
    else:
        assert tsv is not None
        gold = gs.from_tsv(tsv, name=name, segment_fields=fields, description=description)
    if segment_prefix:
        gold = gold.with_segments("source", gs.segments_by_prefix(gold.judged, segment_prefix))
    for spec in segment_file or []:
        dim, sep, path = spec.partition("=")
        if not sep or not dim or not path:
            raise CliError(
                f"--segment-file {spec!r}: use DIMENSION=PATH", "e.g. --segment-file topic=topics.tsv"
            )
        gold = gold.with_segments(dim, gs.segments_from_file(path))
    if length_buckets:
        gold = gold.with_segments("length", gs.segments_by_length(dict(gold.queries), length_buckets))
    version, new = _store(data).save(gold)
    judgments = sum(len(d) for d in gold.qrels.values())
    state = "new version" if new else "unchanged (already a version; now the current one)"
    console.print(f"gold set {name} {version}: {state}; {len(gold.qrels)} queries, {judgments} judgments")
    for seg, qids in gold.segment_queries().items():
        console.print(f"  {seg}: {len(qids)} queries")


@goldset_app.command("list")
def goldset_list(data: DataOpt = DEFAULT_DATA) -> None:
    """The gold sets with their current version."""
    store = _store(data)
    table = Table(title="gold sets")
    for column in ("name", "version", "versions", "queries", "judgments", "saved"):
        table.add_column(column)
    for name in store.names():
        versions = store.versions(name)
        cur = versions[-1]
        table.add_row(
            name,
            cur["version"],
            str(len(versions)),
            str(cur["queries"]),
            str(cur["judgments"]),
            cur["saved_at"],
        )
    console.print(table)


@goldset_app.command("show")
def goldset_show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION")], data: DataOpt = DEFAULT_DATA
) -> None:
    """A version's segments and every version of the gold set."""
    from vectorforge.evaluation.workspace import Workspace

    gold = Workspace(data).goldset(ref)
    console.print(f"gold set {gold.name} version {gold.version}: {gold.description}")
    for seg, qids in gold.segment_queries().items():
        console.print(f"  {seg}: {len(qids)} queries")
    for v in _store(data).versions(gold.name):
        console.print(f"  version {v['version']} saved {v['saved_at']}: {v['queries']} queries")


@goldset_app.command("diff")
def goldset_diff(
    name: Annotated[str, typer.Argument(help="the gold set")],
    old: Annotated[str, typer.Argument(help="the older version")],
    new: Annotated[str | None, typer.Argument(help="the newer version (default: the current one)")] = None,
    data: DataOpt = DEFAULT_DATA,
) -> None:
    """What changed between two versions, as JSON."""
    from vectorforge.evaluation.store import diff

    store = _store(data)
    console.print_json(json.dumps(diff(store.get(name, old), store.get(name, new))))


# ------------------------------------------------------------------ eval


@eval_app.command("run")
def eval_run(
    collection: CollectionOpt,
    goldset: GoldsetOpt,
    data: DataOpt = DEFAULT_DATA,
    server: Annotated[
        str | None,
        typer.Option(help="search this server's collection (http://...); the history stays in --data"),
    ] = None,
    api_key: Annotated[str | None, typer.Option(envvar="VECTORFORGE_API_KEY", help="for --server")] = None,
    config: Annotated[
        Path | None, typer.Option(help="a YAML file of search settings (k, using, mode, params ...)")
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", "-m", help="repeatable; default: six")
    ] = None,
    baseline: Annotated[
        str, typer.Option(help="pinned (else previous), previous, none, or a run id")
    ] = "pinned",
    min_effect: Annotated[float, typer.Option(help="the smallest drop that counts as a regression")] = 0.02,
    alpha: Annotated[float, typer.Option(help="the significance level after Holm's correction")] = 0.05,
    label: Annotated[str, typer.Option(help="a note kept with the run")] = "",
    webhook: Annotated[str | None, typer.Option(help="POST regressions here as JSON")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report as JSON here")] = None,
    markdown: Annotated[Path | None, typer.Option(help="write the report as Markdown here")] = None,
    html: Annotated[Path | None, typer.Option(help="write the report as a self-contained HTML page")] = None,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="report only; keep it out of the history")
    ] = False,
    keep_days: Annotated[
        float | None, typer.Option(help="retention: then delete runs older than this")
    ] = None,
    keep_last: Annotated[int | None, typer.Option(help="retention: keep this many runs per gold set")] = None,
) -> None:
    """Evaluate a collection on a gold set and record the run; exit 1 on a regression."""
    from vectorforge.evaluation.evaluator import DEFAULT_METRICS

    metrics = metric or list(DEFAULT_METRICS)
    options: RecordOptions = {
        "metrics": metrics,
        "baseline": baseline,
        "min_effect": min_effect,
        "alpha": alpha,
        "label": label,
        "webhook": webhook,
        "record": not no_record,
        "keep_days": keep_days,
        "keep_last": keep_last,
    }
    try:
        outcome = _Job(data, collection, goldset, server, api_key, config, options).run()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]: nothing was recorded")
        raise typer.Exit(INTERRUPTED) from None
    _write_reports(outcome, json_out, markdown, html)
    run = outcome.run
    table = Table(title=f"{run.goldset}@{run.goldset_version} on {run.collection}: run {run.run_id}")
    table.add_column("segment")
    table.add_column("n", justify="right")
    for m in metrics:
        table.add_column(m, justify="right")
    for seg, scores in run.segments.items():
        first = next(iter(scores.values()))
        table.add_row(seg, str(first.n), *(f"{scores[m].mean:.4f}" for m in metrics))
    console.print(table)
    if outcome.baseline is None:
        err.print("no baseline yet: this run is the first of its gold set on this collection")
        return
    regressed = [c for c in outcome.changes if c.regression]
    err.print(f"against {outcome.baseline.run_id}: {len(regressed)} regressions")
    for c in regressed:
        err.print(
            f"[red]regression[/red] {c.segment} {c.metric}: {c.baseline:.4f} -> {c.candidate:.4f} "
            f"({c.diff:+.4f}, p={c.p_adjusted:.3g} Holm)"
        )
    if regressed:
        raise typer.Exit(FAILURE)


@dataclass
class _Job:
    """One evaluation as the command line describes it."""

    data: Path
    collection: str
    goldset: str
    server: str | None = None
    api_key: str | None = None
    config: Path | None = None
    options: RecordOptions = field(default_factory=lambda: RecordOptions())

    def run(self) -> Outcome:
        from vectorforge.cli.common import open_db
        from vectorforge.connect import connect
        from vectorforge.evaluation.continuous import evaluate_and_record
        from vectorforge.evaluation.runs import SearchConfig

        self.options.setdefault("progress", True)
        from vectorforge.evaluation.workspace import Workspace

        gold = Workspace(self.data).goldset(self.goldset)
        cfg = SearchConfig.from_file(self.config) if self.config else SearchConfig()
        history = _history(self.data)
        if self.server:
            with connect(self.server, api_key=self.api_key) as db:
                col = db.get_collection(self.collection)
                return evaluate_and_record(col, gold, history, config=cfg, **self.options)
        with open_db(self.data) as db:
            col = open_collection(db, self.collection, self.data)
            return evaluate_and_record(col, gold, history, config=cfg, **self.options)


def _write_reports(outcome: Outcome, json_out: Path | None, markdown: Path | None, html: Path | None) -> None:
    from vectorforge.evaluation.report import report_json, report_markdown

    if json_out:
        json_out.write_text(json.dumps(report_json(outcome.run, outcome.changes, outcome.baseline), indent=1))
    if markdown:
        markdown.write_text(report_markdown(outcome.run, outcome.changes, outcome.baseline))
    if html:
        from vectorforge.evaluation.report_html import report_html

        html.write_text(report_html(outcome.run, outcome.changes, outcome.baseline))


@eval_app.command("history")
def eval_history(
    data: DataOpt = DEFAULT_DATA,
    goldset: Annotated[str | None, typer.Option("--goldset", "-g")] = None,
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    metric: Annotated[str, typer.Option("--metric", "-m")] = "ndcg@10",
    limit: Annotated[int, typer.Option(help="the newest this many")] = 20,
) -> None:
    """Recorded runs, oldest first."""
    table = Table(title="evaluation runs")
    for column in ("run", "time", "gold set", "collection", metric, "regressions", "pinned", "label"):
        table.add_column(column)
    for run in _history(data).runs(goldset, collection, limit=limit):
        value = run.metrics.get(metric)
        table.add_row(
            run.run_id,
            run.created_at[:19],
            f"{run.goldset}@{run.goldset_version}",
            run.collection,
            "-" if value is None else f"{value:.4f}",
            str(len(run.regressions)),
            "yes" if run.pinned else "",
            run.label,
        )
    console.print(table)


@eval_app.command("show")
def eval_show(
    run_id: Annotated[str, typer.Argument(help="a run id (see `eval history`)")],
    data: DataOpt = DEFAULT_DATA,
    format: Annotated[str, typer.Option(help="md, json or html")] = "md",
    baseline: Annotated[str | None, typer.Option(help="compare with this run id")] = None,
) -> None:
    """A recorded run's report (with a comparison against --baseline)."""
    from vectorforge.evaluation.continuous import Outcome
    from vectorforge.evaluation.regression import compare_runs

    history = _history(data)
    run = history.get(run_id)
    base = history.get(baseline) if baseline else None
    changes = compare_runs(base, run, _store(data).get(run.goldset, run.goldset_version)) if base else []
    outcome = Outcome(run, base, changes)
    if format == "md":
        from vectorforge.evaluation.report import report_markdown

        print(report_markdown(run, changes, base), end="")
    elif format == "json":
        from vectorforge.evaluation.report import report_json

        print(json.dumps(report_json(run, changes, base), indent=1))
    elif format == "html":
        from vectorforge.evaluation.report_html import report_html

        print(report_html(outcome.run, outcome.changes, outcome.baseline))
    else:
        raise CliError(f"--format {format!r} is not one of md, json, html")


@eval_app.command("pin")
def eval_pin(
    run_id: Annotated[str, typer.Argument(help="the run to make the baseline")],
    data: DataOpt = DEFAULT_DATA,
    unpin: Annotated[bool, typer.Option("--unpin", help="stop using it as the baseline")] = False,
) -> None:
    """Make a run the baseline that later runs of its gold set and collection are compared with."""
    _history(data).pin(run_id, not unpin)
    console.print(f"{'unpinned' if unpin else 'pinned'} {run_id}")


@eval_app.command("prune")
def eval_prune(
    data: DataOpt = DEFAULT_DATA,
    keep_days: Annotated[float | None, typer.Option(help="delete runs older than this")] = None,
    keep_last: Annotated[int | None, typer.Option(help="keep this many per gold set and collection")] = None,
) -> None:
    """Apply a retention rule to the history (pinned runs stay)."""
    if keep_days is None and keep_last is None:
        raise CliError("give --keep-days, --keep-last or both")
    console.print(f"deleted {_history(data).prune(keep_days=keep_days, keep_last=keep_last)} runs")


@eval_app.command("sql")
def eval_sql(
    query: Annotated[str, typer.Argument(help="a read-only SQL query over runs, metrics, query_scores")],
    data: DataOpt = DEFAULT_DATA,
) -> None:
    """Query the history (tables: runs, metrics, query_scores), as JSON lines."""
    columns, rows = _history(data).sql(query)
    for row in rows:
        print(json.dumps(dict(zip(columns, row, strict=True))))


@eval_app.command("watch")
def eval_watch(
    collection: CollectionOpt,
    goldset: GoldsetOpt,
    every: Annotated[str, typer.Option(help="how often: 30s, 15m, 1h, 1d")] = "1h",
    data: DataOpt = DEFAULT_DATA,
    server: Annotated[str | None, typer.Option(help="search this server's collection")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="VECTORFORGE_API_KEY")] = None,
    config: Annotated[Path | None, typer.Option(help="a YAML file of search settings")] = None,
    baseline: Annotated[str, typer.Option()] = "pinned",
    min_effect: Annotated[float, typer.Option()] = 0.02,
    webhook: Annotated[str | None, typer.Option(help="POST regressions here as JSON")] = None,
    times: Annotated[int, typer.Option(help="stop after this many runs (0: never)")] = 0,
) -> None:
    """Evaluate on a schedule until Ctrl-C (or --times runs); regressions go to the log and --webhook."""
    from vectorforge.evaluation.schedule import parse_interval, run_every

    seconds = parse_interval(every)
    options: RecordOptions = {
        "baseline": baseline,
        "min_effect": min_effect,
        "label": "watch",
        "webhook": webhook,
    }
    job = _Job(data, collection, goldset, server, api_key, config, options)
    done = 0

    def once() -> bool:
        nonlocal done
        outcome = job.run()
        done += 1
        regressed = sum(c.regression for c in outcome.changes)
        ndcg = outcome.run.metrics.get("ndcg@10", float("nan"))
        err.print(f"{outcome.run.run_id}: ndcg@10 {ndcg:.4f}, {regressed} regressions")
        return not times or done < times

    try:
        run_every(once, seconds, f"watch {goldset} on {collection}")
    except KeyboardInterrupt:
        err.print(f"[yellow]stopped[/yellow] after {done} runs")
        raise typer.Exit(INTERRUPTED) from None
