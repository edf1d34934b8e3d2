"""Email addresses: surrounding noise, case, `+tags`, dots in gmail-style local parts.

Invalid addresses are flagged, never dropped: the cleaned text is kept with `valid=False`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Providers that ignore dots in the local part (and, like most, everything after '+').
DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}
_ANGLE = re.compile(r"<([^<>]*)>")
_LOCAL = re.compile(r"^[a-z0-9!#$%&'*/=?^_`{|}~+-]+(\.[a-z0-9!#$%&'*/=?^_`{|}~+-]+)*$")
_DOMAIN = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_NOISE = " \t\r\n\"'<>()[]{},;:."


@dataclass(frozen=True)
class NormalizedEmail:
    value: str
    valid: bool

    @property
    def domain(self) -> str:
        return self.value.rpartition("@")[2]

    @property
    def local(self) -> str:
        return self.value.rpartition("@")[0]


@lru_cache(maxsize=16_384)
def normalize_email(raw: str) -> NormalizedEmail:
    """Canonical form of an email address for matching.

    'Ana.Garcia+hotels@Example.com' -> 'ana.garcia@example.com';
    'mailto:<J.Doe@GoogleMail.com>' -> 'jdoe@gmail.com'.
    """
    text = raw.strip()
    match = _ANGLE.search(text)
    if match:
        text = match.group(1)
    text = text.strip(_NOISE).lower()
    if text.startswith("mailto:"):
        text = text[len("mailto:") :].strip(_NOISE)
    text = "".join(text.split())
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return NormalizedEmail(text, False)
    domain = DOMAIN_ALIASES.get(domain.strip("."), domain.strip("."))
    if "+" in local[1:]:
        local = local[: local.index("+", 1)]
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "")
    value = f"{local}@{domain}"
    valid = bool(_LOCAL.match(local)) and bool(_DOMAIN.match(domain)) and len(value) <= 254
    return NormalizedEmail(value, valid)
