"""Pydantic models of input contract v1 (`shared/contract/README.md`) and line validation.

`parse_object` is the single boundary every ingestion path (batch files, HTTP, stream) goes
through: it takes the bytes of one line and returns a validated `ContractObject` or raises
`ValidationFailed` whose `field` names the offending place (`data.holder.date_of_birth`).
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from profiles.errors import ValidationFailed
from profiles.strict_json import loads_strict

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EARLIEST_BIRTH = dt.date(1875, 1, 1)


class ObjectType(StrEnum):
    GUEST_PROFILE = "guest_profile"
    PAX_PROFILE = "pax_profile"
    HOTEL_BOOKING = "hotel_booking"
    AIR_BOOKING = "air_booking"
    CLICKSTREAM = "clickstream"
    CUSTOMER_SERVICE_INTERACTION = "customer_service_interaction"


def _rfc3339(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value
    if not isinstance(value, str) or not RFC3339.match(value):
        raise ValueError("is not RFC 3339 (expected a timestamp with offset, e.g. 2024-01-01T00:00:00Z)")
    try:
        return dt.datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise ValueError(f"is not RFC 3339: {exc}") from None


def _iso_date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not ISO_DATE.match(value):
        raise ValueError("is not a date (expected YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a date: no such day in the calendar") from None


def _birth_date(value: dt.date) -> dt.date:
    if value < EARLIEST_BIRTH or value > dt.date.today():
        raise ValueError(f"is not a date of birth: {value.isoformat()} is outside 1875-01-01..today")
    return value


def _source(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    if not SOURCE_PATTERN.match(value):
        raise ValueError("has a forbidden character or length (1-64 of letters, digits, '.', '_', '-')")
    return value


Timestamp = Annotated[dt.datetime, BeforeValidator(_rfc3339)]
Date = Annotated[dt.date, BeforeValidator(_iso_date)]
BirthDate = Annotated[dt.date, BeforeValidator(_iso_date), AfterValidator(_birth_date)]
NonEmpty = Annotated[str, Field(min_length=1)]
# Upper bounds on what lands in the store's sized columns and references (a 500-character first
# name, or a PNR of a megabyte, is a broken sender, not a guest): rejected with the field's name.
Name = Annotated[str, Field(max_length=200)]
Short = Annotated[str, Field(max_length=64)]
Text = Annotated[str, Field(max_length=400)]
Ref = Annotated[str, Field(min_length=1, max_length=128)]


class _Part(BaseModel):
    """Payload parts: unknown keys are ignored, as at the top level."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)


class Email(_Part):
    address: Annotated[str, Field(min_length=1, max_length=254)]  # RFC 5321's limit
    type: Literal["personal", "business", "other"] | None = None
    primary: bool | None = None


class Phone(_Part):
    number: Annotated[str, Field(min_length=1, max_length=64)]
    type: Short | None = None
    country_code: Short | None = None


class Address(_Part):
    line1: Text | None = None
    line2: Text | None = None
    city: Name | None = None
    state: Name | None = None
    postal_code: Annotated[str, Field(max_length=20)] | None = None
    country: Short | None = None
    type: Short | None = None


class Loyalty(_Part):
    program: Annotated[str, Field(min_length=1, max_length=64)]
    id: Ref
    tier: Short | None = None


class Document(_Part):
    type: Literal["passport", "national_id", "driver_license"]
    number: Ref
    country: Short | None = None


class Person(_Part):
    """One person as a source describes them; every field optional."""

    first_name: Name | None = None
    middle_name: Name | None = None
    last_name: Name | None = None
    prefix: Short | None = None
    suffix: Short | None = None
    full_name: Text | None = None
    date_of_birth: BirthDate | None = None
    gender: Short | None = None
    emails: list[Email] = Field(default_factory=list)
    phones: list[Phone] = Field(default_factory=list)
    addresses: list[Address] = Field(default_factory=list)
    loyalty: list[Loyalty] = Field(default_factory=list)
    documents: list[Document] = Field(default_factory=list)
    company: Name | None = None
    language: Short | None = None
    nationality: Short | None = None

    @property
    def matchable(self) -> bool:
        """A person with no name, email, phone, loyalty id or document cannot be matched."""
        return bool(
            self.first_name
            or self.last_name
            or self.full_name
            or self.emails
            or self.phones
            or self.loyalty
            or self.documents
        )


class GuestProfile(_Part):
    traveller: Person
    created_at: Timestamp | None = None
    preferences: dict[str, Any] | None = None


class PaxProfile(_Part):
    traveller: Person


