"""`vectorforge plan WORKLOAD.yaml` and `vectorforge plan calibrate`: capacity plans, and the
measurements of this machine they are calibrated by (docs/planning.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from vectorforge.cli.common import INTERRUPTED, CliError, console, err

__all__ = ["plan_app"]


class _PlanGroup(TyperGroup):
    """`vectorforge plan FILE` is `vectorforge plan make FILE`: a first word that is no subcommand is
    the workload file."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own click Context
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["make", *args]
        return super().parse_args(ctx, args)


plan_app = typer.Typer(
    cls=_PlanGroup,
    help="Capacity plans from a workload file (`vectorforge plan FILE`), calibrated on this machine.",
    no_args_is_help=True,
)


@plan_app.command("make")
def make(
    workload: Annotated[Path, typer.Argument(help="the workload file (YAML)")],
    format: Annotated[str, typer.Option("--format", "-f", help="md, html or json")] = "md",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write here instead of printing")] = None,
    profile: Annotated[
        Path | None,
        typer.Option(help="a calibration profile (default: the workload's, else the bundled one)"),
    ] = None,
    playbook: Annotated[
        Path | None, typer.Option(help="also write the launch playbook and its alert rules into this folder")
    ] = None,
) -> None:
    """The cheapest plan that meets the workload's SLO, with its what-ifs."""
    from vectorforge.planning import FORMATS, load_catalog, load_profile, load_workload, plan_report

    if format not in FORMATS:
        raise CliError(f"--format {format!r} is unknown", f"one of {', '.join(FORMATS)}")
    w = load_workload(workload)
    catalog = load_catalog(w.catalog, relative_to=workload.parent)
    chosen = profile if profile is not None else (workload.parent / w.profile if w.profile else None)
    chosen_plan, text = plan_report(w, catalog, load_profile(chosen), format)
    if playbook is not None:
        from vectorforge.planning.playbook import alert_rules_yaml, playbook_markdown

        playbook.mkdir(parents=True, exist_ok=True)
        (playbook / "playbook.md").write_text(playbook_markdown(w, chosen_plan))
        (playbook / "vectorforge-alerts.yml").write_text(alert_rules_yaml(w, chosen_plan))
        err.print(f"wrote {playbook}/playbook.md and {playbook}/vectorforge-alerts.yml")
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n")
        console.print(f"wrote {out}")


@plan_app.command("calibrate")
def calibrate_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="where to store the profile")] = Path(
        "vectorforge-profile.json"
    ),
    sizes: Annotated[
        str, typer.Option(help="points per measured collection, comma-separated")
    ] = "20000,100000,250000",
    corpora: Annotated[
        str,
        typer.Option(help="larger corpora to measure one full segment of, comma-separated ('' for none)"),
    ] = "1000000,4000000",
    dims: Annotated[str, typer.Option(help="dimensions, comma-separated")] = "384",
    recall: Annotated[float, typer.Option(help="the recall@10 each setting must reach")] = 0.95,
    name: Annotated[str | None, typer.Option(help="the profile's name (default: this host's)")] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="a .npy of your vectors (a uniform sample of the corpus) to measure dense indexes on"
        ),
    ] = None,
    corpus: Annotated[
        int, typer.Option(help="with --data: the corpus it samples (recall is weighted as its recall@10)")
    ] = 0,
) -> None:
    """Measure this machine with vectorforge itself: QPS per core and p99 at the recall target
    (~40 min on 2 cores with the defaults; fewer --sizes and --corpora '' for a quick look).

    For each index and quantization, at each size and as a segment of each larger corpus; plans
    given `--profile OUT` use these figures.
    """
    from vectorforge.planning.calibrate import calibrate

    try:
        counts = [int(s) for s in sizes.split(",") if s.strip()]
        bigger = [int(c) for c in corpora.split(",") if c.strip()]
        lengths = [int(d) for d in dims.split(",") if d.strip()]
    except ValueError:
        raise CliError(
            f"--sizes {sizes!r}, --corpora {corpora!r} and --dims {dims!r} must be integers, comma-separated"
        ) from None
    if not counts or min(counts) < 1000:  # an index trains on its points
        raise CliError(f"--sizes {sizes!r}: one or more sizes of at least 1,000 points")
    if bigger and min(bigger) <= max(counts):
        raise CliError(
            f"--corpora {corpora!r}: corpora larger than the largest of --sizes {sizes!r} (a segment "
            "of that size is drawn from each)"
        )
    if not lengths or min(lengths) < 1:
        raise CliError(f"--dims {dims!r}: one or more positive dimensions")
    if not 0 < recall <= 1:
        raise CliError(f"--recall {recall:g} must be in (0, 1]")
    if corpus and data is None:
        raise CliError(f"--corpus {corpus} goes with --data (the corpus that sample was drawn from)")
    if corpus < 0:
        raise CliError(f"--corpus {corpus}: the number of points the sample was drawn from (0: unknown)")
    sample = None
    if data is not None:
        import numpy as np

        try:
            sample = np.load(data, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise CliError(f"--data {data}: not a .npy array of vectors ({exc})") from None
    profile = calibrate(
        counts, lengths, bigger, recall_target=recall, name=name, data=sample, data_corpus=corpus
    )
    if not profile.points:
        raise typer.Exit(INTERRUPTED)
    profile.save(out)
    console.print(f"wrote {out}: {len(profile.points)} measurements; plan with --profile {out}")
