"""The store on the real local PostgreSQL: migrations, idempotent ingest, domains, flat tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from pipelines.ingest import ingest_jsonl, ingest_path, ingest_table
from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.flat import parse_mapping
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.reads import list_rejections, store_stats
from profiles.store.schema import mentions, metadata

pytestmark = pytest.mark.postgres


def test_migrations_match_the_schema_on_postgres(pg_store: Store) -> None:
    assert pg_store.engine.dialect.name == "postgresql"
    with pg_store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []


def test_generated_data_ingests_idempotently_on_postgres(
    pg_store: Store, settings: Settings, tmp_path: Path
) -> None:
    info = write_dataset(GeneratorConfig(persons=300, seed=3, bad_line_rate=0.02), tmp_path / "d")
    path = Path(info["objects_file"])
    first = ingest_jsonl(pg_store, settings, path)
    assert first.inserted > 1000 and first.rejected > 0
    again = ingest_jsonl(pg_store, settings, path)
    assert (again.inserted, again.replaced) == (0, 0)
    with pg_store.reading() as conn:
        stats = store_stats(conn, pg_store.domain)
        errors = list_rejections(conn, pg_store.domain, limit=1000)
    assert stats["objects"] == first.inserted
    assert stats["mentions"] >= info["mentions_in_truth"]
    assert stats["rejected"] == len(errors) and all(e["times_seen"] == 2 for e in errors)


def test_domains_are_separate_on_postgres(pg_store: Store, settings: Settings, tmp_path: Path) -> None:
    table = tmp_path / "people.csv"
    table.write_text("id,name,dob\n1,Ann Lee,1956-02-31\n2,Bob Ray,\n")
    mapping = parse_mapping("id", ["full_name=name", "date_of_birth=dob"])
    other = pg_store.with_domain(pg_store.domain + "-b")
    assert ingest_table(pg_store, settings, table, "crm", mapping).inserted == 2
    assert ingest_table(other, settings, table, "crm", mapping).inserted == 2
    with pg_store.reading() as conn:
        mine, theirs = store_stats(conn, pg_store.domain), store_stats(conn, other.domain)
    assert mine["mentions"] == theirs["mentions"] == 2
    assert mine["flags_by_field"] == {"date_of_birth": 1}


def test_blocking_writes_embeddings_and_pairs_on_postgres(
    pg_store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.block import run_block
    from profiles.store import db as store_db
    from profiles.store.vectors import load_vectors, stored_pairs
    from tests.pipelines.test_block import HashEncoder, pair_indexes

    monkeypatch.setattr(store_db, "REBUILD_INDEXES_FROM", 1)  # the bulk path, indexes rebuilt

    info = write_dataset(GeneratorConfig(persons=120, seed=8), tmp_path / "d")
    ingest_jsonl(pg_store, settings, Path(info["objects_file"]))
    _, pairs, report = run_block(pg_store, settings, encoder=HashEncoder())
    assert report.written["inserted"] == len(pairs) > 100
    with pg_store.reading() as conn:
        codes, flags = stored_pairs(conn, pg_store.domain)
        pks, vectors = load_vectors(conn, pg_store.domain, "hash")
    assert len(codes) == len(pairs) and (flags > 0).all()
    assert len(pks) == report.mentions and vectors.shape[1] == HashEncoder.dim
    assert pair_indexes(pg_store) == {("domain",), ("mention_b",)}
    _, _, again = run_block(pg_store, settings, encoder=HashEncoder())
    assert again.embedded == 0 and again.written == {"inserted": 0, "updated": 0, "deleted": 0}


def test_resolution_history_and_erasure_on_postgres(
    pg_store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rules-only resolve, a manual merge and its undo, and an erasure, on real PostgreSQL."""
    from pipelines.block import run_block
    from pipelines.privacy import Query, erase, search
    from pipelines.profile_ops import merge_profiles, unmerge
    from pipelines.resolve import run_resolve
    from profiles.store import db as store_db
    from profiles.store.profiles_io import assignment_rows
    from tests.pipelines.test_block import HashEncoder, pair_indexes

    monkeypatch.setattr(store_db, "REBUILD_INDEXES_FROM", 1)  # decisions take the bulk path too

    settings = settings.model_copy(
        update={"merge_threshold": 0.9, "review_threshold": 0.5, "encoder": "hash"}
    )
    info = write_dataset(GeneratorConfig(persons=80, seed=6), tmp_path / "d")
    ingest_jsonl(pg_store, settings, Path(info["objects_file"]))
    run_block(pg_store, settings, encoder=HashEncoder())
    first = run_resolve(pg_store, settings)
    assert first.mode == "full" and first.merges.get("rule", 0) > 0
    assert pair_indexes(pg_store, "match_decisions") == {
        ("domain", "mention_a", "mention_b"),
        ("domain", "mention_b"),
    }
    assert run_resolve(pg_store, settings).decisions_changed == 0

    def assignment() -> dict[str, str]:
        with pg_store.reading() as conn:
            return dict(assignment_rows(conn, pg_store.domain))

    before = assignment()
    a, b = sorted(set(before.values()))[:2]
    done = merge_profiles(pg_store, settings, a, b, "tester", "test")
    unmerge(pg_store, settings, done["event"], "tester", "test")
    assert assignment() == before

    with pg_store.reading() as conn:
        email = (
            conn.execute(
                select(mentions.c.email).where(
                    mentions.c.domain == pg_store.domain, mentions.c.email.is_not(None)
                )
            )
            .scalars()
            .first()
        )
    assert email
    found = search(pg_store, settings, Query(email=email))
    receipt = erase(pg_store, settings, "dpo", profile_ids=found["profiles"])
    assert receipt.removed["mentions"] == len(found["mentions"])
    assert search(pg_store, settings, Query(email=email))["mentions"] == []
    # A resolve after the erasure, with the shipped encoder: the stored pairs are not those of
    # the mentions and settings now, so it blocks first, storing the pairs on its second thread.
    shipped = settings.model_copy(update={"encoder": "static"})
    again = run_resolve(pg_store, shipped)
    assert again.blocking["ran"] is True and again.blocking["pairs"] > 0
    assert again.candidate_pairs == again.blocking["pairs"] == len(pair_rows(pg_store))
    assert run_resolve(pg_store, shipped).blocking["ran"] is False