class HotelBooking(_Part):
    hotel_code: Annotated[str, Field(min_length=1, max_length=64)]
    check_in: Date
    check_out: Date
    status: Literal["confirmed", "cancelled", "no_show", "checked_out"]
    channel: str | None = None
    room_type: str | None = None
    total_amount: float | None = None
    currency: str | None = None
    holder: Person
    guests: list[Person]


class Segment(_Part):
    origin: NonEmpty
    destination: NonEmpty
    departure: Timestamp
    flight_number: NonEmpty
    cabin: str | None = None


class Contact(_Part):
    emails: list[Email] = Field(default_factory=list)
    phones: list[Phone] = Field(default_factory=list)


class AirBooking(_Part):
    pnr: Annotated[str, Field(min_length=1, max_length=64)]
    status: Annotated[str, Field(min_length=1, max_length=64)]
    segments: list[Segment]
    passengers: list[Person]
    contact: Contact | None = None
    total_amount: float | None = None
    currency: str | None = None


class Event(_Part):
    type: NonEmpty
    at: Timestamp
    url: str | None = None
    product: str | None = None


class Clickstream(_Part):
    session_id: Ref
    events: list[Event]
    user: Person
    device: str | None = None


class CustomerServiceInteraction(_Part):
    channel: Literal["voice", "chat", "email"]
    started_at: Timestamp
    duration_s: float | None = Field(None, ge=0)
    customer: Person
    topic: str | None = None
    sentiment: float | None = Field(None, ge=-1, le=1)
    summary: str | None = None


Payload = GuestProfile | PaxProfile | HotelBooking | AirBooking | Clickstream | CustomerServiceInteraction

PAYLOADS: dict[ObjectType, type[_Part]] = {
    ObjectType.GUEST_PROFILE: GuestProfile,
    ObjectType.PAX_PROFILE: PaxProfile,
    ObjectType.HOTEL_BOOKING: HotelBooking,
    ObjectType.AIR_BOOKING: AirBooking,
    ObjectType.CLICKSTREAM: Clickstream,
    ObjectType.CUSTOMER_SERVICE_INTERACTION: CustomerServiceInteraction,
}


class Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    object_type: ObjectType
    source: Annotated[str, BeforeValidator(_source)]
    id: Annotated[str, Field(min_length=1, max_length=128)]
    modified_at: Timestamp
    data: dict[str, Any]


class ContractObject(BaseModel):
    """A validated contract object: its envelope plus the typed payload."""

    model_config = ConfigDict(frozen=True)

    object_type: ObjectType
    source: str
    id: str
    modified_at: dt.datetime
    data: Payload

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.source, self.object_type.value, self.id)


def _first_error(exc: ValidationError, prefix: str = "") -> ValidationFailed:
    """Turn pydantic's first error into a ValidationFailed naming the field."""
    err = exc.errors(include_url=False)[0]
    loc = prefix + ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(".[", "[")
    loc = loc or "line"
    kind = err["type"]
    if kind == "missing":
        reason = "missing (a required field)"
    elif kind == "value_error":
        reason = str(err["msg"]).removeprefix("Value error, ")
    else:
        reason = f"{err['msg']} (got {_short(err.get('input'))})"
    return ValidationFailed(loc, reason)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_object(raw: Any) -> ContractObject:
    """Validate one decoded JSON value against the contract."""
    if not isinstance(raw, dict):
        raise ValidationFailed("line", f"must be a JSON object, got {type(raw).__name__}")
    object_type = raw.get("object_type")
    if "object_type" in raw and object_type not in ObjectType.__members__.values():
        allowed = ", ".join(t.value for t in ObjectType)
        raise ValidationFailed(
            "object_type", f"unknown object_type {_short(object_type)} (expected one of {allowed})"
        )
    try:
        env = Envelope.model_validate(raw)
    except ValidationError as exc:
        raise _first_error(exc) from None
    try:
        payload = PAYLOADS[env.object_type].model_validate(env.data)
    except ValidationError as exc:
        raise _first_error(exc, "data.") from None
    return ContractObject(
        object_type=env.object_type,
        source=env.source,
        id=env.id,
        modified_at=env.modified_at,
        data=payload,
    )


def parse_line(line: bytes, max_bytes: int) -> ContractObject:
    """Validate the raw bytes of one JSON Lines line (without its newline)."""
    if len(line) > max_bytes:
        raise ValidationFailed("line", f"is {len(line):,} bytes, longer than the limit of {max_bytes:,}")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("line", f"is not valid UTF-8 (byte {exc.start})") from None
    return validate_object(loads_strict(text))


def parse_birth_date(value: str) -> dt.date | None:
    """The contract's reading of a date of birth: a real `YYYY-MM-DD` day from 1875 to today, else None."""
    try:
        return _birth_date(_iso_date(value))
    except ValueError:
        return None
