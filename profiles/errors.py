"""The one error tree of UPT.

    UPTError                     code "upt_error"          (base: an error UPT raises on purpose)
    ├── ConfigError              code "config_error"       (bad settings, config or rules file, a missing extra)
    ├── ValidationFailed         code "validation_failed"  (input broke the contract; carries field + reason)
    ├── NotFound                 code "not_found"          (an id, key, alias or file that does not exist)
    ├── NotReady                 code "not_ready"          (an earlier step is missing: no labels, no model, no pairs)
    ├── Refused                  code "refused"            (a guard said no: a worse model, an unmerge of moved members)
    ├── Conflict                 code "conflict"           (someone else changed the same profiles first; retry)
    └── StoreError               code "store_error"        (the database is unreachable or not migrated)
        └── StoreBusy            code "store_busy"         (the single writer did not free the store in time; retry)

Every message says what went wrong and what to do next. Faces map codes, never classes: the
command line to exit codes (`pipelines.cli.common.EXIT_CODES`), the API to HTTP statuses.
"""

from __future__ import annotations


class UPTError(Exception):
    """Base of every error UPT raises on purpose."""

    code = "upt_error"


class ConfigError(UPTError):
    code = "config_error"


class ValidationFailed(UPTError):
    """Input that breaks the contract: `field` names the place, `reason` says why."""

    code = "validation_failed"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(UPTError):
    code = "not_found"


class NotReady(UPTError):
    """What was asked needs an earlier step first (labels before training, a model before a
    model-based resolve); the message names that step."""

    code = "not_ready"


class Refused(UPTError):
    """A guard declined the operation (a challenger scoring below the champion, an unmerge whose
    members have moved on, an erasure without confirmation); the message says how to override."""

    code = "refused"


class Conflict(UPTError):
    """The profiles an operation read were changed by another writer before it could write."""

    code = "conflict"


class StoreError(UPTError):
    code = "store_error"


class StoreBusy(StoreError):
    """Another writer held the store longer than the configured wait (SQLite has one writer)."""

    code = "store_busy"
