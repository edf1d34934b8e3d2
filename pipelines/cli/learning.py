"""The data scientist's commands: `upt label`, `upt labels ...`, `upt train`, `upt models ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pipelines.cli.common import JsonFlag, current_user, out, print_json, state_of

labels_app = typer.Typer(help="Labels: import, export, conflicts.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry of this store and domain.", no_args_is_help=True)


def label(
    ctx: typer.Context,
    oracle: Annotated[
        Path | None,
        typer.Option(help="Truth CSV (mention_key,person_id): a SIMULATED labeller.", exists=True),
    ] = None,
    budget: Annotated[int, typer.Option(help="How many pairs to ask about.")] = 50,
    strategy: Annotated[
        str, typer.Option(help="uncertainty, committee or dedupe (dedupe's own learner; extra upt[dedupe]).")
    ] = "uncertainty",
    labeller: Annotated[str | None, typer.Option(help="Who answers (default: your login name).")] = None,
    seed: Annotated[
        int, typer.Option(help="Random seed of the question choice: the same seed asks the same pairs.")
    ] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Label candidate pairs chosen by active learning: y (same person), n (not), u (unsure), b (back), q (quit)."""
    from labeling.loop import BACK
    from pipelines.label import label_pairs, side_by_side

    state = state_of(ctx)
    if oracle is not None:
        from labeling.oracle import SimulatedOracle

        sim = SimulatedOracle.from_file(oracle)
        if not as_json:
            out.print(f"[yellow]simulated labeller[/yellow]: answers come from {oracle}, not from a person")

        def ask_oracle(row: int, pairs: Any) -> str:
            ((a, b),) = pairs.keys([row])
            return sim.answer(a, b)

        report = label_pairs(
            state.store,
            ask_oracle,
            sim.labeller,
            sim.origin,
            budget,
            strategy,
            seed=seed,
            settings=state.settings,
        )
    else:
        who = labeller or current_user()
        asked = {"n": 0}

        def ask_person(row: int, pairs: Any) -> str | None:
            table = Table("field", "left", "right", title=f"pair {asked['n'] + 1} of up to {budget}")
            for name, left, right, same in side_by_side(pairs, row):
                style = "green" if same else "red"
                table.add_row(name, f"[{style}]{left}[/]", f"[{style}]{right}[/]")
            out.print(table)
            out.print(
                "same person? [bold]y[/]es / [bold]n[/]o / [bold]u[/]nsure / [bold]b[/]ack / [bold]q[/]uit"
            )
            while True:
                key = typer.getchar().lower()
                if key == "q":
                    return None
                if key == "b":
                    asked["n"] = max(asked["n"] - 1, 0)
                    out.print("[yellow]going back: the previous answer is removed and asked again[/yellow]")
                    return BACK
                answer = {"y": "match", "n": "non_match", "u": "unsure"}.get(key)
                if answer:
                    asked["n"] += 1
                    return answer

        def progress(rep: Any) -> None:
            estimate = rep.estimates[-1] if rep.estimates else {}
            out.print(
                f"{rep.asked} answered ({rep.matches} same, {rep.non_matches} different, {rep.unsure} unsure); "
                f"model estimates precision {estimate.get('estimated_precision', '?')}, "
                f"recall {estimate.get('estimated_recall', '?')}"
            )

        report = label_pairs(
            state.store,
            ask_person,
            who,
            "cli",
            budget,
            strategy,
            progress,
            seed=seed,
            settings=state.settings,
        )
    result = {k: v for k, v in vars(report).items() if k != "estimates"}
    result["estimate"] = report.estimates[-1] if report.estimates else {}
    if as_json:
        print_json(result)
    else:
        out.print(
            f"labelled {report.asked} pairs ({report.matches} matches, {report.non_matches} non-matches, "
            f"{report.unsure} unsure); current estimate {result['estimate']}"
        )


@labels_app.command("export")
def labels_export(
    ctx: typer.Context, path: Annotated[Path, typer.Argument(help="labels.csv or labels.jsonl")]
) -> None:
    """Write every label of the domain as CSV or JSON Lines."""
    from labeling.store import export_labels, load_labels

    state = state_of(ctx)
    with state.store.reading() as conn:
        frame = load_labels(conn, state.store.domain)
    export_labels(frame, path)
    out.print(f"wrote {len(frame)} labels to {path}")


