"""The candidates of one mention: what batch blocking would pair it with, found by index probes.

The same blockers as `features.blocking.block`, asked for one mention against the store:
- the deterministic keys (`blocking_keys`, kept at ingest): the mentions holding each of its keys,
  unless the key is held by more than the block limit (a generic key), as in the batch;
- shared travel: its bookings' references and contacts, and the holders of those contacts;
- the string pass: its window of names in each of its blocks (`windows_around`), the k most
  similar, ties to the smaller order key (`features.blocking.strings.top_for_one`);
- its embedding neighbours, ranked as the batch ranks them (`features.embedding.index.knn_ranked`),
  ties to the smaller order key too (the stored mentions' keys read from the store).

Batch blocking pairs each mention with its own k picks (string pass, embedding neighbours) and
so also with every mention whose picks hold it. A lookup finds both sides: its own picks, and the
mentions whose picks hold it (`features.blocking.strings.reverse_for_one`, over a slab of
`WINDOW` rows on each side of it; `pipelines.live_index.LiveIndex.reverse`, among its
`REVERSE_REACH` nearest). A mention not stored yet (or not in the index yet) is asked into
those others' picks, and the picks it pushes out are `Found.pushed_out`: the batch of all
mentions no longer proposes them by that blocker (the online core takes them off the store).
So one mention arriving finds what one batch run over everything gives it, whatever came
before it. A mention not stored yet goes by `UNSTORED`, an id larger than any stored one, which
is what it will be once written, and by its mention key's order key when it has a key (else
after every other).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from features.blocking import Blocker, BlockingConfig, CandidatePairs, union
from features.blocking.keys import (
    MOST_HOME_RESIDENTS,
    STRING_BLOCKS,
    block_limit,
    first_initials,
    home_key,
    row_keys,
    surname_sound,
    travel_homes,
)
from features.blocking.order import LAST, order_key, order_keys
from features.blocking.strings import WINDOW, reverse_for_one, top_for_one, window_bounds
from features.comparisons.base import ContactHomes, address_key, located, own_contacts_of
from pipelines.homes import contact_homes_in_store, homes_of_stored_contacts
from profiles.settings import Settings
from profiles.store.keys import keys_of_kinds, probe_keys, windows_around
from profiles.store.reads import mention_keys_of, names_of

UNSTORED = 0xFFFFFFFF  # above every stored id; pairs pack two ids in 64 bits (features.blocking.union)
STRING_THRESHOLD = BlockingConfig().string_threshold
KEY_KINDS = (
    Blocker.EMAIL,
    Blocker.PHONE,
    Blocker.LOYALTY,
    Blocker.DOCUMENT,
    Blocker.NAME_DOB,
    Blocker.PHONETIC_YEAR,
    Blocker.NAME,
    Blocker.DOB_POSTAL,
)
KEY_CODES = {int(k) for k in KEY_KINDS}


class Neighbours(Protocol):
    """The embedding side of a lookup: a process's candidate index, kept in step with the store."""

    def neighbours(
        self,
        pk: int,
        text: str,
        stored: bool,
        encoded: np.ndarray | None = None,
        ties_of: Callable[[np.ndarray], np.ndarray] | None = None,
        order: int = LAST,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids of the mention's embedding neighbours, its vector); `ties_of` maps ids to their
        order keys, `order` is the mention's own."""
        ...

    def reverse(
        self,
        pk: int,
        vector: np.ndarray,
        ties_of: Callable[[np.ndarray], np.ndarray] | None = None,
        order: int = LAST,
        adding: bool = True,
        pushes: bool = True,
    ) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """(the stored mentions whose own k + 1 nearest hold the mention, the pairs its arrival
        takes out of the batch's): `pipelines.live_index.LiveIndex.reverse`; `adding`: the
        mention is to be added to the index (not a `match`); without `pushes`, the pairs taken
        out are not looked for."""
        ...

    def vectors_of(self, ids: np.ndarray) -> np.ndarray: ...


@dataclass
class Found:
    pairs: CandidatePairs
    seconds: dict[str, float] = field(default_factory=dict)
    giant_keys: int = 0
    # the blocks the arriving mentions made too large (a key held by at most the mentions allowed
    # before them, by more with them), as (blocker, the other members): the batch proposes no
    # pair by them
    made_generic: list[tuple[int, list[int]]] = field(default_factory=list)
    # the pairs (a < b, by blocker) the arrival takes out of the batch's: a list it enters drops
    # its last member, which keeps the pair only from its own side
    pushed_out: list[tuple[int, int, int]] = field(default_factory=list)
    # where the contacts of the mention's own bookings live, as read for its home blocks (the
    # comparison asks again only about its candidates' other contacts)
    contact_homes: ContactHomes = field(default_factory=dict)


def _keys_of(mention: pd.DataFrame, interactions: pd.DataFrame) -> list[tuple[int, str, str]]:
    """(kind, key, name) of the one mention, as `mention_keys` derives them."""
    row = dict(zip(mention.columns, mention.iloc[0].tolist(), strict=True))
    travel = []
    if len(interactions):
        travel = list(
            zip(interactions["ref"].tolist(), map(tuple, interactions["contacts"].tolist()), strict=True)
        )
    return row_keys(row, travel)


# Travellers of one booking contact a home block reads at most: a contact located at a home (all its
# holders live there) and on more bookings than this is an agency's run from a flat; past it an
# online home block is cut short where the batch's is not.
MOST_TRAVELLERS = 10_000


def home_blocks(
    conn: Connection, domain: str, mention: pd.DataFrame, interactions: pd.DataFrame
) -> tuple[dict[str, list[int]], ContactHomes]:
    """The batch's home-key blocks (`features.blocking.keys.home_keys`) of the one mention in
    `mention`, as stored ids (the mention among them once stored): per home key, the mentions of
    its surname's sound and first initial living at the home, and those on trips booked from a
    contact of someone living there (the contacts its residents hold, where every holder of the
    contact lives there: `features.comparisons.base.located`). What the whole domain's frame
    gives a batch, read from the store: the residents by their stored home rows, their contacts by
    their contact keys, the bookings made from those by the travel keys."""
    row = dict(zip(mention.columns, mention.iloc[0].tolist(), strict=True))
    sound = surname_sound(row["last_name"] or "")
    initials = first_initials(row["first_name"], row["first_name_canonical"])
    if not sound or not initials:
        return {}, {}
    own = address_key(row["street"], row["postal_code"])
    booked_from: tuple[str, ...] = ()
    bookers: ContactHomes = {}
    if len(interactions):
        bookers = contact_homes_in_store(conn, domain, mention, interactions)
        booked_from = travel_homes(mention, interactions, bookers)[0]
    homes = list(dict.fromkeys(((own,) if own else ()) + booked_from))
    if not homes:
        return {}, bookers
    pk = int(row["mention_pk"])
    lived = probe_keys(conn, domain, [(int(Blocker.HOME), h) for h in homes], MOST_HOME_RESIDENTS + 1)
    residents = {h: set(lived[(int(Blocker.HOME), h)]) | ({pk} if h == own else set()) for h in homes}
    homes = [h for h in homes if len(residents[h]) <= MOST_HOME_RESIDENTS]
    everyone = sorted({r for h in homes for r in residents[h]} - {pk})
    held = keys_of_kinds(conn, domain, everyone, (int(Blocker.EMAIL), int(Blocker.PHONE)))
    if own is not None:
        held[pk] = list(own_contacts_of(mention)[0])
    contacts = {c for h in homes for r in residents[h] for c in held.get(r, ())}
    # a stored mention holds its contacts by its stored keys; one not stored yet is counted from its row
    where = homes_of_stored_contacts(conn, domain, contacts, None if pk != UNSTORED else mention)
    from_home = {c: located(where.get(c)) for c in contacts}
    booked = probe_keys(
        conn,
        domain,
        [(int(Blocker.TRAVEL), c) for c in sorted(c for c, h in from_home.items() if h)],
        MOST_TRAVELLERS,
    )
    out: dict[str, list[int]] = {}
    members = {h: set(residents[h]) for h in homes}
    for (_, contact), ids in booked.items():
        for h in from_home[contact]:
            if h in members:
                members[h].update(ids)
    names = names_of(conn, domain, {m for h in homes for m in members[h]} - {pk})
    goes_by = {
        m: first_initials(first, forms)
        for m, (first, last, forms) in names.items()
        if surname_sound(last) == sound
    }
    for h in homes:
        for initial in initials:
            same = sorted(m for m in members[h] if m != pk and initial in goes_by.get(m, ()))
            out[home_key(h, sound, initial)] = [pk, *same]
    return out, bookers


def _slabs(
    conn: Connection, domain: str, spots: list[tuple[int, str, str, int, int]], window: int = WINDOW
) -> list[tuple[list[int], list[int], list[str], int]]:
    """Each spot's slab of its string-pass block: up to `window` rows on each side of the mention,
    the mention among them, in the block's order; as (ids, order keys, names, the mention's
    position). Its own window (`window_bounds`) and the windows of the rows that hold it lie in
    the slab (`features.blocking.strings.reverse_for_one`)."""
    out = []
    for (_, _, name, order, pk), (before, after) in zip(
        spots, windows_around(conn, domain, spots, window, [window] * len(spots)), strict=True
    ):
        rows = [*reversed(before), (pk, order, name), *after]
        out.append(([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], len(before)))
    return out


def order_keys_in_store(conn: Connection, domain: str) -> Callable[[np.ndarray], np.ndarray]:
    """ids (any shape) -> the order keys of those stored mentions (0 for -1 or an unknown id),
    from their mention keys."""

    def ties_of(ids: np.ndarray) -> np.ndarray:
        flat = ids.ravel()
        keys = mention_keys_of(conn, domain, flat[flat >= 0].tolist())
        orders = dict(zip(keys, order_keys(keys.values()).tolist(), strict=True))
        return np.array([orders.get(int(i), 0) for i in flat], np.int64).reshape(ids.shape)

    return ties_of


def lookup(
    conn: Connection,
    domain: str,
    settings: Settings,
    mention: pd.DataFrame,
    interactions: pd.DataFrame,
    index: Neighbours | None,
    text: str = "",
    encoded: np.ndarray | None = None,
    arriving: Collection[int] = (),
    pushes: bool = True,
) -> Found:
    """The candidate pairs of the one mention in `mention` (a frame row; its interactions in
    `interactions`), with the blockers that proposed each and their embedding cosine; and the
    blocks it and the others `arriving` with it (stored ids) made too large. Its id is
    its store id, or `UNSTORED` for a mention not written yet; `encoded` is the vector of its
    `text` where the caller has it. Without `pushes` (a `match`, which writes nothing), the pairs
    its arrival would take out of others' picks are not looked for."""
    pk = int(mention["mention_pk"].iloc[0])
    stored = pk != UNSTORED
    arriving = {pk, *(int(x) for x in arriving)}
    own_key = mention["mention_key"].iloc[0] if "mention_key" in mention else None
    order = order_key(str(own_key)) if own_key else LAST
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    keys = _keys_of(mention, interactions)
    parts: list[tuple[np.ndarray, np.ndarray, int]] = []
    giant = 0

    def add(others: list[int] | np.ndarray, blocker: int) -> None:
        ids = np.unique(np.asarray(others, np.int64))
        ids = ids[ids != pk]
        if len(ids):
            parts.append((np.minimum(ids, pk), np.maximum(ids, pk), blocker))

    own = [(kind, key) for kind, key, _ in keys if kind in KEY_CODES]
    own_travel = {key for kind, key, _ in keys if kind == int(Blocker.TRAVEL)}
    contacts = {key for kind, key in own if kind in (int(Blocker.EMAIL), int(Blocker.PHONE))}
    travel_probes = [
        (int(kind), key)
        for key in sorted(own_travel | contacts)
        for kind in (Blocker.TRAVEL, Blocker.EMAIL, Blocker.PHONE)
    ]
    most = max(settings.max_block, settings.max_name_block) + 2
    members = probe_keys(conn, domain, own + travel_probes, most)
    made_generic: list[tuple[int, list[int]]] = []
    for kind, key in own:
        others = set(members[(kind, key)]) - {pk}
        limit = block_limit(kind, settings.max_block, settings.max_name_block)
        if len(others) + 1 > limit:
            giant += 1
            if len(others - arriving) <= limit and stored:
                made_generic.append((int(kind), sorted(others)))
        else:
            add(sorted(others), kind)
    seconds["keys"] = time.perf_counter() - clock

    clock = time.perf_counter()
    # the homes it lives at or travels from, under its surname's sound (the stored home rows are
    # where each mention lives, not keys to pair by: they are followed here)
    home_limit = block_limit(Blocker.HOME, settings.max_block, settings.max_name_block)
    blocks, bookers = home_blocks(conn, domain, mention, interactions)
    for home in blocks.values():
        others = set(home) - {pk}
        if len(others) + 1 > home_limit:
            giant += 1
            if len(others - arriving) <= home_limit and stored:
                made_generic.append((int(Blocker.HOME), sorted(others)))
        else:
            add(sorted(others), int(Blocker.HOME))
    seconds["homes"] = time.perf_counter() - clock

    clock = time.perf_counter()
    # co-travellers: a booking reference or contact shared, and the holders of those contacts
    # (as `features.blocking.keys.with_contact_holders` adds them)
    for key in sorted(own_travel | contacts):
        travellers = set(members[(int(Blocker.TRAVEL), key)]) - {pk}
        if key not in own_travel and not travellers:
            continue  # this email or phone is no booking's contact
        block = travellers | set(members[(int(Blocker.EMAIL), key)]) | set(members[(int(Blocker.PHONE), key)])
        block |= {pk}
        if len(block) > settings.max_block:
            giant += 1
            if len(block - arriving) <= settings.max_block and stored:
                made_generic.append((int(Blocker.TRAVEL), sorted(block - {pk})))
        else:
            add(sorted(block), int(Blocker.TRAVEL))
    seconds["travel"] = time.perf_counter() - clock

    clock = time.perf_counter()
    pushed_out: list[tuple[int, int, int]] = []
    spots = [(kind, key, name, order, pk) for kind, key, name in keys if kind in STRING_BLOCKS]
    for (_, _, name, _, _), (pks, orders, names, at) in zip(spots, _slabs(conn, domain, spots), strict=True):
        start, end = window_bounds(at, len(pks))
        rows = [i for i in range(start, end) if i != at]
        add(
            top_for_one(
                pk,
                order,
                name,
                [pks[i] for i in rows],
                [orders[i] for i in rows],
                [names[i] for i in rows],
                settings.string_k,
                STRING_THRESHOLD,
            ),
            int(Blocker.STRING),
        )
        takers, lost = reverse_for_one(
            at, pks, orders, names, settings.string_k, STRING_THRESHOLD, pushes=pushes
        )
        add(takers, int(Blocker.STRING))
        pushed_out.extend((a, b, int(Blocker.STRING)) for a, b in lost)
    seconds["strings"] = time.perf_counter() - clock

    clock = time.perf_counter()
    vector = None
    if index is not None:
        ties_of = order_keys_in_store(conn, domain)
        neighbours, vector = index.neighbours(pk, text, stored, encoded, ties_of, order)
        add(neighbours[neighbours >= 0], int(Blocker.EMBEDDING))
        seconds["ann"] = time.perf_counter() - clock
        clock = time.perf_counter()
        taken_by, lost = index.reverse(pk, vector, ties_of, order, adding=stored, pushes=pushes)
        add(taken_by, int(Blocker.EMBEDDING))
        pushed_out += [(a, b, int(Blocker.EMBEDDING)) for a, b in lost]
        seconds["ann_reverse"] = time.perf_counter() - clock
    else:
        seconds["ann"] = time.perf_counter() - clock

    a, b, flags = union(parts)
    pairs = CandidatePairs(a, b, flags)
    if index is not None and vector is not None and len(a):
        partners = np.where(a == pk, b, a)
        pairs.cosine = (index.vectors_of(partners[None, :])[0] @ vector).astype(np.float32)
    else:
        pairs.cosine = np.full(len(a), np.nan, np.float32)
    return Found(pairs, seconds, giant, made_generic, pushed_out, bookers)
