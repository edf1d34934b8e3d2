"""`upt report`: the state of a domain's resolution in a few lines: profiles, merges in effect by
rule and by model (and imported scores, people), the review queue, and quality against a truth
file when one is given."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from profiles.errors import NotReady
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.decisions import current_decisions, get_info
from profiles.store.schema import mentions, profiles, review_queue


def resolution_report(store: Store, settings: Settings, truth: pd.DataFrame | None = None) -> dict[str, Any]:
    domain = store.domain
    with store.reading() as conn:
        decisions = current_decisions(conn, domain)
        count_mentions = conn.execute(
            select(func.count())
            .select_from(mentions)
            .where(mentions.c.domain == domain, mentions.c.matchable.is_(True))
        ).scalar_one()
        status: dict[str, int] = dict(
            conn.execute(
                select(profiles.c.status, func.count())
                .where(profiles.c.domain == domain)
                .group_by(profiles.c.status)
            ).all()
        )
        queue: dict[str, int] = dict(
            conn.execute(
                select(review_queue.c.status, func.count())
                .where(review_queue.c.domain == domain)
                .group_by(review_queue.c.status)
            ).all()
        )
        model_version = get_info(conn, f"resolve_model_version:{domain}")
    merges = decisions[decisions["decision"] == "merge"]
    report: dict[str, Any] = {
        "domain": domain,
        "mentions": count_mentions,
        "profiles": status.get("active", 0),
        "retired_profile_ids": status.get("retired", 0),
        "merges_by_source": dict(Counter(merges["source"].fillna("model"))),
        "merges_by_rule": dict(Counter(merges.loc[merges["source"] == "rule", "rule"])),
        "links_for_review_by_rule": dict(
            Counter(
                decisions.loc[(decisions["source"] == "rule") & (decisions["decision"] == "review"), "rule"]
            )
        ),
        "review_queue": {
            "open": queue.get("open", 0),
            "merged": queue.get("merged", 0),
            "rejected": queue.get("rejected", 0),
        },
        "model_version": model_version.split(":")[0] if model_version else None,
    }
    if truth is not None:
        from pipelines.evaluation import evaluate_store

        try:
            report["quality"] = evaluate_store(store, settings, truth)
        except NotReady as exc:
            report["quality_skipped"] = str(exc)
    return report