@labels_app.command("import")
def labels_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(exists=True)],
    labeller: Annotated[str | None, typer.Option(help="For rows without a labeller column.")] = None,
) -> None:
    """Read labels (mention_a, mention_b, label[, labeller]) from CSV or JSON Lines."""
    from labeling.store import read_label_file, save_labels

    state = state_of(ctx)
    items = read_label_file(path, labeller or current_user())
    with state.store.transaction() as conn:
        count = save_labels(conn, state.store.domain, items)
    out.print(f"imported {count} labels")


@labels_app.command("conflicts")
def labels_conflicts(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Pairs that labellers answered differently."""
    from labeling.store import conflicts, load_labels

    state = state_of(ctx)
    with state.store.reading() as conn:
        frame = conflicts(load_labels(conn, state.store.domain))
    rows = frame[["mention_a", "mention_b", "label", "labeller"]].to_dict(orient="records")
    if as_json:
        print_json(rows)
    else:
        out.print(frame.to_string(index=False) if len(frame) else "no conflicting labels")


def train(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Option(
            help="auto (logistic below 500 labels of a class, LightGBM from there), lightgbm, logistic, "
            "ensemble (both, averaged) or dedupe (dedupe's classifier; extra upt[dedupe])."
        ),
    ] = "auto",
    target_precision: Annotated[
        float | None,
        typer.Option(
            help="Precision the auto-merge threshold must reach on out-of-fold scores (from 50 labels "
            "of each class); default: the best expected F1 over the candidate pool."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train, evaluate (cross-validated), log to MLflow and register a match model."""
    from training.train import train as run_training

    state = state_of(ctx)
    result = run_training(state.store, state.settings, model, target_precision, actor=current_user())
    if as_json:
        print_json(vars(result))
        return
    m = result.metrics
    out.print(
        f"registered {result.registered_name} version {result.version} ({', '.join(result.aliases)}), "
        f"{result.model}, on "
        f"{result.labels} labels: precision {m['precision']:.4f}, recall {m['recall']:.4f}, F1 {m['f1']:.4f} at "
        f"merge threshold {result.thresholds['merge']:.3f} (review from {result.thresholds['review']:.3f})"
    )
    if result.caution:
        out.print(f"[yellow]caution: {result.caution}[/yellow]")


@models_app.command("list")
def models_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Registered versions with their aliases and evaluation metrics."""
    from training.registry import list_versions

    state = state_of(ctx)
    rows = list_versions(state.store, state.settings)
    if as_json:
        print_json(rows)
        return
    table = Table("version", "aliases", "labels", "precision", "recall", "f1", "merge at")
    for r in rows:
        table.add_row(
            r["version"],
            ", ".join(r["aliases"]),
            _num(r["labels"], 0),
            _num(r["precision"]),
            _num(r["recall"]),
            _num(r["f1"]),
            _num(r["thresholds"]["merge"], 3),
        )
    out.print(table if rows else "no model yet: `upt train`")


def _num(value: Any, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


@models_app.command("show")
def models_show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Version or alias.")] = "champion",
    as_json: JsonFlag = False,
) -> None:
    """One version: aliases, metrics, thresholds, tags."""
    from training.registry import list_versions, resolve_version

    state = state_of(ctx)
    version = resolve_version(state.store, state.settings, ref)
    row = next(r for r in list_versions(state.store, state.settings) if r["version"] == version)
    print_json(row) if as_json else out.print(row)


@models_app.command("promote")
def models_promote(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Version or alias.")] = "challenger",
    force: Annotated[bool, typer.Option(help="Promote even if it scores worse.")] = False,
) -> None:
    """Make a version the champion, if it scores at least as well on the evaluation labels."""
    from training.registry import promote

    state = state_of(ctx)
    result = promote(state.store, state.settings, ref, current_user(), force)
    out.print(f"version {result['version']} is champion (was {result['previous_champion']})")


@models_app.command("rollback")
def models_rollback(ctx: typer.Context) -> None:
    """Give the champion alias back to the previous champion."""
    from training.registry import rollback

    state = state_of(ctx)
    result = rollback(state.store, state.settings, current_user())
    out.print(f"champion is version {result['champion']} again (was {result['was']})")


def register(app: typer.Typer) -> None:
    app.command("label")(label)
    app.command("train")(train)
    app.add_typer(labels_app, name="labels")
    app.add_typer(models_app, name="models")
