"""`upt resolve`, `upt export`, `upt evaluate`."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli_common import JsonFlag, out, print_json, state_of


def resolve(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Score candidate pairs with the champion model, cluster, and write profiles (stable ids)."""
    from pipelines.resolve import run_resolve

    state = state_of(ctx)
    report = run_resolve(state.store, state.settings)
    if as_json:
        print_json(vars(report))
        return
    out.print(
        f"resolved {report.mentions} mentions into {report.profiles} profiles with model version "
        f"{report.model_version}: {report.merges} merges, {report.reviews} new review items; "
        f"clustering {report.clustering}"
    )


def export(
    ctx: typer.Context,
    mentions: Annotated[Path | None, typer.Option(help="Write mention_key,profile_id as CSV.")] = None,
) -> None:
    """Export the mention -> profile assignment (keys verbatim)."""
    from profiles.store.profiles_io import assignment_rows

    state = state_of(ctx)
    if mentions is None:
        raise typer.BadParameter("name what to export: --mentions FILE.csv")
    with state.store.reading() as conn:
        rows = assignment_rows(conn, state.store.domain)
    mentions.parent.mkdir(parents=True, exist_ok=True)
    with mentions.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["mention_key", "profile_id"])
        writer.writerows(rows)
    out.print(f"wrote {len(rows)} mentions in {len({p for _, p in rows})} profiles to {mentions}")


def evaluate(
    ctx: typer.Context,
    truth: Annotated[Path, typer.Option(help="Ground truth CSV: mention_key,person_id.", exists=True)],
    as_json: JsonFlag = False,
) -> None:
    """Pairwise and B-cubed precision, recall and F1 of the current assignment against a truth file."""
    from pipelines.block import read_truth
    from profiles.store.profiles_io import assignment_rows
    from training.metrics import cluster_scores

    state = state_of(ctx)
    frame = read_truth(truth)
    with state.store.reading() as conn:
        assigned = dict(assignment_rows(conn, state.store.domain))
    scores = {
        k: round(v, 5)
        for k, v in cluster_scores(
            dict(zip(frame["mention_key"], frame["person_id"], strict=True)), assigned
        ).items()
    }
    if as_json:
        print_json(scores)
    else:
        out.print(" ".join(f"{k} {v:.4f}" for k, v in scores.items()))


def register(app: typer.Typer) -> None:
    app.command("resolve")(resolve)
    app.command("export")(export)
    app.command("evaluate")(evaluate)
