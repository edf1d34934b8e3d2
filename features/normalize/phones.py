"""Phone numbers to E.164 with `phonenumbers`, in any national or international format."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

_EXTENSION = re.compile(r"(?:ext\.?|x|#)\s*\d+\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class NormalizedPhone:
    e164: str | None  # None when the number cannot be read at all
    valid: bool  # a number phonenumbers knows to be assigned in its country plan


def region_code(value: str | None) -> str | None:
    """An ISO region from a phone's `country_code`: 'ES', 'es', '34', '+34' or '0034'."""
    if not value:
        return None
    text = value.strip().lstrip("+")
    if text.isdigit():
        regions = phonenumbers.region_codes_for_country_code(int(text.lstrip("0") or "0"))
        return regions[0] if regions else None
    text = text.upper()
    return text if text in phonenumbers.SUPPORTED_REGIONS else None


@lru_cache(maxsize=16_384)
def normalize_phone(number: str, region: str | None = None) -> NormalizedPhone:
    """E.164 form of a phone number, reading national numbers in `region`.

    '0034612345678' -> '+34612345678'; ('612 345 678', 'ES') -> '+34612345678'.
    """
    text = _EXTENSION.sub("", number.strip())
    digits = re.sub(r"[^\d+]", "", text)
    if not digits.strip("+"):
        return NormalizedPhone(None, False)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif not digits.startswith("+") and region is None and len(digits) > 10:
        digits = "+" + digits  # a bare international number with its country code
    try:
        parsed = phonenumbers.parse(digits, None if digits.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return NormalizedPhone(None, False)
    if not phonenumbers.is_possible_number(parsed):
        return NormalizedPhone(None, False)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    # E.164 allows 15 digits; and a number that reads differently once written in E.164 (leading
    # zeros that phonenumbers keeps once, then strips as a national prefix) is not one number.
    if len(e164) > 16 or _e164_of(e164) != e164:
        return NormalizedPhone(None, False)
    return NormalizedPhone(e164, phonenumbers.is_valid_number(parsed))


def _e164_of(e164: str) -> str | None:
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return None


# The trailing digits two writings of one number share whatever their country code or trunk
# prefix ('+34 612 345 678' and '612345678' share '12345678'); blocking keys and comparison
# vectors both use this width, so a pair a key proposes also agrees on the feature.
PHONE_SUFFIX_DIGITS = 8


def phone_suffix(number: str, width: int = PHONE_SUFFIX_DIGITS) -> str | None:
    """The last `width` digits of a phone number, or None when it has fewer digits."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return digits[-width:] if len(digits) >= width else None
