"""`upt profiles ...`, `upt review ...`, `upt import-matches`: people acting on profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pipelines.cli.common import JsonFlag, current_user, out, print_json, progress_steps, state_of

profiles_app = typer.Typer(help="Profiles: show, history, merge, unmerge.", no_args_is_help=True)
review_app = typer.Typer(help="The review queue: list items, answer them.", no_args_is_help=True)

Actor = Annotated[str | None, typer.Option("--actor", help="Who does this (default: the login name).")]
Reason = Annotated[str, typer.Option("--reason", help="Why, for the history.")]


@profiles_app.command("show")
def show(ctx: typer.Context, profile_id: str, as_json: JsonFlag = False) -> None:
    """A profile's golden record, members, aliases and events (a retired id shows its successor)."""
    from pipelines.profile_ops import profile_view

    view = profile_view(state_of(ctx).store, profile_id)
    if as_json:
        print_json(view)
        return
    if view["id"] != profile_id:
        out.print(f"{profile_id} was merged into {view['id']}")
    out.print(f"[bold]{view['id']}[/bold] ({view['status']}), {len(view['members'])} mentions")
    for name, entry in view["golden"].items():
        out.print(f"  {name:<14} {entry['value']}  [dim]({entry['rule']}, {entry['support']} mentions)[/dim]")
    out.print(f"  aliases: {', '.join(view['aliases']) or 'none'}")
    for event in view["events"]:
        undone = f", undone by {event['reverted_by']}" if event["reverted_by"] else ""
        out.print(f"  event {event['id']}: {event['kind']} by {event['actor']} ({event['reason']}{undone})")


@profiles_app.command("history")
def history(ctx: typer.Context, profile_id: str, as_json: JsonFlag = False) -> None:
    """Every event and every decision that made the profile what it is."""
    from pipelines.profile_ops import profile_history

    found = profile_history(state_of(ctx).store, profile_id)
    if as_json:
        print_json(found)
        return
    for event in found["events"]:
        out.print(
            f"event {event['id']} {event['at']}: {event['kind']} by {event['actor']}: {event['reason']}"
        )
    for d in found["decisions"]:
        why = d["rule"] or (f"score {d['score']:.3f}" if d["score"] is not None else "")
        out.print(
            f"{d['decided_at']}: {d['mention_a']} ~ {d['mention_b']}: {d['decision']} "
            f"({d['source']}, {d['actor']}{', ' + why if why else ''})"
        )


@profiles_app.command("merge")
def merge(ctx: typer.Context, first: str, second: str, actor: Actor = None, reason: Reason = "") -> None:
    """Merge two profiles by hand; the older id survives, the other stays as its alias."""
    from pipelines.profile_ops import merge_profiles

    state = state_of(ctx)
    done = merge_profiles(state.store, state.settings, first, second, actor or current_user(), reason)
    out.print(
        f"merged {done['retired']} into {done['profile']} ({done['members']} mentions); "
        f"undo with `upt profiles unmerge {done['event']}`"
    )


@profiles_app.command("unmerge")
def unmerge_command(ctx: typer.Context, event_id: int, actor: Actor = None, reason: Reason = "") -> None:
    """Undo a merge event (manual or automatic; see `upt profiles show`): the exact prior profiles
    come back, and stay apart in later resolves."""
    from pipelines.profile_ops import unmerge

    state = state_of(ctx)
    done = unmerge(state.store, state.settings, event_id, actor or current_user(), reason)
    sizes = ", ".join(f"{p} ({n} mentions)" for p, n in done["profiles"].items())
    out.print(f"undid event {done['undoes']} (event {done['event']}): {sizes}")


@review_app.command("list")
def review_list(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="open | merged | rejected")] = "open",
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Review items, highest score first, with both persons."""
    from pipelines.review import list_reviews

    items = list_reviews(state_of(ctx).store, status, limit)
    if as_json:
        print_json(items)
        return
    if not items:
        out.print(f"no {status} review items")
        return
    table = Table("id", "score", "mention a", "mention b")
    for item in items:
        table.add_row(
            str(item["id"]),
            f"{item['score']:.3f}" if item["score"] is not None else "",
            "\n".join(f"{k}: {v}" for k, v in item["person_a"].items()),
            "\n".join(f"{k}: {v}" for k, v in item["person_b"].items()),
        )
    out.print(table)


@review_app.command("decide")
def review_decide(
    ctx: typer.Context,
    item_id: int,
    answer: Annotated[str, typer.Argument(help="match | non_match | unsure")],
    labeller: Annotated[str | None, typer.Option(help="Who answers (default: the login name).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Answer a review item: it becomes a label and a manual decision, and profiles follow."""
    from pipelines.resolve import run_resolve
    from pipelines.review import decide_review

    state = state_of(ctx)
    who = labeller or current_user()
    done = decide_review(state.store, state.settings, item_id, answer, who)
    with progress_steps(quiet or as_json) as step:
        report = run_resolve(state.store, state.settings, step=step, actor=who)
    done["profiles"] = report.profiles
    if as_json:
        print_json(done)
        return
    out.print(f"item {item_id}: {answer} ({done['status']}); {report.profiles} profiles now")


