"""Candidate blocking: deterministic keys, a string pass and embedding neighbours, united."""

from features.blocking.blockers import Blocker
from features.blocking.candidates import (
    BlockingConfig,
    CandidatePairs,
    block,
    evaluate,
    knn_pairs,
    true_pairs,
    union,
)

__all__ = [
    "Blocker",
    "BlockingConfig",
    "CandidatePairs",
    "block",
    "evaluate",
    "knn_pairs",
    "true_pairs",
    "union",
]
