"""The `upt` command line. Global options (`--domain`) go before the command:
`upt --domain brand-a ingest FILE`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from pipelines.cli.common import EXIT_CODES, JsonFlag, State, err, out, print_json, progress_bar, state_of
from pipelines.cli.learning import register as register_learning
from pipelines.cli.profiles import register as register_profiles
from pipelines.cli.resolution import register as register_resolution
from pipelines.ingest import ingest_path, is_table, replay_rejection
from profiles.errors import UPTError
from profiles.flat import parse_mapping
from profiles.settings import load_settings
from profiles.store import WriteResult
from profiles.store.reads import get_rejection, list_rejections, store_stats

app = typer.Typer(
    help="UPT: unified profiles for travellers and guests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
errors_app = typer.Typer(help="Rejected input: list, inspect and replay it.", no_args_is_help=True)
app.add_typer(errors_app, name="errors")
register_learning(app)
register_resolution(app)
register_profiles(app)


@app.callback()
def main(
    ctx: typer.Context,
    domain: Annotated[
        str | None, typer.Option(help="Profile domain (tenant); default UPT_DOMAIN or 'default'.")
    ] = None,
) -> None:
    overrides: dict[str, Any] = {"domain": domain} if domain else {}
    ctx.obj = State(load_settings(**overrides))


def _progress(quiet: bool) -> Progress:
    return progress_bar(quiet)


def _advance(bar: Progress, task: Any) -> Callable[[int], None]:
    return lambda n: bar.advance(task, n)


@app.command()
def ingest(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(
            help="JSON Lines files (.jsonl, .jsonl.gz) or CSV/Parquet tables.", exists=True, dir_okay=False
        ),
    ],
    source: Annotated[str | None, typer.Option(help="Source name for a flat table.")] = None,
    id_column: Annotated[str | None, typer.Option(help="Column holding each row's id (flat tables).")] = None,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="TARGET=COLUMN[+COLUMN] for flat tables.")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="YAML file with the same mapping.", exists=True)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Ingest contract objects (JSON Lines) or flat person tables; bad records are kept, with a reason."""
    state = state_of(ctx)
    total = WriteResult()
    per_file = []
    with _progress(quiet or as_json) as bar:
        for path in files:
            column_mapping = None
            if map_ or mapping or id_column or is_table(path):
                column_mapping = parse_mapping(id_column or "", list(map_ or []), mapping)
            size = path.stat().st_size if column_mapping is None else None
            task = bar.add_task(f"ingest {path.name}", total=size)
            result = ingest_path(
                state.store,
                state.settings,
                path,
                source=source,
                mapping=column_mapping,
                progress=_advance(bar, task),
            )
            total.add(result)
            per_file.append({"file": str(path), **vars(result)})
    report = {"domain": state.store.domain, **vars(total), "files": per_file}
    if as_json:
        print_json(report)
        return
    out.print(
        f"ingested into domain [bold]{report['domain']}[/bold]: {total.inserted} new, {total.replaced} replaced, "
        f"{total.unchanged} unchanged, [{'red' if total.rejected else 'green'}]{total.rejected} rejected[/]"
        + (" (see `upt errors list`)" if total.rejected else "")
    )


