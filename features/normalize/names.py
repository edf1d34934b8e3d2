"""Person names: splitting full names (PNR `LAST/FIRST MR`, `Last, First`, `First Last`),
titles and suffixes, folding, compound surnames and nicknames."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import jellyfish
import pandas as pd

from features.normalize.text import clean_whitespace, fold

PREFIXES = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "mstr",
        "master",
        "mx",
        "dr",
        "prof",
        "sir",
        "dame",
        "lady",
        "lord",
        "madam",
        "mme",
        "mlle",
        "mm",
        "sra",
        "srta",
        "sr",
        "don",
        "dona",
        "doña",
        "herr",
        "frau",
        "rev",
        "fr",
        "capt",
        "col",
    ]
)
SUFFIXES = frozenset(["jr", "jnr", "sr", "snr", "ii", "iii", "iv", "v", "phd", "md", "esq", "dds", "mba"])
# Words that begin a compound surname when they follow the given name(s): 'Ludwig van Beethoven'.
SURNAME_PARTICLES = frozenset(
    [
        "de",
        "del",
        "della",
        "dei",
        "degli",
        "di",
        "da",
        "das",
        "do",
        "dos",
        "du",
        "la",
        "le",
        "van",
        "von",
        "der",
        "den",
        "ter",
        "ten",
        "bin",
        "ibn",
        "al",
        "el",
        "st",
        "saint",
    ]
)


@dataclass(frozen=True)
class NameParts:
    """A name split into its parts, each as written (whitespace cleaned), or None."""

    prefix: str | None = None
    first: str | None = None
    middle: str | None = None
    last: str | None = None
    suffix: str | None = None


def _key(token: str) -> str:
    return fold(token).replace(" ", "")


def _join(tokens: list[str]) -> str | None:
    return " ".join(tokens) or None


def _strip_titles(tokens: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Split leading titles and trailing suffixes (or trailing PNR titles) off a token list."""
    prefixes: list[str] = []
    suffixes: list[str] = []
    while len(tokens) > 1 and _key(tokens[0]) in PREFIXES:
        prefixes.append(tokens.pop(0))
    while len(tokens) > 1 and _key(tokens[-1]) in SUFFIXES:
        suffixes.insert(0, tokens.pop())
    return prefixes, tokens, suffixes


def _split_given(tokens: list[str]) -> tuple[str | None, str | None]:
    return (tokens[0] if tokens else None), _join(tokens[1:])


def _split_given_pnr(tokens: list[str]) -> tuple[list[str], list[str]]:
    """In PNR names the title trails the given names: 'ANA MARIA MRS'."""
    titles: list[str] = []
    while len(tokens) > 1 and _key(tokens[-1]) in PREFIXES:
        titles.insert(0, tokens.pop())
    return tokens, titles


@lru_cache(maxsize=16_384)
def split_full_name(full_name: str) -> NameParts:
    """Split a full name into prefix, first, middle, last and suffix.

    Handles the airline form `GARCIA LOPEZ/ANA MARIA MRS` (all given names kept as the first
    name, as airlines store them), `Garcia, Ana` and `Mrs Ana Garcia Jr`; surname particles
    keep compound surnames whole (`Ludwig van Beethoven` -> last `van Beethoven`).
    """
    text = clean_whitespace(full_name).strip(" ,;")
    if not text:
        return NameParts()
    if "/" in text:
        last, _, given = (part.strip() for part in text.partition("/"))
        given_tokens, titles = _split_given_pnr(given.split())
        prefixes, given_tokens, suffixes = _strip_titles(given_tokens)
        return NameParts(
            prefix=_join(prefixes + titles),
            first=_join(given_tokens),
            middle=None,
            last=last or None,
            suffix=_join(suffixes),
        )
    if "," in text:
        before, _, after = (part.strip() for part in text.partition(","))
        after_tokens = after.split()
        if after_tokens and all(_key(t) in SUFFIXES for t in after_tokens):
            inner = split_full_name(before)
            return NameParts(inner.prefix, inner.first, inner.middle, inner.last, _join(after_tokens))
        given_tokens, titles = _split_given_pnr(after_tokens)
        prefixes, given_tokens, suffixes = _strip_titles(given_tokens)
        first, middle = _split_given(given_tokens)
        return NameParts(_join(prefixes + titles), first, middle, before or None, _join(suffixes))
    prefixes, tokens, suffixes = _strip_titles(text.split())
    if len(tokens) == 1:
        return NameParts(_join(prefixes), None, None, tokens[0], _join(suffixes))
    surname_start = len(tokens) - 1
    for i in range(1, len(tokens) - 1):
        if _key(tokens[i]) in SURNAME_PARTICLES:
            surname_start = i
            break
    first, middle = _split_given(tokens[:surname_start])
    return NameParts(_join(prefixes), first, middle, _join(tokens[surname_start:]), _join(suffixes))


