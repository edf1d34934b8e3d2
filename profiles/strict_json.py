"""Strict decoding of one JSON text from an untrusted source (a line of a file, a request body,
a stream entry).

Python's `json.loads` accepts what other systems cannot store or read back, and fails on some
inputs with errors other than `JSONDecodeError`. Every such class of input is refused here with
a `ValidationFailed` that says why, so that one hostile line is rejected alone and never aborts
the file it came in:

- nesting deeper than `MAX_DEPTH` (deep enough input makes `json.loads` raise `RecursionError`);
- integers outside the signed 64-bit range, floats that overflow to infinity, number literals
  longer than `MAX_NUMBER_CHARS` (CPython refuses to convert integers of over 4,300 digits with a
  `ValueError`), and the non-standard `NaN`, `Infinity` and `-Infinity`;
- duplicate keys in one object (`json.loads` keeps the last one silently: what the sender meant
  is unknowable);
- keys longer than `MAX_KEY_CHARS`;
- lone UTF-16 surrogates (`"\\ud800"`) and NUL characters (`"\\u0000"`) in keys or strings: no
  UTF-8 encoder, nor PostgreSQL's text and JSON types, accepts them;
- a leading byte-order mark (a JSON text never starts with one; RFC 8259 section 8.1).
"""

from __future__ import annotations

import json
import math
from typing import Any

from profiles.errors import ValidationFailed

MAX_DEPTH = 64
MAX_KEY_CHARS = 1024
MAX_NUMBER_CHARS = 64
INT64 = 2**63
BOM = "\ufeff"


class _Refused(ValueError):
    """Raised inside the decoder's hooks; turned into ValidationFailed by `loads_strict`."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if len(key) > MAX_KEY_CHARS:
            raise _Refused(f"has a key of {len(key):,} characters (at most {MAX_KEY_CHARS:,})")
        if key in out:
            raise _Refused(f"has the key {_short(key)} twice in one object")
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise _Refused(f"holds {name}, which is not a JSON number")


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"holds a number of {len(text):,} characters")
    value = int(text)
    if not -INT64 <= value < INT64:
        raise _Refused(f"holds the integer {_short(text)}, outside the 64-bit range")
    return value


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"holds a number of {len(text):,} characters")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"holds the number {_short(text)}, too large for a double")
    return value


def _short(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _bad_character(text: str) -> str | None:
    """Why a decoded string cannot be stored, or None."""
    if "\x00" in text:
        return "holds a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone UTF-16 surrogate (such as \\ud800), which is not a character"
    return None


def _walk(value: Any, check_text: bool) -> None:
    """Depth (iteratively: the check must not recurse itself) and, when asked, the characters of
    every key and string."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise _Refused(f"is nested deeper than {MAX_DEPTH} levels")
            for key, child in item.items():
                if check_text and (why := _bad_character(key)):
                    raise _Refused(f"{why} in a key")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise _Refused(f"is nested deeper than {MAX_DEPTH} levels")
            stack.extend((child, depth + 1) for child in item)
        elif check_text and isinstance(item, str) and (why := _bad_character(item)):
            raise _Refused(why)


def loads_strict(text: str, field: str = "line") -> Any:
    """The JSON value of `text`, or ValidationFailed(field, why) for anything another system could
    not store or read back the same (see the module docstring)."""
    if text.startswith(BOM):
        raise ValidationFailed(
            field, "starts with a byte-order mark (U+FEFF); save the data as UTF-8 without one"
        )
    try:
        value = json.loads(
            text, object_pairs_hook=_object, parse_constant=_constant, parse_int=_int, parse_float=_float
        )
    except _Refused as exc:
        raise ValidationFailed(field, str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ValidationFailed(field, f"is not JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise ValidationFailed(field, f"is nested deeper than {MAX_DEPTH} levels") from None
    # Only escapes can produce NUL or surrogates (raw ones are refused by the UTF-8 decoding and
    # the JSON grammar), and only this many brackets can nest this deep: most lines skip the walk.
    check_text = "\\u" in text
    if check_text or text.count("[") + text.count("{") > MAX_DEPTH:
        try:
            _walk(value, check_text)
        except _Refused as exc:
            raise ValidationFailed(field, str(exc)) from None
    return value
