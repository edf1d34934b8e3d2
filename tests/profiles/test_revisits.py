"""The revisit queue on SQLite and the real PostgreSQL: oldest first, each mention once; a resolve
again takes off only the rows it saw; a batch run takes off what it read; erasure cascades."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import delete

from pipelines.ingest import ingest_jsonl
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.reads import mention_ids
from profiles.store.revisits import (
    clear_revisits,
    last_queued,
    pending_revisits,
    queue_revisits,
    queued_ids,
    take_off,
)
from profiles.store.schema import mentions


def _three_mentions(store: Store, settings: Settings, tmp_path: Path) -> list[int]:
    lines = [
        json.dumps(
            {
                "object_type": "guest_profile",
                "source": "crm",
                "id": str(i),
                "modified_at": "2026-01-01T00:00:00Z",
                "data": {"traveller": {"first_name": f"Ana{i}", "last_name": "Lee"}},
            }
        )
        for i in range(3)
    ]
    path = tmp_path / "three.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert ingest_jsonl(store, settings, path).inserted == 3
    with store.reading() as conn:
        ids = mention_ids(conn, store.domain, [f"crm/guest_profile/{i}#traveller" for i in range(3)])
    return [ids[f"crm/guest_profile/{i}#traveller"] for i in range(3)]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_revisit_queue(
    backend: str, request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> None:
    store: Store = request.getfixturevalue("store" if backend == "sqlite" else "pg_store")
    a, b, c = _three_mentions(store, settings, tmp_path)
    with store.transaction() as conn:
        assert last_queued(conn, store.domain) == 0
        queue_revisits(conn, store.domain, [b, a, b])  # each once per call
        queue_revisits(conn, store.domain, [c])
        queue_revisits(conn, store.domain, [a])  # a second arrival wants `a` again
    with store.reading() as conn:
        assert pending_revisits(conn, store.domain) == [a, b, c]  # the longest waiting first
        assert pending_revisits(conn, store.domain, limit=1) == [a]
        assert pending_revisits(conn, store.domain + "-other") == []
        seen = queued_ids(conn, store.domain, a)
        up_to = last_queued(conn, store.domain)
    assert len(seen) == 2
    with store.transaction() as conn:
        queue_revisits(conn, store.domain, [a])  # queued after the resolve read: it stays
        take_off(conn, seen)
    with store.reading() as conn:
        assert pending_revisits(conn, store.domain) == [b, c, a]
    with store.transaction() as conn:
        assert clear_revisits(conn, store.domain, up_to) == 2  # b and c; `a` came after
    with store.reading() as conn:
        assert pending_revisits(conn, store.domain) == [a]
    with store.transaction() as conn:
        conn.execute(delete(mentions).where(mentions.c.id == a))  # erased: it leaves the queue
    with store.reading() as conn:
        assert pending_revisits(conn, store.domain) == []
