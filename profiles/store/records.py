"""What the ingest path hands to the store: objects with their mentions, ready to write."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


def content_hash(value: Any) -> str:
    """A stable SHA-256 of a JSON-able value (key order does not matter)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def as_utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC datetime; naive values (SQLite drops offsets) are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


@dataclass(frozen=True)
class MentionRecord:
    key: str
    path: str
    matchable: bool
    raw: dict[str, Any]
    normalized: dict[str, Any]
    identifiers: list[tuple[str, str]]
    interaction: dict[str, Any] | None = None  # kind, role, ref, occurred_at, attributes

    @cached_property
    def content_hash(self) -> str:
        return content_hash([self.raw, self.normalized])


@dataclass(frozen=True)
class ObjectRecord:
    """One object to store. `versioned` objects replace older ones by `modified_at`; the others
    (flat table rows, which carry no version) replace the stored row when their content differs."""

    source: str
    object_type: str
    object_id: str
    modified_at: dt.datetime
    payload: dict[str, Any]
    mentions: list[MentionRecord] = field(default_factory=list)
    versioned: bool = True

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.source, self.object_type, self.object_id)

    @cached_property
    def content_hash(self) -> str:
        return content_hash(self.payload)


@dataclass(frozen=True)
class Rejection:
    raw: bytes
    origin: str
    location: str
    field: str
    reason: str

    @property
    def raw_hash(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


@dataclass
class WriteResult:
    inserted: int = 0
    replaced: int = 0
    unchanged: int = 0
    rejected: int = 0

    def add(self, other: WriteResult) -> None:
        self.inserted += other.inserted
        self.replaced += other.replaced
        self.unchanged += other.unchanged
        self.rejected += other.rejected
