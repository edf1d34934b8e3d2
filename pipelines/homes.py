"""Where the contacts bookings were made from live, read from the store: what
`features.comparisons.base.homes_of_contacts` gives over a whole domain's frame, for a few
contacts. An online comparison (`booked_from_home`, `same_booker_home`) and the stored home keys
(`pipelines.keys.refresh_keys`) ask it."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection

from features.blocking import Blocker
from features.comparisons.base import MOST_CONTACT_HOLDERS, ContactHomes, address_key, homes_of_contacts
from profiles.store.keys import probe_keys
from profiles.store.reads import addresses_of


def contact_homes_in_store(
    conn: Connection,
    domain: str,
    frame: pd.DataFrame,
    interactions: pd.DataFrame,
    known: ContactHomes | None = None,
) -> ContactHomes:
    """Where the contacts these bookings were made from live, as the store and the request hold
    them (`frame`: the request's mentions, one maybe not stored yet): what `homes_of_contacts`
    gives over the whole domain's frame in a batch, for these contacts (their stored holders found
    by the contact blocking keys, a contact on more mentions than the cap cut short there as the
    batch leaves it out). `known`: homes this request already read (the candidate lookup's, of the
    mention's own bookings), not read again."""
    if not len(interactions) or "contacts" not in interactions:
        return {}
    contacts = {c for found in interactions["contacts"] if found for c in found}
    known = {c: home for c, home in (known or {}).items() if c in contacts}
    return known | homes_of_stored_contacts(conn, domain, contacts - known.keys(), frame)


def homes_of_stored_contacts(
    conn: Connection, domain: str, contacts: set[str], frame: pd.DataFrame | None = None
) -> ContactHomes:
    """Where these contacts live (`homes_of_contacts` over the whole domain), from their stored
    holders and the mentions of `frame` (a request's, one maybe not stored yet)."""
    if not contacts:
        return {}
    held = contact_holders(conn, domain, contacts)
    # a contact on more mentions than the cap locates nobody (`located`): its holders, up to
    # two hundred rows of a corporate phone, are not read
    located = {c for c, ids in held.items() if len(ids) <= MOST_CONTACT_HOLDERS}
    # the stored holders' contacts are the keys they were found by
    places = addresses_of(conn, domain, {pk for c in located for pk in held[c]})
    homes: dict[str, tuple[int, frozenset[str]]] = {}
    for contact in located:
        ids = [pk for pk in held[contact] if pk in places]
        if ids:
            found = (address_key(*places[pk]) for pk in ids)
            homes[contact] = (len(ids), frozenset(h for h in found if h is not None))
    # and the request's mentions not stored among them (the one a `match` asks about)
    if frame is not None:
        unstored = frame[~frame["mention_pk"].isin(list(places))]
        for contact, (count, where) in homes_of_contacts(unstored, located).items():
            had, there = homes.get(contact, (0, frozenset()))
            homes[contact] = (had + count, there | where)
    for contact, ids in held.items():
        if len(ids) > MOST_CONTACT_HOLDERS:
            homes[contact] = (len(ids), frozenset())
    return homes


def contact_holders(conn: Connection, domain: str, contacts: set[str]) -> dict[str, list[int]]:
    """The stored mentions holding each booking contact (an email, a phone suffix) as their own,
    by the contact blocking keys: at most one more than `MOST_CONTACT_HOLDERS` (enough to tell a
    contact that locates nobody)."""
    probes = [(int(Blocker.EMAIL if "@" in c else Blocker.PHONE), c) for c in sorted(contacts)]
    return {c: ids for (_, c), ids in probe_keys(conn, domain, probes, MOST_CONTACT_HOLDERS + 1).items()}
