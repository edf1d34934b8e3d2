"""Record-to-text: what a mention looks like to the sentence encoder.

Several templates are kept so the choice can be measured (`make bench`, part `blocking`), not
guessed; `DEFAULT_TEMPLATE` is the one the measurements chose.
"""

from __future__ import annotations

import pandas as pd

TEMPLATES = {
    "name": ("first_name", "last_name"),
    "name_dob": ("first_name", "last_name", "date_of_birth"),
    "name_dob_place": ("first_name", "last_name", "date_of_birth", "city", "postal_code"),
    "full": ("first_name", "last_name", "date_of_birth", "emails", "phones", "street", "city", "postal_code"),
}
DEFAULT_TEMPLATE = "full"


def record_texts(frame: pd.DataFrame, template: str = DEFAULT_TEMPLATE) -> list[str]:
    """One text per mention row: the template's fields, lists reduced to their first value."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown text template {template!r}; choose from {sorted(TEMPLATES)}")
    parts = []
    for column in TEMPLATES[template]:
        values = frame[column]
        if values.dtype == object and len(values) and isinstance(values.iloc[0], tuple):
            values = values.map(lambda t: t[0] if t else "")
        parts.append(values.fillna("").astype(str))
    if not parts:
        return [""] * len(frame)
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.str.cat(part, sep=" ")
    return joined.str.split().str.join(" ").tolist()
