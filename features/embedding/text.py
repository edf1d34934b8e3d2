"""Record-to-text: what a mention looks like to the sentence encoder.

Several templates are kept so the choice can be measured (`make bench`, part `blocking`), not
guessed; `DEFAULT_TEMPLATE` is the one the measurements chose.
"""

from __future__ import annotations

import pandas as pd

from profiles.errors import ConfigError

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
        raise ConfigError(f"text_template: unknown template {template!r}; choose from {sorted(TEMPLATES)}")
    columns = []
    for column in TEMPLATES[template]:
        values = frame[column].tolist()
        columns.append([_text(v) for v in values])
    if not columns:
        return [""] * len(frame)
    # split/join squeezes the spaces that empty fields and multi-word values leave
    return [" ".join(" ".join(row).split()) for row in zip(*columns, strict=True)]


def _text(value: object) -> str:
    """A field as text: a list by its first value; missing (None, NaN, empty) as ""."""
    if isinstance(value, tuple | list):
        value = value[0] if value else ""
    if value is None or value != value:  # NaN is the one value unequal to itself
        return ""
    return str(value)
