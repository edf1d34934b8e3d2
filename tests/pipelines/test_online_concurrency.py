"""Online resolves running side by side, and beside a batch run, lose nothing: on SQLite by its
single writer (each resolve waits for the write lock), on PostgreSQL by the domain lock, profile
row locks and change-sequence checks, with real concurrent writers."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pipelines.block import run_block
from pipelines.ingest import ingest_path
from pipelines.online import OnlineResolver
from pipelines.resolve import run_resolve
from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.contract import parse_line
from profiles.settings import Settings
from profiles.store import Store, open_store
from profiles.store.schema import mentions, profile_members, profiles
from tests.pipelines.helpers import label_with_oracle
from training.train import train


def _split(info: dict[str, Any], tmp_path: Path) -> tuple[Path, list[Any]]:
    """The generated objects: the first two thirds as a file, the rest as parsed objects."""
    lines = [x for x in Path(info["objects_file"]).read_bytes().splitlines() if x.strip()]
    cut = len(lines) * 2 // 3
    first = tmp_path / "first.jsonl"
    first.write_bytes(b"\n".join(lines[:cut]) + b"\n")
    rest = []
    for raw in lines[cut:]:
        try:
            rest.append(parse_line(raw, 2_000_000))
        except Exception:  # the set's deliberately broken lines
            continue
    return first, rest


def _prepare(store: Store, settings: Settings, tmp_path: Path, persons: int = 120) -> list[Any]:
    """A store holding two thirds of a generated set, blocked, labelled, trained and resolved;
    returns the remaining objects, many of them about people already stored."""
    info = write_dataset(GeneratorConfig(persons=persons, seed=8), tmp_path / "data")
    first, rest = _split(info, tmp_path)
    ingest_path(store, settings, first)
    run_block(store, settings)
    label_with_oracle(store, info["truth_file"], 30)
    train(store, settings, "auto")
    run_resolve(store, settings)
    return rest


def _check_consistent(store: Store) -> dict[str, int]:
    """Every matchable mention in exactly one active profile, no active profile empty, every
    retired profile pointing to one that exists."""
    with store.reading() as conn:
        matchable = set(
            conn.execute(
                select(mentions.c.id).where(mentions.c.domain == store.domain, mentions.c.matchable.is_(True))
            ).scalars()
        )
        members = dict(
            conn.execute(
                select(profile_members.c.mention_pk, profile_members.c.profile_id).where(
                    profile_members.c.domain == store.domain
                )
            ).all()
        )
        status = {
            pid: (s, g)
            for pid, s, g in conn.execute(
                select(profiles.c.id, profiles.c.status, profiles.c.golden).where(
                    profiles.c.domain == store.domain
                )
            )
        }
    assert set(members) == matchable, f"{len(matchable - set(members))} mentions without a profile"
    assert all(status[pid][0] == "active" for pid in members.values()), "a mention in a retired profile"
    active = {pid for pid, (s, _) in status.items() if s == "active"}
    assert active == set(members.values()), "an active profile without members"
    for _, (s, golden) in status.items():
        if s == "retired" and (golden or {}).get("merged_into"):
            assert golden["merged_into"] in status
    return {"mentions": len(members), "profiles": len(active)}


def _resolve_in_threads(
    make_store: Any, settings: Settings, objects: list[Any], threads: int = 2
) -> list[BaseException]:
    """Each thread its own store handle and resolver, objects dealt out in turn."""
    errors: list[BaseException] = []

    def work(part: list[Any]) -> None:
        store = make_store()
        try:
            resolver = OnlineResolver(store, settings)
            for obj in part:
                resolver.resolve_objects([obj])
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:  # a failed thread's connections must not outlive it into another test
            store.engine.dispose()

    workers = [threading.Thread(target=work, args=(objects[i::threads],)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return errors


@pytest.mark.slow
def test_two_online_writers_on_sqlite_wait_their_turn(tmp_path: Path, settings: Settings) -> None:
    settings = settings.model_copy(
        update={"mlflow_tracking_uri": str(tmp_path / "mlruns"), "ingest_batch_size": 500}
    )
    store = open_store(settings)
    rest = _prepare(store, settings, tmp_path)
    errors = _resolve_in_threads(lambda: open_store(settings), settings, rest)
    assert not errors, errors
    counts = _check_consistent(store)
    assert counts["mentions"] > 0
    # a batch run afterwards finds everything resolved and keeps it consistent
    run_resolve(store, settings)
    _check_consistent(store)


@pytest.mark.slow
@pytest.mark.postgres
def test_online_writers_and_a_batch_run_on_postgres_lose_nothing(
    pg_store: Store, settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={
            "database_url": str(pg_store.engine.url.render_as_string(hide_password=False)),
            "domain": pg_store.domain,
            "mlflow_tracking_uri": str(tmp_path / "mlruns"),
            "ingest_batch_size": 500,
        }
    )
    rest = _prepare(pg_store, settings, tmp_path)
    batch_errors: list[BaseException] = []
    reports: list[Any] = []

    def batch() -> None:
        store = open_store(settings)
        try:
            reports.append(run_resolve(store, settings, full=True))
        except BaseException as exc:
            batch_errors.append(exc)
        finally:
            store.engine.dispose()

    runner = threading.Thread(target=batch)
    runner.start()
    errors = _resolve_in_threads(lambda: open_store(settings), settings, rest, threads=3)
    runner.join()
    assert not errors and not batch_errors, (errors, batch_errors)
    _check_consistent(pg_store)
    # what the batch left alone (if anything) is marked for the next run, which settles it
    run_resolve(pg_store, settings)
    _check_consistent(pg_store)
    assert reports and reports[0].profiles > 0


def test_a_batch_run_leaves_alone_what_an_online_write_changed_meanwhile(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An online resolve that commits while a batch run computes: the batch writes everything
    else, keeps the online write's profiles as they are, and the next run settles them."""
    import pipelines.resolve as batch_module

    settings = settings.model_copy(
        update={"mlflow_tracking_uri": str(tmp_path / "mlruns"), "ingest_batch_size": 500}
    )
    store = open_store(settings)
    rest = _prepare(store, settings, tmp_path, persons=80)
    online = OnlineResolver(open_store(settings), settings)
    assigned_by_batch = batch_module.assign
    done: list[Any] = []

    def assign_then_online_write(*args: Any, **kwargs: Any) -> Any:
        result = assigned_by_batch(*args, **kwargs)
        done.extend(online.resolve_objects(rest[:5]))  # commits while the batch has not written
        return result

    monkeypatch.setattr(batch_module, "assign", assign_then_online_write)
    report = run_resolve(store, settings, full=True)
    monkeypatch.undo()
    assert done and report.conflicted_mentions > 0
    _check_consistent(store)
    with store.reading() as conn:
        kept = dict(conn.execute(select(profile_members.c.mention_pk, profile_members.c.profile_id)).all())
    # each online write's profile, as later writes of the same run left it (a passenger booked
    # from a guest's address joins the guest's profile and retires the one it had)
    final: dict[str, str] = {}
    for outcome in done:
        for mention in outcome.mentions:
            if mention.profile_id:
                retired = set(mention.merged) - {mention.profile_id}
                final = {k: mention.profile_id if p in retired else p for k, p in final.items()}
                final[mention.mention_key] = mention.profile_id
    assert final
    for key, profile_id in final.items():
        with store.reading() as conn:
            pk = conn.execute(select(mentions.c.id).where(mentions.c.mention_key == key)).scalar()
        assert kept[pk] == profile_id  # the online writes stand
    run_resolve(store, settings)
    _check_consistent(store)
