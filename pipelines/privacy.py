"""Privacy requests: find every place that holds a person's data, and erase the person.

`search` answers an access request: profiles, mentions, objects, interactions, labels, review
items, decisions, imported scores and rejected input that name the person.

`erase` is the right to erasure, and a request to be forgotten is about a person: an email, phone
or name finds the mentions that carry it, and the person is every member of the profiles those
mentions resolved to (a profile id names them directly); `--mention KEY` alone erases one record.
`plan` shows what would go, and nothing is erased without confirmation. Erasure removes the
mentions (and the objects that held no one else; objects shared with others keep the others and
lose the person's part), interactions, identifiers, blocking keys, embeddings, candidate pairs,
index vectors, labels, decisions, review items, imported scores and rejected input that carry the
person's strong identifiers; scrubs them from other bookings' contacts and from the membership
lists and golden-record snapshots of the profile history; re-resolves what is left of their
profiles; deletes the domain's cache folder (parsed mentions, kept comparison vectors); writes every recorded export again; marks registered
models trained on their labels; and on SQLite overwrites the freed pages (`secure_delete`) and
empties the write-ahead log, so no copy stays in the database files. The receipt (counts per
place, time, a hash of the request) goes to the audit log, which never holds the personal data.
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
from features.frame import PERSON_FIELDS, load_mentions
from features.normalize.emails import normalize_email
from features.normalize.names import name_parts
from features.normalize.phones import normalize_phone
from features.normalize.text import fold
from pipelines.block import index_config
from pipelines.keys import mentions_of_object_pks, refresh_keys
from pipelines.resolve import survivorship_of
from profiles.errors import NotFound, ValidationFailed
from profiles.resolution.golden import golden_record
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.decisions import record_event, rows_touching
from profiles.store.profiles_io import mention_times, touch_profiles
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


@dataclass
class ErasureRequest:
    """Who to erase: profiles (every member), mentions (those records alone), and a query (the
    person its email, phone or name finds: every member of their profiles)."""

    profile_ids: list[str] = field(default_factory=list)
    mention_keys: list[str] = field(default_factory=list)
    query: Query | None = None

    def describe(self, domain: str) -> dict[str, Any]:
        return {
            "profiles": sorted(self.profile_ids),
            "mentions": sorted(self.mention_keys),
            "query": self.query.describe() if self.query else {},
            "domain": domain,
        }


def _targets(conn: Connection, domain: str, settings: Settings, request: ErasureRequest) -> set[int]:
    """The mention ids an erasure removes (NotFound when there is none)."""
    from pipelines.profile_ops import canonical_id

    pks: set[int] = set()
    for pid in request.profile_ids:
        canonical = canonical_id(conn, domain, pid)
        pks |= set(
            conn.execute(
                select(profile_members.c.mention_pk).where(profile_members.c.profile_id == canonical)
            ).scalars()
        )
    for key in request.mention_keys:
        pk = conn.execute(
            select(mentions.c.id).where(mentions.c.domain == domain, mentions.c.mention_key == key)
        ).scalar()
        if pk is None:
            raise NotFound(f"no mention {key!r} in domain {domain!r}")
        pks.add(pk)
    if request.query is not None and request.query.describe():
        direct = _mention_pks(conn, domain, request.query, settings)
        pks |= direct | _profile_mates(conn, direct)
    if not pks:
        raise NotFound("nothing to erase: no mention matches the request (see `upt privacy search`)")
    return pks


def plan(store: Store, settings: Settings, request: ErasureRequest) -> dict[str, Any]:
    """What `erase` would remove for this request, place by place, without removing anything."""
    with store.reading() as conn:
        pks = _targets(conn, store.domain, settings, request)
        return _places(conn, store.domain, sorted(pks), request.query)


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
    exports_rewritten: int = 0
    log_emptied: bool | None = None  # SQLite: the write-ahead log checkpointed and truncated


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
    """Erase a person: every member of these profiles and of the profiles the query's mentions
    resolved to, and these mentions (records) alone. See the module docstring for every place."""
    request = ErasureRequest(list(profile_ids or []), list(mention_keys or []), query)
    receipt = Receipt(
        receipt=uuid.uuid4().hex,
        at=dt.datetime.now(dt.UTC).isoformat(),
        request_hash=hashlib.sha256(
            json.dumps(request.describe(store.domain), sort_keys=True).encode()
        ).hexdigest(),
        actor=actor,
    )
    removed: Counter[str] = Counter()
    with store.transaction() as conn:
        domain = store.domain
        erased = sorted(_targets(conn, domain, settings, request))
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
        person = _field_values(load_mentions(conn, domain, keys=keys))
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
        touched_objects: set[int] = set()
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
            touched_objects.add(object_pk)
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
                touched_objects.add(object_pk)
        for cond in _in(mentions.c.id, erased):  # those of deleted objects went with them
            conn.execute(delete(mentions).where(cond))
        # the other travellers of those bookings lost the person's references and contacts
        refresh_keys(conn, domain, mentions_of_object_pks(conn, domain, touched_objects))
        removed["mentions"] = len(erased)
        # The person's own values: those no remaining mention holds (a shared household phone,
        # a common surname or a city stay where others hold them).
        remaining = load_mentions(conn, domain, cache=settings.frame_cache_path(domain))
        person = {f: values - _held(remaining, f, values) for f, values in person.items()}
        own = {str(v).lower() for values in person.values() for v in values if len(str(v)) >= 4}

        ids = _rejected_ids(conn, domain, needles | own | {k.lower() for k in keys})  # rows name keys
        for cond in _in(rejected.c.id, ids):
            removed["rejected_input"] += conn.execute(delete(rejected).where(cond)).rowcount

        # Profile events keep membership lists and golden-record snapshots: the person leaves both.
        erased_keys = set(keys)
        history = conn.execute(
            select(profile_events.c.id, profile_events.c.before, profile_events.c.after).where(
                profile_events.c.domain == domain
            )
        ).all()
        seen: dict[str, set[Any]] = {}
        for _, before, after in history:
            for record in _affected_goldens(before, erased_keys) + _affected_goldens(after, erased_keys):
                for name, values in _golden_values(record).items():
                    seen.setdefault(name, set()).update(values)
        held = {name: _held(remaining, name, values) for name, values in seen.items()}
        for eid, before, after in history:
            clean_before = _scrub_snapshot(before, erased_keys, held)
            clean_after = _scrub_snapshot(after, erased_keys, held)
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
        touch_profiles(conn, domain, [pid for pid, remaining in left.items() if remaining])
        for pid in sorted(affected_profiles):
            # what happened, for the history and the outgoing events: ids and counts, no data
            record_event(
                conn,
                domain,
                "erase",
                pid,
                {"mentions_erased": sum(1 for r in rows if r.profile_id == pid)},
                {"receipt": receipt.receipt, "deleted": not left[pid]},
                actor,
                "right to erasure",
            )
        receipt.removed = dict(sorted((k, v) for k, v in removed.items() if v))
        write_audit(conn, domain, actor, "erase", _receipt_dict(receipt))

    _erase_from_indexes(settings, domain, np.array(erased, np.int64))
    # the parsed mentions kept between commands hold the person too; the next load rebuilds them
    shutil.rmtree(settings.frame_cache_path(domain).parent, ignore_errors=True)
    from pipelines.export import rewrite_exports

    receipt.exports_rewritten = len(rewrite_exports(store))
    receipt.log_emptied = empty_write_ahead_log(store)
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


PERSONAL_FIELDS = (*PERSON_FIELDS, "first_name", "last_name", "full_name")


def _field_values(frame: Any) -> dict[str, set[Any]]:
    """Per field a person is recognized by, every value these mentions hold (lists flattened)."""
    out: dict[str, set[Any]] = {}
    for name in PERSONAL_FIELDS:
        if name not in frame:
            continue
        values: set[Any] = set()
        for item in frame[name].tolist():
            values.update(v for v in (item if isinstance(item, tuple | list) else (item,)) if v)
        out[name] = values
    return out


def _held(frame: Any, name: str, values: set[Any]) -> set[Any]:
    """Which of `values` some mention of `frame` holds in field `name`."""
    if name not in frame or not values:
        return set()
    column = frame[name]
    flat = column.explode() if len(column) and isinstance(column.iloc[0], tuple | list) else column
    return set(flat[flat.isin(list(values))].tolist())


def _affected_goldens(snapshot: Any, keys: set[str]) -> list[dict[str, Any]]:
    """The golden-record snapshots of an event side (`before` or `after`) taken of a profile that
    had an erased mention among its members."""
    if not isinstance(snapshot, dict) or not isinstance(snapshot.get("golden"), dict):
        return []
    members = snapshot.get("members") or {}
    return [
        record
        for pid, record in snapshot["golden"].items()
        if isinstance(record, dict) and keys & set(members.get(pid) or [])
    ]


def _golden_values(record: dict[str, Any]) -> dict[str, set[Any]]:
    out: dict[str, set[Any]] = {}
    for name, entry in record.items():
        if isinstance(entry, dict) and "value" in entry:
            values = {entry["value"], *(entry.get("values") or [])}
            out.setdefault(name, set()).update(v for v in values if isinstance(v, str | int | float))
    return out


def _scrub_golden(record: dict[str, Any], keys: set[str], held: dict[str, set[Any]]) -> dict[str, Any]:
    """A golden-record snapshot of a profile the erased person was in: their keys leave every
    `from` list, and every value no remaining mention holds leaves the record (the person's own
    values, and the older values of records that changed since, which may have been theirs)."""
    out: dict[str, Any] = {}
    for name, entry in record.items():
        if not isinstance(entry, dict) or "value" not in entry:
            out[name] = entry
            continue
        kept = held.get(name, set())
        if entry["value"] not in kept:
            continue
        holders = [k for k in entry.get("from") or [] if k not in keys]
        gone = len(entry.get("from") or []) - len(holders)
        clean = {**entry, "from": holders, "support": max(len(holders), int(entry.get("support", 0)) - gone)}
        if "values" in entry:
            clean["values"] = [v for v in entry["values"] if v in kept]
        out[name] = clean
    return out


def _scrub_snapshot(value: Any, keys: set[str], held: dict[str, set[Any]]) -> Any:
    """A profile event's `before` or `after` without the erased mentions: membership lists lose
    their keys, and the golden-record snapshots of profiles they were in lose their values."""
    if not isinstance(value, dict):
        return _drop_keys(value, keys)
    affected = {id(record) for record in _affected_goldens(value, keys)}
    golden = value.get("golden")
    out = _drop_keys({k: v for k, v in value.items() if k != "golden"}, keys)
    if isinstance(golden, dict):
        out["golden"] = {
            pid: _scrub_golden(record, keys, held) if id(record) in affected else record
            for pid, record in golden.items()
        }
    return out


def empty_write_ahead_log(store: Store, tries: int = 20) -> bool | None:
    """On SQLite, copy the write-ahead log into the database and truncate it to nothing, so that
    page images written before an erasure do not outlive it (deleted content itself is zeroed by
    `secure_delete`). True when the log is empty; None on other databases."""
    import time

    if store.engine.dialect.name != "sqlite":
        return None
    for _ in range(tries):
        raw = store.engine.raw_connection()  # outside any transaction: a checkpoint waits for none
        try:
            busy, _log, _moved = raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            raw.close()
        if not busy:
            return True
        time.sleep(0.05)  # a reader still holds an old snapshot
    return False


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
