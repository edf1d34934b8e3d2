"""Small builders shared by the pipeline tests."""

from __future__ import annotations

import json
from typing import Any


def guest(object_id: str, modified_at: str = "2024-01-01T00:00:00Z", **person: Any) -> dict[str, Any]:
    return {
        "object_type": "guest_profile",
        "source": "pms",
        "id": object_id,
        "modified_at": modified_at,
        "data": {"traveller": person or {"first_name": "Ana", "last_name": "Garcia"}},
    }


def lines(*objects: dict[str, Any] | bytes) -> bytes:
    return b"".join((o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n" for o in objects)
