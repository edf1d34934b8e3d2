"""Tables of the UPT store. Every row belongs to one profile domain (tenant).

Changing a table here needs a new Alembic revision in `profiles/migrations/versions/`
(`make migration m="what changed"`); a test checks the two never drift apart.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite only auto-increments INTEGER keys


def _domain() -> Column[str]:
    return Column("domain", String(64), nullable=False)


def _at(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


objects = Table(
    "objects",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _domain(),
    Column("source", String(64), nullable=False),
    Column("object_type", String(40), nullable=False),
    Column("object_id", String(128), nullable=False),
    _at("modified_at"),
    Column("content_hash", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    _at("ingested_at"),
    UniqueConstraint("domain", "source", "object_type", "object_id"),
)

mentions = Table(
    "mentions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _domain(),
    Column("mention_key", String(400), nullable=False),
    Column("object_pk", Id, ForeignKey("objects.id", ondelete="CASCADE"), nullable=False),
    Column("source", String(64), nullable=False),
    Column("object_type", String(40), nullable=False),
    Column("path", String(64), nullable=False),
    Column("matchable", Boolean, nullable=False),
    Column("raw", JSON, nullable=False),
    Column("normalized", JSON, nullable=False),
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    Column("full_name", String(400)),
    Column("date_of_birth", String(10)),
    Column("email", String(254)),
    Column("phone", String(20)),
    Column("postal_code", String(20)),
    Column("country", String(2)),
    Column("flags", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    _at("updated_at"),
    UniqueConstraint("domain", "mention_key"),
    Index(None, "object_pk"),
)

# One row per strong identifier of a mention: email, phone, loyalty, document.
identifiers = Table(
    "identifiers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _domain(),
    Column("mention_pk", Id, ForeignKey("mentions.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", String(300), nullable=False),
    Index(None, "domain", "kind", "value"),
    Index(None, "mention_pk"),
)

interactions = Table(
    "interactions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _domain(),
    Column("object_pk", Id, ForeignKey("objects.id", ondelete="CASCADE"), nullable=False),
    Column("mention_pk", Id, ForeignKey("mentions.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("role", String(32), nullable=False),
    Column("ref", String(300), nullable=False),
    _at("occurred_at", nullable=True),
    Column("attributes", JSON, nullable=False),
    Index(None, "domain", "ref"),
    Index(None, "mention_pk"),
    Index(None, "object_pk"),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", String(40), primary_key=True),
    _domain(),
    Column("status", String(16), nullable=False),  # active | retired
    Column("golden", JSON, nullable=False),
    _at("created_at"),
    _at("updated_at"),
    # Raised by every write that changes the profile (membership, golden record, status), above
    # every value its domain held before: writers that read earlier see what changed since.
    Column("change_seq", BigInteger, nullable=False, server_default="0"),
    Index(None, "domain", "status"),
    Index(None, "domain", "change_seq"),
)

profile_members = Table(
    "profile_members",
    metadata,
    Column("mention_pk", Id, ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True),
    _domain(),
    Column("profile_id", String(40), ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    _at("added_at"),
    # The mention's content hash when it was last resolved: incremental resolve redoes a mention
    # whose hash differs (changed, or never resolved: NULL).
    Column("resolved_hash", String(80)),  # ":online" after it: resolved online, the batch redoes it
    Index(None, "profile_id"),
)

match_decisions = Table(
    "match_decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _domain(),
    Column("mention_a", String(400), nullable=False),
    Column("mention_b", String(400), nullable=False),
    Column("score", Float),
    Column("model_version", String(64)),
    Column("rule", String(64)),
    Column("decision", String(16), nullable=False),  # merge | review | no_match
    Column("actor", String(128), nullable=False),
    _at("decided_at"),
    # Who decided: rule | model | external | manual; and the threshold the score was held to.
    Column("source", String(16)),
    Column("threshold", Float),
    Index(None, "domain", "mention_a", "mention_b"),
    Index(None, "domain", "mention_b"),  # the decisions touching one mention, from either side
)

# Pair scores from another system (`upt import-matches`), decided like the model's own.
external_scores = Table(
    "external_scores",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _domain(),
    Column("mention_a", String(400), nullable=False),
    Column("mention_b", String(400), nullable=False),
    Column("score", Float, nullable=False),
    Column("scorer", String(64), nullable=False),
    _at("imported_at"),
    UniqueConstraint("domain", "mention_a", "mention_b", "scorer"),
    Index(None, "domain", "mention_b"),  # the scores naming one mention, from either side
)

# Every change of a profile's membership (automatic or manual merge, split, unmerge, erasure) with
# the exact state before it, so that an unmerge can restore it.
profile_events = Table(
    "profile_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _domain(),
    Column("kind", String(16), nullable=False),  # merge | split | unmerge | erase
    Column("profile_id", String(40), nullable=False),
    Column("before", JSON, nullable=False),  # {profile id: [mention keys]} and golden records
    Column("after", JSON, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("reverted_by", BigInteger),
    _at("at"),
    Index(None, "domain", "profile_id"),
)

labels = Table(
    "labels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _domain(),
    Column("mention_a", String(400), nullable=False),
    Column("mention_b", String(400), nullable=False),
    Column("label", String(10), nullable=False),  # match | non_match | unsure
    Column("labeller", String(128), nullable=False),
    Column("origin", String(16), nullable=False),  # ui | cli | import | review | oracle
    Column("features", JSON),
    _at("labelled_at"),
    UniqueConstraint("domain", "mention_a", "mention_b", "labeller"),
)

review_queue = Table(
    "review_queue",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _domain(),
    Column("mention_a", String(400), nullable=False),
    Column("mention_b", String(400), nullable=False),
    Column("score", Float),
    Column("model_version", String(64)),
    Column("status", String(16), nullable=False),  # open | merged | rejected
    _at("created_at"),
    _at("resolved_at", nullable=True),
    Column("resolved_by", String(128)),
    Index(None, "domain", "status"),
    Index(None, "domain", "mention_a", "mention_b"),  # is this pair already asked about?
)

rejected = Table(
    "rejected",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _domain(),
    Column("raw_hash", String(64), nullable=False),
    Column("raw", LargeBinary, nullable=False),  # the input exactly as received
    Column("origin", Text, nullable=False),  # file path (or 'api', 'stream') ...
    Column("location", String(64), nullable=False),  # ... and the line or row in it
    Column("field", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),  # open | replayed
    Column("times_seen", Integer, nullable=False),
    _at("first_seen_at"),
    _at("last_seen_at"),
    UniqueConstraint("domain", "raw_hash"),
    Index(None, "domain", "status"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _domain(),
    _at("at"),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("details", JSON, nullable=False),
    Index(None, "domain", "action"),
)

# Embeddings of mentions, per encoder, kept until the mention's content changes (issue 4).
embeddings = Table(
    "embeddings",
    metadata,
    Column("mention_pk", Id, ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True),
    Column("encoder", String(64), primary_key=True),
    _domain(),
    Column("content_hash", String(64), nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float16, L2-normalized
    _at("updated_at"),
    Index(None, "domain", "encoder"),
    Index(None, "domain", "encoder", "updated_at"),  # what a running process's index has to catch up on
)

# Candidate pairs from blocking, mention_a < mention_b, with the blockers that proposed them.
candidate_pairs = Table(
    "candidate_pairs",
    metadata,
    Column("mention_a", Id, ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True),
    Column("mention_b", Id, ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True),
    _domain(),
    Column("blockers", Integer, nullable=False),  # bit set, see features.blocking.Blocker
    Column("cosine", Float),
    _at("created_at"),
    Index(None, "domain"),
    Index(None, "mention_b"),
)

# Facts about the store itself, e.g. its id (models are registered per store and domain).
store_info = Table(
    "store_info",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Files `upt export` wrote: an erasure writes them again, so they no longer hold the person.
exports = Table(
    "exports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _domain(),
    Column("kind", String(16), nullable=False),  # mentions | profiles
    Column("path", String(1000), nullable=False),
    _at("written_at"),
    UniqueConstraint("domain", "kind", "path"),
)

# Deterministic blocking keys of every mention, kept at ingest, so that the candidates of one
# mention are index probes. `kind` is the blocker's bit (`features.blocking.Blocker`) or a string
# pass block (`features.blocking.keys.STRING_BLOCKS`); those rows also hold the name the string
# pass compares, ordered by the index as the batch sorts it (byte order: collation C), then by
# the mention's order key (`features.blocking.order`: ties follow the mention key, not arrival).
NameText = String(401).with_variant(String(401, collation="C"), "postgresql")
blocking_keys = Table(
    "blocking_keys",
    metadata,
    Column("mention_pk", Id, ForeignKey("mentions.id", ondelete="CASCADE"), nullable=False),
    _domain(),
    Column("kind", Integer, nullable=False),
    Column("key", String(400).with_variant(String(400, collation="C"), "postgresql"), nullable=False),
    Column("name", NameText),
    Column("order_key", BigInteger),
    Index(None, "domain", "kind", "key", "name", "order_key", "mention_pk"),
    Index(None, "mention_pk"),
)

# Mentions an online arrival changed the decisions of without touching them (an email it made
# shared, a block it made too large, a home it moved, a pick it pushed out), waiting to be
# resolved again (`pipelines.online.OnlineResolver.revisit_pending`); a batch `upt resolve`
# decides them as a full run would and takes them off. A mention can wait more than once.
revisit_queue = Table(
    "revisit_queue",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _domain(),
    Column("mention_pk", Id, ForeignKey("mentions.id", ondelete="CASCADE"), nullable=False),
    _at("queued_at"),
    Index(None, "domain", "id"),
    Index(None, "mention_pk"),
)
