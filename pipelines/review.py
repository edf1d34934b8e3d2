"""The review queue: pairs between the review and merge thresholds (or linked by a rule) wait for
a person. An answer becomes a label (origin `review`, with the pair's features at that moment) and
a manual decision that every later resolve respects; the profiles follow at once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from sqlalchemy import select, update

from features.frame import load_mentions
from features.pairs import features_for_pairs
from labeling.store import Label, save_labels
from profiles.errors import Conflict, NotFound, ValidationFailed
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.decisions import manual_decision, record_decisions
from profiles.store.schema import review_queue
from profiles.store.writes import write_audit

ANSWER_STATUS = {"match": "merged", "non_match": "rejected"}


def list_reviews(store: Store, status: str = "open", limit: int = 50) -> list[dict[str, Any]]:
    """Review items with both mentions' person fields, highest score first."""
    with store.reading() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                select(review_queue)
                .where(review_queue.c.domain == store.domain, review_queue.c.status == status)
                .order_by(review_queue.c.score.desc(), review_queue.c.id)
                .limit(limit)
            )
        ]
        keys = sorted({r["mention_a"] for r in rows} | {r["mention_b"] for r in rows})
        frame = load_mentions(conn, store.domain, keys=keys).set_index("mention_key", drop=False)
    fields = ["name_original", "date_of_birth", "emails", "phones", "city", "country", "loyalty", "documents"]
    for r in rows:
        for side in ("mention_a", "mention_b"):
            key = r[side]
            r[side.replace("mention", "person")] = (
                {f: frame.at[key, f] for f in fields if f in frame and frame.at[key, f] not in ("", ())}
                if key in frame.index
                else {}
            )
    return rows


def decide_review(
    store: Store, settings: Settings, item_id: int, answer: str, labeller: str
) -> dict[str, Any]:
    """Answer a review item: match, non_match or unsure (unsure keeps it open, labelled)."""
    if answer not in ("match", "non_match", "unsure"):
        raise ValidationFailed("answer", f"{answer!r} is not one of match, non_match, unsure")
    now = dt.datetime.now(dt.UTC)
    with store.transaction() as conn:
        item = conn.execute(
            select(review_queue).where(review_queue.c.domain == store.domain, review_queue.c.id == item_id)
        ).first()
        if item is None:
            raise NotFound(f"no review item {item_id} in domain {store.domain!r} (see `upt review list`)")
        if item.status != "open":
            raise Conflict(f"review item {item_id} is already {item.status} (by {item.resolved_by})")
        frame = load_mentions(conn, store.domain, keys=[item.mention_a, item.mention_b])
        pk = dict(zip(frame["mention_key"], frame["mention_pk"], strict=True))
        if len(pk) < 2:
            raise NotFound(f"review item {item_id}: a mention of the pair no longer exists")
        features = features_for_pairs(
            conn,
            store.domain,
            settings.encoder,
            np.array([pk[item.mention_a]]),
            np.array([pk[item.mention_b]]),
        )
        vector = {k: float(v) for k, v in features.drop(columns=["mention_a", "mention_b"]).iloc[0].items()}
        save_labels(
            conn,
            store.domain,
            [Label(item.mention_a, item.mention_b, answer, labeller, "review", vector)],
        )
        if answer in ANSWER_STATUS:
            decision = "merge" if answer == "match" else "no_match"
            record_decisions(
                conn,
                store.domain,
                [
                    manual_decision(
                        item.mention_a, item.mention_b, decision, labeller, item.score, item.model_version
                    )
                ],
            )
            conn.execute(
                update(review_queue)
                .where(review_queue.c.id == item_id)
                .values(status=ANSWER_STATUS[answer], resolved_at=now, resolved_by=labeller)
            )
        write_audit(conn, store.domain, labeller, "review_decision", {"item": item_id, "answer": answer})
    return {"item": item_id, "answer": answer, "status": ANSWER_STATUS.get(answer, "open")}
