"""Mentions and interactions extracted from contract objects (pure functions).

A mention is one person inside one object, keyed `{source}/{object_type}/{id}#{path}`.
Bookings, web sessions and calls become interactions of the mentions they carry, so that
later steps can use shared travel as evidence.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from profiles.contract import (
    AirBooking,
    Clickstream,
    ContractObject,
    CustomerServiceInteraction,
    GuestProfile,
    HotelBooking,
    PaxProfile,
    Person,
)

FLAT_OBJECT_TYPE = "person_record"
FLAT_PATH = "record"


def mention_key(source: str, object_type: str, object_id: str, path: str) -> str:
    """The contract's mention key, used verbatim in exports."""
    return f"{source}/{object_type}/{object_id}#{path}"


@dataclass(frozen=True)
class Interaction:
    """One mention's part in a booking, session or call."""

    kind: str  # hotel_stay | flight | web_session | service_contact
    role: str  # holder | guest | passenger | user | customer
    ref: str  # the shared reference: hotel reservation id, PNR, session id, call id
    occurred_at: dt.datetime | None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExtractedMention:
    key: str
    path: str
    person: Person
    interaction: Interaction | None


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def extract_mentions(obj: ContractObject) -> list[ExtractedMention]:
    """Every person of a contract object, in payload order, with its interaction if any."""
    people: list[tuple[str, Person, Interaction | None]] = []
    attrs: dict[str, Any]
    data = obj.data
    if isinstance(data, GuestProfile | PaxProfile):
        people.append(("traveller", data.traveller, None))
    elif isinstance(data, HotelBooking):
        attrs = {
            "hotel_code": data.hotel_code,
            "check_in": data.check_in.isoformat(),
            "check_out": data.check_out.isoformat(),
            "status": data.status,
            "channel": data.channel,
            "nights": (data.check_out - data.check_in).days,
            # who booked: the holder's contacts are the booking's, as an air booking's contact
            # block is (`features.comparisons.travel` ties a guest to the profile holding them)
            "contact_emails": [e.address for e in data.holder.emails],
            "contact_phones": [p.number for p in data.holder.phones],
        }
        ref = f"{obj.source}/{obj.id}"
        people.append(
            ("holder", data.holder, Interaction("hotel_stay", "holder", ref, _at(data.check_in), attrs))
        )
        for i, guest in enumerate(data.guests):
            stay = Interaction("hotel_stay", "guest", ref, _at(data.check_in), attrs)
            people.append((f"guests[{i}]", guest, stay))
    elif isinstance(data, AirBooking):
        first = min((s.departure for s in data.segments), default=None)
        attrs = {
            "pnr": data.pnr,
            "status": data.status,
            "flights": [f"{s.flight_number}:{s.departure.date().isoformat()}" for s in data.segments],
            "route": [f"{s.origin}-{s.destination}" for s in data.segments],
            "contact_emails": [e.address for e in data.contact.emails] if data.contact else [],
            "contact_phones": [p.number for p in data.contact.phones] if data.contact else [],
        }
        for i, pax in enumerate(data.passengers):
            trip = Interaction("flight", "passenger", f"{obj.source}/{data.pnr}", first, attrs)
            people.append((f"passengers[{i}]", pax, trip))
    elif isinstance(data, Clickstream):
        first = min((e.at for e in data.events), default=None)
        attrs = {"device": data.device, "events": len(data.events)}
        session = Interaction("web_session", "user", f"{obj.source}/{data.session_id}", first, attrs)
        people.append(("user", data.user, session))
    elif isinstance(data, CustomerServiceInteraction):
        attrs = {"channel": data.channel, "topic": data.topic, "duration_s": data.duration_s}
        call = Interaction("service_contact", "customer", f"{obj.source}/{obj.id}", data.started_at, attrs)
        people.append(("customer", data.customer, call))
    return [
        ExtractedMention(mention_key(obj.source, obj.object_type.value, obj.id, path), path, person, inter)
        for path, person, inter in people
    ]
