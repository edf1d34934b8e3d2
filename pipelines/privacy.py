"""Privacy requests: find every place that holds a person's data, and erase the person.

`search` answers an access request: profiles, mentions, objects, interactions, labels, review
items, decisions, imported scores and rejected input that name the person. `erase` is the right to
erasure: it removes the person's mentions (and the objects that held no one else; objects shared
with others keep the others and lose the person's part), interactions, identifiers, embeddings,
candidate pairs, index vectors, labels, decisions, review items, imported scores, profile-event
entries and rejected input that carry the person's email or phone; re-resolves what is left of
their profiles; marks registered models trained on their labels; and returns a receipt (counts
per place, time, a hash of the request) that the audit log keeps, without the personal data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, Text, cast, delete, func, or_, select, update

from features.embedding.index import CandidateIndex
from features.frame import load_mentions
from features.normalize.emails import normalize_email
from features.normalize.names import name_parts
from features.normalize.phones import normalize_phone
from features.normalize.text import fold
from pipelines.block import index_config
from pipelines.resolve import survivorship_of
from profiles.errors import NotFound, ValidationFailed
from profiles.resolution.golden import golden_record
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.decisions import rows_touching
from profiles.store.profiles_io import mention_times
from profiles.store.schema import (
    candidate_pairs,
    embeddings,
    external_scores,
    identifiers,
    interactions,
    labels,
    match_decisions,
    mentions,
    objects,
    profile_events,
    profile_members,
    profiles,
    rejected,
    review_queue,
)
from profiles.store.writes import write_audit

ERASED = "[erased]"


@dataclass
class Query:
    email: str | None = None
    phone: str | None = None
    name: str | None = None

    def describe(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


def _by_identifier(conn: Connection, domain: str, kind: str, value: str) -> set[int]:
    return set(
        conn.execute(
            select(identifiers.c.mention_pk).where(
                identifiers.c.domain == domain, identifiers.c.kind == kind, identifiers.c.value == value
            )
        ).scalars()
    )


def _mention_pks(conn: Connection, domain: str, query: Query, settings: Settings) -> set[int]:
    found: set[int] = set()
    if query.email:
        email = normalize_email(query.email).value
        if not email:
            raise ValidationFailed("email", f"{query.email!r} is not an email address")
        found |= _by_identifier(conn, domain, "email", email)
    if query.phone:
        phone = normalize_phone(query.phone, settings.default_region).e164
        if not phone:
            raise ValidationFailed(
                "phone", f"{query.phone!r} is not a phone number (give it with +country code)"
            )
        found |= _by_identifier(conn, domain, "phone", phone)
    if query.name:
        parts = name_parts(full_name=query.name)
        first, last = fold(parts.first or ""), fold(parts.last or "")
        if not last:
            raise ValidationFailed("name", f"{query.name!r}: give at least a last name")
        cond = mentions.c.last_name == last
        if first:
            straight = (mentions.c.first_name == first) & (mentions.c.last_name == last)
            swapped = (mentions.c.first_name == last) & (mentions.c.last_name == first)
            cond = or_(straight, swapped)
        found |= set(conn.execute(select(mentions.c.id).where(mentions.c.domain == domain, cond)).scalars())
    return found


def _profile_mates(conn: Connection, pks: set[int]) -> set[int]:
    """The other members of the profiles these mentions are in: the rest of the person."""
    pids: set[str] = set()
    for cond in _in(profile_members.c.mention_pk, sorted(pks)):
        pids |= set(conn.execute(select(profile_members.c.profile_id).where(cond)).scalars())
    mates: set[int] = set()
    for cond in _in(profile_members.c.profile_id, sorted(pids)):
        mates |= set(conn.execute(select(profile_members.c.mention_pk).where(cond)).scalars())
    return mates


def _in(column: Any, values: list[Any]) -> list[Any]:
    return [column.in_(values[i : i + 500]) for i in range(0, len(values), 500)] or [column.in_([])]


def _personal_values(conn: Connection, domain: str, pks: list[int]) -> set[str]:
    """The raw and normalized emails and phones of these mentions: what rejected input and shared
    booking data are searched for."""
    values: set[str] = set()
    for cond in _in(mentions.c.id, pks):
        for raw, norm in conn.execute(select(mentions.c.raw, mentions.c.normalized).where(cond)):
            for item in (raw or {}).get("emails") or []:
                values.add(str(item.get("address", "") if isinstance(item, dict) else item))
            for item in (raw or {}).get("phones") or []:
                values.add(str(item.get("number", "") if isinstance(item, dict) else item))
            values.update(str(v) for v in (norm or {}).get("emails") or [])
            values.update(str(v) for v in (norm or {}).get("phones") or [])
    return {v for v in values if len(v) >= 5}


def _rejected_ids(conn: Connection, domain: str, needles: set[str]) -> list[int]:
    lowered = [n.lower().encode() for n in needles if n]
    if not lowered:
        return []
    out = []
    for rid, raw in conn.execute(select(rejected.c.id, rejected.c.raw).where(rejected.c.domain == domain)):
        text = bytes(raw).lower()
        if any(n in text for n in lowered):
            out.append(rid)
    return out


def search(store: Store, settings: Settings, query: Query) -> dict[str, Any]:
    """Every place in the domain that holds data of the person the query describes."""
    if not query.describe():
        raise ValidationFailed("query", "give --email, --phone or --name")
    with store.reading() as conn:
        direct = _mention_pks(conn, store.domain, query, settings)
        return _places(conn, store.domain, sorted(direct | _profile_mates(conn, direct)), query)


def _places(conn: Connection, domain: str, pks: list[int], query: Query | None) -> dict[str, Any]:
    rows: list[Any] = []
    for cond in _in(mentions.c.id, pks):
        rows += conn.execute(
            select(mentions.c.id, mentions.c.mention_key, mentions.c.object_pk, profile_members.c.profile_id)
            .outerjoin(profile_members, profile_members.c.mention_pk == mentions.c.id)
            .where(cond)
        ).all()
    keys = sorted(r.mention_key for r in rows)
    object_pks = sorted({r.object_pk for r in rows})
    profile_ids = sorted({r.profile_id for r in rows if r.profile_id})
    objs = []
    for cond in _in(objects.c.id, object_pks):
        objs += [
            f"{s}/{t}/{i}"
            for s, t, i in conn.execute(
                select(objects.c.source, objects.c.object_type, objects.c.object_id).where(cond)
            )
        ]
    inter = [
        {"kind": k, "role": r, "ref": ref}
        for cond in _in(interactions.c.mention_pk, pks)
        for k, r, ref in conn.execute(
            select(interactions.c.kind, interactions.c.role, interactions.c.ref).where(cond)
        )
    ]

    def by_keys(table: Any) -> list[dict[str, Any]]:
        return rows_touching(conn, table, domain, keys)

    needles = _personal_values(conn, domain, pks) | set(keys)
    if query is not None:
        needles |= {v for v in (query.email, query.phone, query.name) if v}
    return {
        "query": query.describe() if query else {},
        "profiles": profile_ids,
        "mentions": keys,
        "objects": sorted(set(objs)),
        "interactions": inter,
        "labels": [
            {k: r[k] for k in ("mention_a", "mention_b", "label", "labeller", "origin")}
            for r in by_keys(labels)
        ],
        "review_items": [
            {k: r[k] for k in ("id", "mention_a", "mention_b", "status")} for r in by_keys(review_queue)
        ],
        "decisions": len(by_keys(match_decisions)),
        "imported_scores": len(by_keys(external_scores)),
        "rejected_input": _rejected_ids(conn, domain, needles),
    }


@dataclass
class Receipt:
    receipt: str
    at: str
    request_hash: str
    actor: str
    removed: dict[str, int] = field(default_factory=dict)
    profiles_deleted: int = 0
    profiles_reresolved: int = 0
    models_marked: list[str] = field(default_factory=list)


def _scrub(value: Any, needles: set[str]) -> Any:
    """The JSON value with every string equal to a needle (any case) replaced."""
    if isinstance(value, dict):
        return {k: _scrub(v, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, needles) for v in value]
    if isinstance(value, str) and value.lower() in needles:
        return ERASED
    return value


def _redact(payload: dict[str, Any], path: str, receipt: str) -> dict[str, Any]:
    """The payload with the person at `path` (`holder`, `guests[1]`) replaced by an erasure mark."""
    out = json.loads(json.dumps(payload))
    name, _, rest = path.partition("[")
    if rest:
        index = int(rest.rstrip("]"))
        if isinstance(out.get(name), list) and index < len(out[name]):
            out[name][index] = {"erased": receipt}
    elif name in out:
        out[name] = {"erased": receipt}
    return out


def erase(
    store: Store,
    settings: Settings,
    actor: str,
    profile_ids: list[str] | None = None,
    mention_keys: list[str] | None = None,
    query: Query | None = None,
) -> Receipt:
    """Erase a person: the members of these profiles, these mentions, and those the query finds."""
    from pipelines.profile_ops import canonical_id

    request = {
        "profiles": sorted(profile_ids or []),
        "mentions": sorted(mention_keys or []),
        "query": query.describe() if query else {},
        "domain": store.domain,
    }
    receipt = Receipt(
        receipt=uuid.uuid4().hex,
        at=dt.datetime.now(dt.UTC).isoformat(),
        request_hash=hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest(),
        actor=actor,
    )
    removed: Counter[str] = Counter()
    with store.transaction() as conn:
        domain = store.domain
        pks: set[int] = set()
        for pid in profile_ids or []:
            canonical = canonical_id(conn, domain, pid)
            pks |= set(
                conn.execute(
                    select(profile_members.c.mention_pk).where(profile_members.c.profile_id == canonical)
                ).scalars()
            )
        for key in mention_keys or []:
            pk = conn.execute(
                select(mentions.c.id).where(mentions.c.domain == domain, mentions.c.mention_key == key)
            ).scalar()
            if pk is None:
                raise NotFound(f"no mention {key!r} in domain {domain!r}")
            pks.add(pk)
        if query is not None and query.describe():
            pks |= _mention_pks(conn, domain, query, settings)
        if not pks:
            raise NotFound("nothing to erase: no mention matches the request")
        erased = sorted(pks)
        rows: list[Any] = []
        for cond in _in(mentions.c.id, erased):
            rows += conn.execute(
                select(
                    mentions.c.id,
                    mentions.c.mention_key,
                    mentions.c.object_pk,
                    mentions.c.path,
                    profile_members.c.profile_id,
                )
                .outerjoin(profile_members, profile_members.c.mention_pk == mentions.c.id)
                .where(cond)
            ).all()
        keys = sorted(r.mention_key for r in rows)
        needles = {v.lower() for v in _personal_values(conn, domain, erased)}
        if query is not None:
            needles |= {v.lower() for v in (query.email, query.phone) if v}
        affected_profiles = {r.profile_id for r in rows if r.profile_id}

        # What hangs off the mentions, counted before the cascade removes it.
        for name, table, column in (
            ("identifiers", identifiers, identifiers.c.mention_pk),
            ("interactions", interactions, interactions.c.mention_pk),
            ("embeddings", embeddings, embeddings.c.mention_pk),
        ):
            removed[name] = sum(
                conn.execute(select(func.count()).select_from(table).where(cond)).scalar_one()
                for cond in _in(column, erased)
            )
        removed["candidate_pairs"] = sum(
            conn.execute(
                select(func.count())
                .select_from(candidate_pairs)
                .where(
                    or_(
                        candidate_pairs.c.mention_a.in_(erased[i : i + 500]),
                        candidate_pairs.c.mention_b.in_(erased[i : i + 500]),
                    )
                )
            ).scalar_one()
            for i in range(0, len(erased), 500)
        )
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            for name, table in (
                ("labels", labels),
                ("decisions", match_decisions),
                ("review_items", review_queue),
                ("imported_scores", external_scores),
            ):
                removed[name] += conn.execute(
                    delete(table).where(
                        table.c.domain == domain,
                        or_(table.c.mention_a.in_(part), table.c.mention_b.in_(part)),
                    )
                ).rowcount

        # Objects: gone when the person was all they held; else the person's part is cut out.
        by_object: dict[int, list[str]] = {}
        for r in rows:
            by_object.setdefault(r.object_pk, []).append(r.path)
        for object_pk, paths in by_object.items():
            others = conn.execute(
                select(func.count())
                .select_from(mentions)
                .where(mentions.c.object_pk == object_pk, mentions.c.id.notin_(erased))
            ).scalar_one()
            if others == 0:
                conn.execute(delete(objects).where(objects.c.id == object_pk))
                removed["objects"] += 1
                continue
            payload = conn.execute(select(objects.c.payload).where(objects.c.id == object_pk)).scalar_one()
            for path in paths:
                payload = _redact(payload, path, receipt.receipt)
            conn.execute(
                update(objects)
                .where(objects.c.id == object_pk)
                .values(
                    payload=_scrub(payload, needles),
                    content_hash=hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest(),
                )
            )
            for iid, attrs in conn.execute(
                select(interactions.c.id, interactions.c.attributes).where(
                    interactions.c.object_pk == object_pk
                )
            ).all():
                conn.execute(
                    update(interactions)
                    .where(interactions.c.id == iid)
                    .values(attributes=_scrub(attrs, needles))
                )
            removed["objects_redacted"] += 1
        # Booking contacts: the person's email or phone on bookings of other travellers.
        for needle in sorted(needles):
            hits = conn.execute(
                select(interactions.c.id, interactions.c.object_pk, interactions.c.attributes).where(
                    interactions.c.domain == domain,
                    func.lower(cast(interactions.c.attributes, Text)).contains(needle, autoescape=True),
                )
            ).all()
            for iid, object_pk, attrs in hits:
                conn.execute(
                    update(interactions)
                    .where(interactions.c.id == iid)
                    .values(attributes=_scrub(attrs, needles))
                )
                payload = conn.execute(select(objects.c.payload).where(objects.c.id == object_pk)).scalar()
                if payload is not None:
                    conn.execute(
                        update(objects)
                        .where(objects.c.id == object_pk)
                        .values(payload=_scrub(payload, needles))
                    )
                removed["contact_entries_scrubbed"] += 1
        for cond in _in(mentions.c.id, erased):  # those of deleted objects went with them
            conn.execute(delete(mentions).where(cond))
        removed["mentions"] = len(erased)

        ids = _rejected_ids(conn, domain, needles | {k.lower() for k in keys})  # imported rows name keys
        for cond in _in(rejected.c.id, ids):
            removed["rejected_input"] += conn.execute(delete(rejected).where(cond)).rowcount

        # Profile events keep membership lists: the erased keys leave them.
        erased_keys = set(keys)
        for eid, before, after in conn.execute(
            select(profile_events.c.id, profile_events.c.before, profile_events.c.after).where(
                profile_events.c.domain == domain
            )
        ).all():
            clean_before, clean_after = _drop_keys(before, erased_keys), _drop_keys(after, erased_keys)
            if (clean_before, clean_after) != (before, after):
                conn.execute(
                    update(profile_events)
                    .where(profile_events.c.id == eid)
                    .values(before=clean_before, after=clean_after)
                )
                removed["profile_event_entries"] += 1

        # Profiles: deleted when no one is left (with aliases pointing at them); else a new golden record.
        left = {
            pid: [
                k
                for _, k in conn.execute(
                    select(mentions.c.id, mentions.c.mention_key)
                    .join(profile_members, profile_members.c.mention_pk == mentions.c.id)
                    .where(profile_members.c.profile_id == pid)
                )
            ]
            for pid in affected_profiles
        }
        now = dt.datetime.now(dt.UTC)
        for pid, remaining in left.items():
            if not remaining:
                aliases = [
                    r.id
                    for r in conn.execute(
                        select(profiles.c.id, profiles.c.golden).where(
                            profiles.c.domain == domain, profiles.c.status == "retired"
                        )
                    )
                    if (r.golden or {}).get("merged_into") == pid
                ]
                conn.execute(delete(profiles).where(profiles.c.id.in_([pid, *aliases])))
                receipt.profiles_deleted += 1
                continue
            frame = load_mentions(conn, domain, keys=remaining)
            frame["modified_at"] = frame["mention_pk"].map(mention_times(conn, domain)).fillna("")
            conn.execute(
                update(profiles)
                .where(profiles.c.id == pid)
                .values(golden=golden_record(frame, survivorship_of(settings)), updated_at=now)
            )
            # Their profile lost a member: the next resolve decides them again.
            conn.execute(
                update(profile_members).where(profile_members.c.profile_id == pid).values(resolved_hash=None)
            )
            receipt.profiles_reresolved += 1
        receipt.removed = dict(sorted((k, v) for k, v in removed.items() if v))
        write_audit(conn, domain, actor, "erase", _receipt_dict(receipt))

    _erase_from_indexes(settings, domain, np.array(erased, np.int64))
    # the parsed mentions kept between commands hold the person too; the next load rebuilds them
    shutil.rmtree(settings.frame_cache_path(domain).parent, ignore_errors=True)
    try:
        from training.registry import mark_trained_on_erased

        receipt.models_marked = mark_trained_on_erased(store, settings, erased_keys, receipt.receipt)
    except Exception as exc:  # a missing registry must not undo an erasure that is done
        receipt.models_marked = [f"not checked: {type(exc).__name__}"]
    with store.transaction() as conn:
        write_audit(
            conn,
            domain,
            actor,
            "erase_models_marked",
            {"receipt": receipt.receipt, "models": receipt.models_marked},
        )
    return receipt


def _receipt_dict(receipt: Receipt) -> dict[str, Any]:
    return {k: v for k, v in vars(receipt).items()}


def _drop_keys(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _drop_keys(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [_drop_keys(v, keys) for v in value if not (isinstance(v, str) and v in keys)]
    return value


def _erase_from_indexes(settings: Settings, domain: str, pks: np.ndarray) -> None:
    """Remove the vectors from every saved index of the domain (one per encoder)."""
    folder = settings.index_path(domain).parent
    for path in sorted(folder.glob("*.faiss")) if folder.exists() else []:
        meta = (
            json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").exists() else None
        )
        if not meta:
            continue
        index = CandidateIndex.load(path, meta["dim"], index_config(settings))
        index.remove(pks)
        index.save(path)