def pair_rows(store: Store) -> list[tuple[int, int]]:
    from profiles.store.schema import candidate_pairs

    with store.reading() as conn:
        query = select(candidate_pairs.c.mention_a, candidate_pairs.c.mention_b).where(
            candidate_pairs.c.domain == store.domain
        )
        return [tuple(r) for r in conn.execute(query)]


def test_a_long_ingest_keeps_the_planner_statistics_current_on_postgres(
    pg_store: Store, settings: Settings, tmp_path: Path
) -> None:
    """The server here runs with autovacuum off: without UPT's own ANALYZE the planner took the
    growing key table for empty and scanned it whole for every batch (a 1M ingest slowed 50x)."""
    from sqlalchemy import text

    info = write_dataset(GeneratorConfig(persons=300, seed=5), tmp_path / "d")
    ingest_jsonl(pg_store, settings, Path(info["objects_file"]))  # batches of 50 objects
    with pg_store.reading() as conn:
        analysed = conn.execute(
            text(
                "select s.relname, s.last_analyze is not null, c.reltuples from pg_stat_user_tables s "
                "join pg_class c on c.oid = s.relid "
                "where s.relname in ('mentions', 'blocking_keys') and s.schemaname = current_schema()"
            )
        ).all()
    assert {name for name, done, rows in analysed if done and rows > 0} == {"mentions", "blocking_keys"}


def test_a_command_leaves_no_table_behind_on_vacuum_on_postgres(
    pg_store: Store, settings: Settings, tmp_path: Path
) -> None:
    """With autovacuum off (as here), UPT vacuums the tables a command filled: only then are
    their pages marked visible to all, and the online core's index-only scans (the string
    windows over the blocking keys) skip the table (10 ms -> 1.2 ms for 2,000 rows at 1M)."""
    from sqlalchemy import text

    info = write_dataset(GeneratorConfig(persons=300, seed=5), tmp_path / "d")
    ingest_path(pg_store, settings, Path(info["objects_file"]))  # `upt ingest`
    with pg_store.reading() as conn:
        behind = (
            conn.execute(
                text(
                    "select c.relname from pg_stat_user_tables s join pg_class c on c.oid = s.relid "
                    "where s.schemaname = current_schema() and pg_relation_size(c.oid) "
                    "/ current_setting('block_size')::int - c.relallvisible "
                    "> 8 + 0.2 * pg_relation_size(c.oid) / current_setting('block_size')::int"
                )
            )
            .scalars()
            .all()
        )
        vacuumed = conn.execute(
            text(
                "select last_vacuum is not null from pg_stat_user_tables "
                "where relname = 'blocking_keys' and schemaname = current_schema()"
            )
        ).scalar_one()
    assert behind == [] and vacuumed
