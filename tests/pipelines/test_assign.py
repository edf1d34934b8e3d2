"""What clustering is given by the decisions: a rule's merge is certain, a model's merge is as
strong as its score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.assign import cluster_inputs
from profiles.resolution.clustering import cluster


@pytest.mark.parametrize(("source", "together"), [("rule", True), ("model", False)])
def test_a_rules_merge_joins_what_the_models_low_score_would_not(source: str, together: bool) -> None:
    # two pairs the model is sure of, linked by one pair it scored 0.2 (merged by a rule, or by
    # the model itself at a threshold of 0.15); every other pair between them is no match
    effective = pd.DataFrame(
        {
            "a": [10, 12, 11],
            "b": [11, 13, 12],
            "decision": ["merge", "merge", "merge"],
            "source": ["model", "model", source],
            "score": [0.9, 0.9, 0.2],
        }
    )
    pks = np.array([10, 11, 12, 13])
    inputs = cluster_inputs(effective, np.array([10, 10, 11]), np.array([12, 13, 13]), 4, pks, 0.15)
    labels, _ = cluster(inputs)
    assert (len(set(labels.tolist())) == 1) == together
