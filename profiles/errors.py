"""The one error tree of UPT.

    UPTError                     code "upt_error"
    ├── ConfigError              code "config_error"      (bad settings or config file)
    ├── ValidationFailed         code "validation_failed"  (input broke the contract; carries field + reason)
    ├── NotFound                 code "not_found"          (an id, key or file that does not exist)
    └── StoreError               code "store_error"        (the database is unreachable or not migrated)

Every message says what went wrong and what to do next. `serving/` maps codes to HTTP statuses.
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


class StoreError(UPTError):
    code = "store_error"