def import_matches(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="CSV: mention_key_a,mention_key_b,score[,scorer]", exists=True)
    ],
    scorer: Annotated[str, typer.Option(help="Scorer name for rows without one.")] = "external",
    resolve: Annotated[bool, typer.Option("--resolve/--no-resolve", help="Resolve right after.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Take pair scores from another system through the same rules, thresholds and clustering."""
    from pipelines.cli.resolution import resolve_summary
    from pipelines.import_matches import import_matches as run_import
    from pipelines.resolve import run_resolve

    state = state_of(ctx)
    who = current_user()
    report = run_import(state.store, state.settings, file, scorer, who)
    result = {"import": vars(report)}
    if resolve and report.imported:
        with progress_steps(quiet or as_json) as step:
            resolved = run_resolve(state.store, state.settings, step=step, actor=who)
        result["resolve"] = vars(resolved)
    if as_json:
        print_json(result)
        return
    out.print(
        f"imported {report.imported} of {report.rows} scores ({report.scorers}); "
        f"{report.rejected} rejected (see `upt errors list`)"
    )
    if "resolve" in result:
        out.print(resolve_summary(resolved))


privacy_app = typer.Typer(
    help="Privacy requests: find a person's data everywhere, erase a person.", no_args_is_help=True
)

Email = Annotated[str | None, typer.Option("--email", help="The person's email address.")]
Phone = Annotated[str | None, typer.Option("--phone", help="The person's phone number (+country code).")]
Name = Annotated[str | None, typer.Option("--name", help="The person's name (first and last).")]


@privacy_app.command("search")
def privacy_search(
    ctx: typer.Context, email: Email = None, phone: Phone = None, name: Name = None, as_json: JsonFlag = False
) -> None:
    """Every place that holds data of the person: profiles, mentions, objects, interactions,
    labels, review items, decisions, imported scores, rejected input."""
    from pipelines.privacy import Query, search

    state = state_of(ctx)
    found = search(state.store, state.settings, Query(email, phone, name))
    if as_json:
        print_json(found)
        return
    if not found["mentions"] and not found["rejected_input"]:
        out.print(f"nothing found for {found['query']}")
        return
    _print_places(found)


def _print_places(found: dict[str, Any]) -> None:
    for place, value in found.items():
        if place == "query":
            continue
        shown = value if isinstance(value, int) else len(value)
        out.print(f"{place:<16} {shown}")
        if isinstance(value, list):
            for item in value[:20]:
                out.print(f"    {item}", markup=False, highlight=False)


@privacy_app.command("erase")
def privacy_erase(
    ctx: typer.Context,
    profile: Annotated[
        list[str] | None, typer.Option("--profile", help="A profile (the person: all its members) to erase.")
    ] = None,
    mention: Annotated[
        list[str] | None, typer.Option("--mention", help="One record (mention key) to erase, alone.")
    ] = None,
    email: Email = None,
    phone: Phone = None,
    name: Name = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do it (without, only show what would go).")] = False,
    actor: Actor = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Erase a person for good (right to erasure): the profiles their email, phone or name
    resolves to, with every member. Without --yes, shows what would go and erases nothing."""
    from pipelines.privacy import ErasureRequest, Query, erase, plan
    from pipelines.resolve import run_resolve
    from profiles.errors import NotReady, Refused

    state = state_of(ctx)
    query = Query(email, phone, name)
    if not yes:
        found = plan(state.store, state.settings, ErasureRequest(profile or [], mention or [], query))
        if as_json:
            print_json({"would_erase": found})
        else:
            out.print("[bold]would erase[/bold] (nothing was erased):")
            _print_places(found)
        raise Refused("erasure cannot be undone: check the list above, then run the same command with --yes")
    who = actor or current_user()
    receipt = erase(state.store, state.settings, who, profile, mention, query)
    result = {"receipt": vars(receipt)}
    if receipt.profiles_reresolved:
        try:
            with progress_steps(quiet or as_json) as step:
                result["resolve"] = vars(run_resolve(state.store, state.settings, step=step, actor=who))
        except NotReady as exc:
            result["resolve"] = {"skipped": str(exc)}
    if as_json:
        print_json(result)
        return
    print_json(result["receipt"])


def register(app: typer.Typer) -> None:
    app.add_typer(profiles_app, name="profiles")
    app.add_typer(review_app, name="review")
    app.command("import-matches")(import_matches)
    app.add_typer(privacy_app, name="privacy")
