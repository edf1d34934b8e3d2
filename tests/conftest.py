"""Shared fixtures: isolated settings and stores, and the real PostgreSQL / Redis services.

Service tests skip with a reason when the service is unreachable on a laptop; with
UPT_REQUIRE_SERVICES=1 (set by .ci/run) they fail instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from profiles.settings import Settings
from profiles.store import Store, open_store

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PG_ADMIN_URL = os.environ.get(
    "UPT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("UPT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def services_required() -> bool:
    return os.environ.get("UPT_REQUIRE_SERVICES") == "1"


def unavailable(what: str) -> None:
    """Skip (laptop) or fail (CI) a test whose real service or fixture is missing."""
    if services_required():
        pytest.fail(f"{what} (UPT_REQUIRE_SERVICES=1 turns this skip into a failure)")
    pytest.skip(what)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("UPT_HOME", str(tmp_path / "home"))
    for name in ("UPT_DATABASE_URL", "UPT_DOMAIN", "UPT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return Settings(home=tmp_path / "home", ingest_batch_size=50)


@pytest.fixture
def store(settings: Settings) -> Store:
    return open_store(settings)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local server, dropped afterwards."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        admin.dispose()
        unavailable(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}")
    name = f"upt_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'create database "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


@pytest.fixture
def pg_store(postgres_url: str, settings: Settings) -> Iterator[Store]:
    """A store on real PostgreSQL with a domain of its own per test."""
    pg_settings = settings.model_copy(
        update={"database_url": postgres_url, "domain": f"t{uuid.uuid4().hex[:8]}"}
    )
    store = open_store(pg_settings)
    yield store
    store.engine.dispose()


@pytest.fixture(scope="session")
def examples_path() -> Path:
    path = SHARED / "contract" / "examples.jsonl"
    if not path.exists():
        unavailable(f"the contract fixture {path} is not beside this checkout")
    return path
