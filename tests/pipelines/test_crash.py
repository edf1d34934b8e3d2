"""`upt ingest` killed with SIGKILL at random points, then re-run: every object exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.settings import Settings
from profiles.store import open_store
from profiles.store.schema import identifiers, interactions, mentions, objects, rejected

UPT = [sys.executable, "-c", "from pipelines.cli import run; run()"]


def run_ingest(home: Path, data: Path, kill_after: float | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPT_")}
    env.update({"UPT_HOME": str(home), "UPT_INGEST_BATCH_SIZE": "200"})
    proc = subprocess.Popen(
        [*UPT, "ingest", str(data), "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if kill_after is not None:
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    assert kill_after is not None or proc.returncode == 0, err
    return proc.returncode


def snapshot(home: Path) -> dict[str, list[tuple]]:
    store = open_store(Settings(home=home))
    with store.reading() as conn:
        return {
            "objects": sorted(
                conn.execute(
                    select(
                        objects.c.source, objects.c.object_type, objects.c.object_id, objects.c.content_hash
                    )
                ).all()
            ),
            "mentions": sorted(conn.execute(select(mentions.c.mention_key, mentions.c.content_hash)).all()),
            "identifiers": sorted(
                conn.execute(
                    select(mentions.c.mention_key, identifiers.c.kind, identifiers.c.value).join(
                        mentions, mentions.c.id == identifiers.c.mention_pk
                    )
                ).all()
            ),
            "interactions": sorted(
                conn.execute(
                    select(mentions.c.mention_key, interactions.c.ref).join(
                        mentions, mentions.c.id == interactions.c.mention_pk
                    )
                ).all()
            ),
            "rejected": sorted(conn.execute(select(rejected.c.raw_hash)).all()),
        }


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_stores_every_object_exactly_once(tmp_path: Path) -> None:
    data = Path(
        write_dataset(GeneratorConfig(persons=5000, seed=11, bad_line_rate=0.01), tmp_path / "data")[
            "objects_file"
        ]
    )
    clean_home, crashed_home = tmp_path / "clean", tmp_path / "crashed"
    run_ingest(clean_home, data)

    rnd = random.Random(5)
    kills = 0
    for _ in range(4):
        if run_ingest(crashed_home, data, kill_after=rnd.uniform(1.2, 3.0)) == -signal.SIGKILL:
            kills += 1
    assert kills >= 3, "the ingest finished before it could be killed: use a larger file"
    run_ingest(crashed_home, data)

    expected, got = snapshot(clean_home), snapshot(crashed_home)
    assert len(got["objects"]) == len({row[:3] for row in got["objects"]}) > 5000
    for table in expected:
        assert got[table] == expected[table], table
