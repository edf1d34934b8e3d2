"""Every command in an empty home and in a home with one mention: a clear message and an honest
exit code (`pipelines.cli.common.EXIT_CODES`), never a traceback or a claim that is not true."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.cli import run
from tests.pipelines.helpers import guest, lines

OK, REFUSED, BAD, NOT_FOUND, NOT_READY = 0, 1, 2, 3, 4


def upt(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    """Run `upt ARGS` in this process (as the console entry does) and return (exit code, output)."""
    monkeypatch.setattr("sys.argv", ["upt", *args])
    code = 0
    try:
        run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("UPT_DATABASE_URL", "UPT_DOMAIN", "UPT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UPT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("UPT_MLFLOW_TRACKING_URI", str(tmp_path / "mlruns"))
    truth = tmp_path / "truth.csv"
    truth.write_text("mention_key,person_id\npms/guest_profile/G-1#traveller,p1\n")
    (tmp_path / "scores.csv").write_text("mention_key_a,mention_key_b,score\nnope#a,nope#b,0.9\n")
    return tmp_path


# (arguments, exit code in an empty home, exit code with one mention, text the output must hold)
# in order: the one-mention home resolves before it exports and evaluates, as a user would.
COMMANDS: list[tuple[tuple[str, ...], int, int, str]] = [
    (("stats",), OK, OK, "0 objects|1 objects"),
    (("stats", "--json"), OK, OK, '"mentions"'),
    (("errors", "list"), OK, OK, "no rejected input"),
    (("errors", "show", "1"), NOT_FOUND, NOT_FOUND, "no rejected input with id 1"),
    (("errors", "replay"), OK, OK, "nothing to replay"),
    (("block",), NOT_READY, OK, "ingest|0 candidate pairs"),
    (("block", "--evaluate", "--truth", "{tmp}/truth.csv"), NOT_READY, OK, "ingest|recall"),
    (("label", "--oracle", "{tmp}/truth.csv", "--budget", "5"), NOT_READY, NOT_READY, "candidate pairs"),
    (("labels", "export", "{tmp}/out/new/labels.csv"), OK, OK, "wrote 0 labels"),
    (("labels", "conflicts"), OK, OK, "no conflicting labels"),
    (("train",), NOT_READY, NOT_READY, "upt label"),
    (("models", "list"), OK, OK, "no model yet"),
    (("models", "show"), NOT_FOUND, NOT_FOUND, "upt train"),
    (("models", "promote"), NOT_FOUND, NOT_FOUND, "upt train"),
    (("models", "rollback"), NOT_FOUND, NOT_FOUND, "upt train"),
    (("resolve",), NOT_READY, OK, "ingest|profiles 1;"),
    (("export", "--mentions", "{tmp}/out/a/b.csv"), OK, OK, "wrote 0 mentions|wrote 1 mentions"),
    (("export", "--profiles", "{tmp}/out/profiles"), OK, OK, "wrote 0 profiles|wrote 1 profiles"),
    (("evaluate", "--truth", "{tmp}/truth.csv"), NOT_READY, OK, "upt resolve|b3_f1"),
    (("report",), OK, OK, "mentions in"),
    (("report", "--truth", "{tmp}/truth.csv"), OK, OK, "mentions in"),
    (("profiles", "show", "P-missing"), NOT_FOUND, NOT_FOUND, "no profile"),
    (("profiles", "history", "P-missing"), NOT_FOUND, NOT_FOUND, "no profile"),
    (("profiles", "merge", "P-a", "P-b"), NOT_FOUND, NOT_FOUND, "no profile"),
    (("profiles", "unmerge", "1"), NOT_FOUND, NOT_FOUND, "no profile event 1"),
    (("review", "list"), OK, OK, "no open review items"),
    (("review", "decide", "1", "match"), NOT_FOUND, NOT_FOUND, "no review item 1"),
    (("import-matches", "{tmp}/scores.csv"), OK, OK, "imported 0 of 1"),
    (("privacy", "search", "--email", "nobody@example.com"), OK, OK, "nothing found"),
    (("privacy", "erase", "--email", "nobody@example.com"), NOT_FOUND, NOT_FOUND, "no mention matches"),
    (("privacy", "erase", "--email", "nobody@example.com", "--yes"), NOT_FOUND, NOT_FOUND, "no mention"),
]


@pytest.mark.parametrize("home", ["empty", "one mention"])
def test_every_command_answers_a_first_step_plainly(
    home: str, env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if home == "one mention":
        data = env / "one.jsonl"
        data.write_bytes(lines(guest("G-1", first_name="Ana", last_name="Garcia")))
        assert upt(capsys, monkeypatch, "ingest", str(data))[0] == OK
    for args, empty_code, one_code, expected in COMMANDS:
        argv = [a.replace("{tmp}", str(env)) for a in args]
        code, output = upt(capsys, monkeypatch, *argv)
        shown = f"upt {' '.join(args)} ({home}) -> {code}:\n{output}"
        assert "Traceback" not in output, shown
        assert code == (empty_code if home == "empty" else one_code), shown
        assert any(part in output for part in expected.split("|")), shown
    exported = (env / "out" / "a" / "b.csv").read_text().splitlines()
    assert exported[0] == "mention_key,profile_id"
    assert len(exported) == (1 if home == "empty" else 2)
    assert (env / "out" / "new" / "labels.csv").exists()
    if home == "one mention":
        stats = json.loads(upt(capsys, monkeypatch, "stats", "--json")[1])
        assert stats["profiles"] == 1
