"""`upt import-matches FILE.csv`: pair scores from another system (a cloud identity-resolution
service, a third-party matcher) go through the same rules, thresholds, clustering and audit as
the model's own, recorded under the scorer's name.

File: `mention_key_a,mention_key_b,score[,scorer]`, score in [0, 1]. Rows that cannot be used
(unknown key, a score that is no probability, a pair of one mention) are kept as rejected input
with the row and the reason, like any other bad input.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from profiles.errors import ValidationFailed
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.decisions import save_external_scores
from profiles.store.records import Rejection
from profiles.store.schema import mentions, profile_members
from profiles.store.writes import write_audit, write_rejections

COLUMNS = ("mention_key_a", "mention_key_b", "score")


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    rejected: int = 0
    scorers: dict[str, int] = field(default_factory=dict)
    reasons: list[dict[str, Any]] = field(default_factory=list)


def read_scores(path: Path, default_scorer: str) -> tuple[list[dict[str, Any]], list[Rejection]]:
    """Rows as (mention_a, mention_b, score, scorer), and rejections naming the field and why."""
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    missing = set(COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise ValidationFailed(
            "header", f"{path} lacks columns {sorted(missing)}; it needs {','.join(COLUMNS)}[,scorer]"
        )
    good, bad = [], []
    lines = text.splitlines()
    for number, row in enumerate(reader, start=2):
        raw = (lines[number - 1] if number - 1 < len(lines) else "").encode()

        def reject(name: str, reason: str, raw: bytes = raw, number: int = number) -> None:
            bad.append(Rejection(raw, f"import-matches:{path}", f"row {number}", name, reason))

        a, b = (row.get("mention_key_a") or "").strip(), (row.get("mention_key_b") or "").strip()
        if not a or not b:
            reject("mention_key_a" if not a else "mention_key_b", "missing")
            continue
        if a == b:
            reject("mention_key_b", "the same mention as mention_key_a")
            continue
        try:
            score = float(row.get("score") or "")
        except ValueError:
            reject("score", f"not a number: {row.get('score')!r}")
            continue
        if math.isnan(score) or not 0.0 <= score <= 1.0:
            reject("score", f"{score} is not a probability in [0, 1]")
            continue
        scorer = (row.get("scorer") or "").strip() or default_scorer
        good.append(
            {"mention_a": a, "mention_b": b, "score": score, "scorer": scorer[:64], "_raw": raw, "_n": number}
        )
    return good, bad


def import_matches(store: Store, settings: Settings, path: Path, scorer: str, actor: str) -> ImportReport:
    """Store the file's scores and mark their mentions for the next (incremental) resolve."""
    report = ImportReport()
    rows, bad = read_scores(path, scorer)
    report.rows = len(rows) + len(bad)
    with store.transaction() as conn:
        keys = sorted({r["mention_a"] for r in rows} | {r["mention_b"] for r in rows})
        pk: dict[str, int] = {}
        for start in range(0, len(keys), 500):
            pk.update(
                (k, p)
                for p, k in conn.execute(
                    select(mentions.c.id, mentions.c.mention_key).where(
                        mentions.c.domain == store.domain,
                        mentions.c.matchable.is_(True),
                        mentions.c.mention_key.in_(keys[start : start + 500]),
                    )
                )
            )
        known = []
        for r in rows:
            unknown = [side for side in ("mention_a", "mention_b") if r[side] not in pk]
            if unknown:
                name = "mention_key_a" if unknown[0] == "mention_a" else "mention_key_b"
                bad.append(
                    Rejection(
                        r["_raw"],
                        f"import-matches:{path}",
                        f"row {r['_n']}",
                        name,
                        f"no matchable mention {r[unknown[0]]!r} in domain {store.domain!r}",
                    )
                )
                continue
            a, b = sorted((r["mention_a"], r["mention_b"]), key=pk.__getitem__)
            known.append({"mention_a": a, "mention_b": b, "score": r["score"], "scorer": r["scorer"]})
        save_external_scores(conn, store.domain, known)
        touched = sorted({pk[r["mention_a"]] for r in known} | {pk[r["mention_b"]] for r in known})
        for start in range(0, len(touched), 500):
            conn.execute(
                update(profile_members)
                .where(profile_members.c.mention_pk.in_(touched[start : start + 500]))
                .values(resolved_hash=None)
            )
        write_rejections(conn, store.domain, bad)
        for r in known:
            report.scorers[r["scorer"]] = report.scorers.get(r["scorer"], 0) + 1
        write_audit(
            conn,
            store.domain,
            actor,
            "import_matches",
            {"file": str(path), "imported": len(known), "rejected": len(bad), "scorers": report.scorers},
        )
    report.imported, report.rejected = len(known), len(bad)
    report.reasons = [{"location": r.location, "field": r.field, "reason": r.reason} for r in bad[:100]]
    return report