def name_parts(
    first: str | None = None,
    middle: str | None = None,
    last: str | None = None,
    full_name: str | None = None,
    prefix: str | None = None,
    suffix: str | None = None,
) -> NameParts:
    """The best split of a person's name from whatever fields the source filled in.

    Split fields win; a full name fills what they leave empty. A first-name field that still
    carries a title or the PNR form (`ANA MRS`) is cleaned the same way.
    """
    parsed = split_full_name(full_name) if full_name else NameParts()
    if not (first or last):
        parts = parsed
    else:
        given_tokens, titles = _split_given_pnr(clean_whitespace(first or "").split())
        lead, given_tokens, _ = _strip_titles(given_tokens)
        last_text = clean_whitespace(last or "") or None
        parts = NameParts(
            prefix=_join(lead + titles) or parsed.prefix,
            first=_join(given_tokens) or parsed.first,
            middle=parsed.middle if not middle else clean_whitespace(middle),
            last=last_text or parsed.last,
            suffix=parsed.suffix,
        )
    return NameParts(
        prefix=clean_whitespace(prefix) if prefix else parts.prefix,
        first=parts.first,
        middle=clean_whitespace(middle) if middle else parts.middle,
        last=parts.last,
        suffix=clean_whitespace(suffix) if suffix else parts.suffix,
    )


@lru_cache(maxsize=1)
def _nickname_table() -> dict[str, frozenset[str]]:
    table: dict[str, set[str]] = {}
    text = resources.files("features").joinpath("data/nicknames.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        canonical, _, nicks = line.partition(":")
        canonical = fold(canonical)
        for name in [canonical, *(fold(n) for n in nicks.split())]:
            table.setdefault(name, set()).add(canonical)
    return {name: frozenset(c) for name, c in table.items()}


@lru_cache(maxsize=16_384)
def canonical_first_names(first: str | None) -> frozenset[str]:
    """The canonical given names a first name may stand for: 'Bob' -> {'robert'}, 'Alex' ->
    {'alexander', 'alexandra', 'alejandro'}; a name not in the table stands for itself."""
    token = fold(first).split(" ")[0] if first else ""
    if not token:
        return frozenset()
    return _nickname_table().get(token, frozenset({token}))


@lru_cache(maxsize=1)
def _given_names() -> frozenset[str]:
    text = resources.files("features").joinpath("data/given_names.txt").read_text(encoding="utf-8")
    words = (w for line in text.splitlines() for w in line.split("#", 1)[0].split())
    return frozenset(fold(w) for w in words) | frozenset(_nickname_table())


def is_known_first_name(token: str) -> bool:
    """Whether a folded token is a common given name (`data/given_names.txt`) or a spelling of
    the nickname table."""
    return token in _given_names()


def phonetic_of(name: str) -> str:
    """Metaphone of the last token of a name ('garcia lopez' -> metaphone('lopez')); "" for ""."""
    return jellyfish.metaphone(name.split()[-1]) if name.strip() else ""


def phonetic(names: pd.Series) -> pd.Series:
    """`phonetic_of` each name (computed once per distinct name)."""
    codes = {n: phonetic_of(n) if n else "" for n in names.unique()}
    return names.map(codes).astype(object)  # text even when there are no names
