"""`upt resolve`, `upt export`, `upt evaluate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.cli.common import JsonFlag, out, print_json, progress_steps, state_of


def resolve(
    ctx: typer.Context,
    full: Annotated[bool, typer.Option("--full", help="Decide every candidate pair again.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Blocking if the stored pairs are stale, then rules, model and imported scores -> decisions ->
    clusters -> profiles (incremental by default)."""
    from pipelines.resolve import run_resolve

    state = state_of(ctx)
    with progress_steps(quiet or as_json) as step:
        report = run_resolve(state.store, state.settings, full=full, step=step)
    if as_json:
        print_json(vars(report))
        return
    out.print(resolve_summary(report))


def resolve_summary(report: Any) -> str:
    merges = ", ".join(f"{n} by {k}" for k, n in sorted(report.merges.items())) or "none"
    rules = ", ".join(f"{k} {n}" for k, n in sorted(report.rule_hits.items())) or "none"
    blocking = report.blocking
    model = (
        f"model version {report.model_version} (merge >= {report.thresholds['merge']:.3f}, "
        f"review >= {report.thresholds['review']:.3f})"
        if report.model_version != "none" or report.pairs_decided
        else "no model (no pair to score)"
    )
    blocked = (
        f"blocked first: {blocking['embedded']} mentions embedded, {blocking['pairs']} candidate pairs\n"
        if blocking.get("ran")
        else ""
    )
    return (
        blocked + f"resolved ({report.mode}: {report.mode_reason}) {report.mentions} mentions, "
        f"{report.dirty_mentions} new or changed; {report.pairs_decided} pairs decided, "
        f"{report.decisions_changed} decisions changed\n"
        f"  profiles {report.profiles}; merges in effect: {merges}; rule hits this run: {rules}\n"
        f"  new review items {report.reviews}; events {report.events or 'none'}; {model}; "
        f"rules {report.rules_version}"
        + (
            f"\n  {report.revisits_done} revisits online arrivals had queued, decided by this run"
            if report.revisits_done
            else ""
        )
    )


def export(
    ctx: typer.Context,
    mentions: Annotated[Path | None, typer.Option(help="Write mention_key,profile_id as CSV.")] = None,
    profiles: Annotated[
        Path | None,
        typer.Option(
            help="Write the profiles (golden records, members, interactions) as JSONL and Parquet into this folder."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Export the mention -> profile assignment (keys verbatim) and/or the profiles."""
    from pipelines.export import export_assignment, export_profiles

    state = state_of(ctx)
    if mentions is None and profiles is None:
        raise typer.BadParameter("name what to export: --mentions FILE.csv and/or --profiles DIR")
    result: dict[str, Any] = {}
    if mentions is not None:
        written = export_assignment(state.store, mentions)
        result["mentions"] = vars(written)
        if not as_json:
            empty = " (no mention is in a profile yet: run `upt resolve`)" if not written.mentions else ""
            out.print(
                f"wrote {written.mentions} mentions in {written.profiles} profiles to {mentions}{empty}"
            )
    if profiles is not None:
        done = export_profiles(state.store, profiles)
        result["profiles"] = vars(done)
        if not as_json:
            out.print(
                f"wrote {done.profiles} profiles ({done.members} mentions, {done.interactions} interactions) "
                f"to {profiles}: {', '.join(done.files)}"
            )
    if as_json:
        print_json(result)


def evaluate(
    ctx: typer.Context,
    truth: Annotated[Path, typer.Option(help="Ground truth CSV: mention_key,person_id.", exists=True)],
    as_json: JsonFlag = False,
) -> None:
    """Pairwise and B-cubed precision, recall and F1 of the current assignment against a truth
    file, with the wrong pairs broken down by kind of error."""
    from labeling.oracle import read_truth
    from pipelines.evaluation import evaluate_store

    state = state_of(ctx)
    result = evaluate_store(state.store, state.settings, read_truth(truth))
    if as_json:
        print_json(result)
        return
    out.print(" ".join(f"{k} {v:.4f}" for k, v in result.items() if isinstance(v, float)))
    for name, part in result["errors"].items():
        out.print(f"{name.replace('_', ' ')}: {part['pairs']} pairs")
        for kind, n in part["kinds"].items():
            out.print(f"  {n:>8}  {kind}")


def report(
    ctx: typer.Context,
    truth: Annotated[
        Path | None, typer.Option(help="Ground truth CSV, for precision/recall/F1.", exists=True)
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Profiles, merges by rule and by model, the review queue, and quality against a truth file."""
    from labeling.oracle import read_truth
    from pipelines.report import resolution_report

    state = state_of(ctx)
    found = resolution_report(state.store, state.settings, read_truth(truth) if truth else None)
    if as_json:
        print_json(found)
        return
    by_source = found["merges_by_source"]
    out.print(f"[bold]UPT report[/bold] for domain {found['domain']}")
    out.print(
        f"  {found['mentions']} mentions in {found['profiles']} profiles (champion model {found['model_version']})"
    )
    out.print(
        f"  merges in effect: {by_source.get('rule', 0)} by rule, {by_source.get('model', 0)} by model, "
        f"{by_source.get('external', 0)} by imported scores, {by_source.get('manual', 0)} by people"
    )
    for rule, n in sorted(found["merges_by_rule"].items()):
        out.print(f"    {n:>7}  {rule}")
    queue = found["review_queue"]
    out.print(
        f"  review queue: {queue['open']} open ({queue['merged']} merged, {queue['rejected']} rejected by people)"
    )
    quality = found.get("quality")
    if found.get("quality_skipped"):
        out.print(f"  quality not measured: {found['quality_skipped']}")
    if quality:
        out.print(
            f"  against the truth file: precision {quality['precision']:.4f} recall {quality['recall']:.4f} "
            f"F1 {quality['f1']:.4f}; B-cubed F1 {quality['b3_f1']:.4f}"
        )
        for name, part in quality["errors"].items():
            top = ", ".join(f"{kind} {n}" for kind, n in list(part["kinds"].items())[:3])
            out.print(f"  {name.replace('_', ' ')}: {part['pairs']} pairs, mostly {top or 'none'}")


def register(app: typer.Typer) -> None:
    app.command("resolve")(resolve)
    app.command("export")(export)
    app.command("evaluate")(evaluate)
    app.command("report")(report)
