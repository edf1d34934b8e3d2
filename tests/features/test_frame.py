"""The mention frame is built one way for an online request's few rows (json.loads) and another
for a domain's many (Arrow's JSON reader): the two must give the same frame."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import frame as mention_frame
from features.frame import LISTS, SCALARS, frame_from_normalized

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
normalized = st.fixed_dictionaries(
    {},
    optional={
        **{name: st.one_of(st.none(), texts) for name in SCALARS},
        **{name: st.one_of(st.none(), st.lists(texts, max_size=3)) for name in LISTS},
    },
)


@settings(max_examples=60, deadline=None)
@given(people=st.lists(normalized, min_size=1, max_size=12))
def test_json_loads_and_arrow_build_the_same_frame(people: list[dict[str, Any]]) -> None:
    rows = [(i, f"crm/p/{i}#record", "crm", i, f"h{i}", json.dumps(p)) for i, p in enumerate(people, start=1)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mention_frame, "ARROW_FROM", 1)
        through_arrow = frame_from_normalized(rows)
        patch.setattr(mention_frame, "ARROW_FROM", 10**9)
        through_json = frame_from_normalized(rows)
    pd.testing.assert_frame_equal(through_arrow, through_json)
