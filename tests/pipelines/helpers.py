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


def label_with_oracle(store: Any, truth_file: str | Any, budget: int) -> Any:
    """`upt label --oracle TRUTH --budget N` as a function: the simulated labeller answers."""
    from pathlib import Path

    from labeling.oracle import SimulatedOracle
    from pipelines.label import label_pairs

    oracle = SimulatedOracle.from_file(Path(truth_file))
    return label_pairs(
        store,
        lambda row, pairs: oracle.answer(*pairs.keys([row])[0]),
        oracle.labeller,
        oracle.origin,
        budget,
        "uncertainty",
    )