@app.command()
def stats(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Counts of objects, mentions, profiles and rejected input, per source, type and status."""
    state = state_of(ctx)
    with state.store.reading() as conn:
        result = store_stats(conn, state.store.domain)
    if as_json:
        print_json(result)
        return
    out.print(
        f"domain [bold]{result['domain']}[/bold]: {result['objects']} objects, {result['mentions']} mentions, "
        f"{result['profiles']} profiles, {result['rejected']} open rejections"
        + (
            f", {result['revisits_waiting']} mentions waiting to be resolved again (online arrivals changed "
            "their decisions; the next `upt resolve` decides them)"
            if result["revisits_waiting"]
            else ""
        )
    )
    table = Table("source", "object type", "objects", title="objects")
    for row in result["objects_by_source_and_type"]:
        table.add_row(row["source"], row["object_type"], str(row["count"]))
    out.print(table)
    table = Table("source", "status", "mentions", title="mentions")
    for row in result["mentions_by_source_and_status"]:
        table.add_row(row["source"], row["status"], str(row["count"]))
    out.print(table)
    if result["flags_by_field"]:
        table = Table(
            "field", "mentions flagged", title="values that did not parse (kept raw, treated as missing)"
        )
        for name, count in result["flags_by_field"].items():
            table.add_row(name, str(count))
        out.print(table)


@errors_app.command("list")
def errors_list(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="open, replayed or all.")] = "open",
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Rejected lines and rows with the field and the reason."""
    state = state_of(ctx)
    with state.store.reading() as conn:
        rows = list_rejections(conn, state.store.domain, None if status == "all" else status, limit)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "where", "field", "reason", "status", "seen", title=f"rejected input ({status})")
    for r in rows:
        table.add_row(
            str(r["id"]),
            f"{r['origin']}:{r['location']}",
            r["field"],
            r["reason"],
            r["status"],
            str(r["times_seen"]),
        )
    out.print(table if rows else "no rejected input")


@errors_app.command("show")
def errors_show(
    ctx: typer.Context,
    rejection_id: Annotated[int, typer.Argument(help="Id from `upt errors list`.")],
    raw: Annotated[bool, typer.Option("--raw", help="Write only the input exactly as received.")] = False,
) -> None:
    """One rejected input with its reason; `--raw` writes its bytes unaltered (to fix and replay)."""
    state = state_of(ctx)
    with state.store.reading() as conn:
        item = get_rejection(conn, state.store.domain, rejection_id)
    if raw:
        sys.stdout.buffer.write(bytes(item["raw"]) + b"\n")
        return
    out.print(
        f"[bold]{item['origin']}:{item['location']}[/bold]  {item['field']}: {item['reason']}  ({item['status']})"
    )
    out.print(bytes(item["raw"])[:2000].decode("utf-8", errors="replace"), markup=False, highlight=False)


