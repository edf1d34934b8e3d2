"""The `upt` command line end to end, in a subprocess as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipelines.helpers import guest, lines

UPT = [sys.executable, "-c", "from pipelines.cli import run; run()"]


def upt(
    home: Path, *args: str, ok: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("UPT_")}
    environ.update({"UPT_HOME": str(home), **(env or {})})
    done = subprocess.run([*UPT, *args], capture_output=True, text=True, env=environ, timeout=300)
    if ok:
        assert done.returncode == 0, done.stderr + done.stdout
    return done


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_ingest_stats_errors_and_replay(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "objects.jsonl"
    data.write_bytes(lines(guest("G-1"), guest("G-2", modified_at="never"), b"{oops"))
    report = json.loads(upt(home, "ingest", str(data), "--json").stdout)
    assert (report["inserted"], report["rejected"]) == (1, 2)

    stats = json.loads(upt(home, "stats", "--json").stdout)
    assert {k: stats[k] for k in ("objects", "mentions", "profiles", "rejected")} == {
        "objects": 1,
        "mentions": 1,
        "profiles": 0,
        "rejected": 2,
    }
    assert "objects" in upt(home, "stats").stdout

    errors = json.loads(upt(home, "errors", "list", "--json").stdout)
    by_field = {e["field"]: e for e in errors}
    assert set(by_field) == {"modified_at", "line"}
    assert by_field["line"]["location"] == "line 3"

    rid = str(by_field["modified_at"]["id"])
    assert upt(home, "errors", "show", rid, "--raw").stdout.strip() == json.dumps(
        guest("G-2", modified_at="never")
    )
    assert upt(home, "errors", "replay", rid, ok=False).returncode == 1  # not fixed yet
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(guest("G-2")))
    assert "replayed 1 of 1" in upt(home, "errors", "replay", rid, "--fixed", str(fixed)).stdout
    assert json.loads(upt(home, "stats", "--json").stdout)["objects"] == 2


def test_flat_table_with_map_options_and_mapping_file(home: Path, tmp_path: Path) -> None:
    table = tmp_path / "people.csv"
    table.write_text("rec_id,given_name,surname,dob\nrec-1,ann,lee,19560231\nrec-2,bob,ray,1960-01-02\n")
    upt(
        home,
        "ingest",
        str(table),
        "--source",
        "febrl",
        "--id-column",
        "rec_id",
        "--map",
        "first_name=given_name",
        "--map",
        "last_name=surname",
        "--map",
        "date_of_birth=dob",
    )
    stats = json.loads(upt(home, "stats", "--json").stdout)
    assert stats["mentions"] == 2 and stats["flags_by_field"] == {"date_of_birth": 1}
    mapping = tmp_path / "map.yaml"
    mapping.write_text("id_column: rec_id\nmap:\n  first_name: given_name\n  last_name: surname\n")
    other = upt(
        home,
        "--domain",
        "other",
        "ingest",
        str(table),
        "--source",
        "febrl",
        "--mapping",
        str(mapping),
        "--json",
    )
    assert json.loads(other.stdout)["inserted"] == 2
    assert json.loads(upt(home, "stats", "--json").stdout)["mentions"] == 2


def test_domain_from_the_environment_and_bad_settings(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "objects.jsonl"
    data.write_bytes(lines(guest("G-1")))
    upt(home, "ingest", str(data), env={"UPT_DOMAIN": "brand-b"})
    assert json.loads(upt(home, "stats", "--json", env={"UPT_DOMAIN": "brand-b"}).stdout)["objects"] == 1
    assert json.loads(upt(home, "stats", "--json").stdout)["objects"] == 0
    bad = upt(home, "--domain", "no/slashes", "stats", ok=False)
    assert bad.returncode == 2 and "domain" in bad.stderr


def test_a_mapping_naming_a_missing_column_is_refused(home: Path, tmp_path: Path) -> None:
    table = tmp_path / "people.csv"
    table.write_text("id,name\n1,Ann\n")
    done = upt(
        home,
        "ingest",
        str(table),
        "--source",
        "crm",
        "--id-column",
        "id",
        "--map",
        "last_name=surname",
        ok=False,
    )
    assert done.returncode == 2 and "surname" in done.stderr


def test_generate_is_seeded(tmp_path: Path, home: Path) -> None:
    first = json.loads(
        upt(home, "generate", "--persons", "50", "--out", str(tmp_path / "a"), "--json").stdout
    )
    upt(home, "generate", "--persons", "50", "--out", str(tmp_path / "b"))
    assert (tmp_path / "a" / "objects.jsonl").read_bytes() == (tmp_path / "b" / "objects.jsonl").read_bytes()
    assert first["persons"] >= 45