@errors_app.command("replay")
def errors_replay(
    ctx: typer.Context,
    ids: Annotated[list[int] | None, typer.Argument(help="Ids to replay; none means every open one.")] = None,
    fixed: Annotated[
        Path | None,
        typer.Option("--fixed", exists=True, help="A file holding the corrected line (one id only)."),
    ] = None,
) -> None:
    """Validate rejected input again (after a fix upstream or in `--fixed`) and ingest what passes."""
    state = state_of(ctx)
    if fixed and len(ids or []) != 1:
        raise typer.BadParameter("--fixed needs exactly one id")
    with state.store.reading() as conn:
        todo = ids or [r["id"] for r in list_rejections(conn, state.store.domain, "open", limit=1_000_000)]
    if not todo:
        out.print("nothing to replay: no open rejected input (`upt errors list --status all`)")
        return
    ok = 0
    for rejection_id in todo:
        reason = replay_rejection(
            state.store, state.settings, rejection_id, fixed.read_bytes() if fixed else None
        )
        if reason is None:
            ok += 1
        else:
            out.print(f"{rejection_id}: still rejected: {reason}", markup=False)
    out.print(f"replayed {ok} of {len(todo)}")
    if ok < len(todo):
        raise typer.Exit(1)


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for objects.jsonl and truth.csv.")],
    persons: Annotated[int, typer.Option(help="True persons to simulate (about 4 objects each).")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
    bad_rate: Annotated[float, typer.Option(help="Share of lines deliberately broken.")] = 0.0,
    gzip_: Annotated[bool, typer.Option("--gzip", help="Write objects.jsonl.gz.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Generate seeded synthetic travel data with a ground-truth file (mention_key,person_id)."""
    from pipelines.synthetic import GeneratorConfig, write_dataset

    info = write_dataset(GeneratorConfig(persons=persons, seed=seed, bad_line_rate=bad_rate), out_dir, gzip_)
    if as_json:
        print_json(info)
    else:
        out.print(
            f"wrote {info['lines']} lines about {info['persons']} persons to {info['objects_file']} "
            f"(truth: {info['truth_file']})"
        )


encoders_app = typer.Typer(help="Sentence encoders used for blocking.", no_args_is_help=True)
app.add_typer(encoders_app, name="encoders")


@encoders_app.command("prepare")
def encoders_prepare(
    ctx: typer.Context,
    backend: Annotated[
        list[str] | None, typer.Option(help="Backends to build (default: the configured one).")
    ] = None,
) -> None:
    """Distill or export encoders from the installed MiniLM into the model cache (done once)."""
    from features.embedding.distill import REFERENCE_SHA256, table_sha256
    from features.embedding.encoders import StaticEncoder, load_encoder

    state = state_of(ctx)
    for name in backend or [state.settings.encoder]:
        encoder = load_encoder(name, state.settings.model_cache_dir)
        out.print(f"encoder {name}: ready ({encoder.dim} dimensions) in {state.settings.model_cache_dir}")
        if isinstance(encoder, StaticEncoder):
            digest = table_sha256(encoder.folder)
            if digest == REFERENCE_SHA256:
                out.print(f"  table sha256 {digest[:16]}…: the reference table, as every CPU distils it")
            else:
                err.print(
                    f"  table sha256 {digest[:16]}… is not the reference {REFERENCE_SHA256[:16]}…: "
                    "this machine's candidate pairs may differ in near ties from published figures"
                )


@app.command("block")
def block_command(
    ctx: typer.Context,
    evaluate: Annotated[
        bool, typer.Option("--evaluate", help="Score the candidates against --truth.")
    ] = False,
    truth: Annotated[
        Path | None, typer.Option(help="Ground truth CSV: mention_key,person_id.", exists=True)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Compute or refresh embeddings, the candidate index and the candidate pairs (incremental)."""
    from labeling.oracle import read_truth
    from pipelines.block import evaluate_blocks, run_block

    state = state_of(ctx)
    if evaluate and truth is None:
        raise typer.BadParameter("--evaluate needs --truth FILE")
    with _progress(quiet or as_json) as bar:

        def step(description: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(description, total=total)
            return lambda n: bar.advance(task, n)

        frame, pairs, report = run_block(state.store, state.settings, step)
    result: dict[str, Any] = {"domain": state.store.domain, "encoder": state.settings.encoder, **vars(report)}
    if evaluate and truth is not None:
        result = evaluate_blocks(state.store, frame, pairs, read_truth(truth))
    if as_json:
        print_json(result)
        return
    out.print(
        f"blocked {report.mentions} mentions: {report.embedded} embedded, {report.pairs} candidate pairs "
        f"({report.index_kind} index); seconds {report.seconds}"
    )
    if evaluate:
        out.print(
            f"recall {result['recall']} (transitive {result['transitive_recall']}, over true pairs "
            f"that agree on more than a name {result['recall_beyond_name']}), "
            f"{result['candidates_per_mention']} candidates per mention, "
            f"reduction ratio {result['reduction_ratio']}"
        )
        table = Table("blocker", "pairs", "true pairs found", "recall", "found by it alone")
        for name, row in result["blockers"].items():
            table.add_row(
                name,
                str(row["pairs"]),
                str(row["true_pairs_found"]),
                str(row["recall"]),
                str(row["found_by_it_alone"]),
            )
        out.print(table)


def run() -> None:  # pragma: no cover - console entry with friendly errors
    try:
        app()
    except UPTError as exc:
        err.print(f"[red]error[/red] ({exc.code}): {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_CODES.get(exc.code, 1))


__all__ = ["app", "run"]
