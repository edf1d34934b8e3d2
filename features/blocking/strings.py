"""The string pass: Jaro-Winkler nearest names within blocks, for what embeddings miss.

Typo'd names embed badly; exhaustive Jaro-Winkler finds them, and doing it only within blocks
(birth year, phonetic surname, postal code) keeps it near-linear. Each mention is compared with
the `window` names nearest to it in its block, in the block's order (name, then the mention's
order key, `features.blocking.order`): the whole block when it is no larger, else the `window`
rows centred on the mention (shifted at the block's ends). Its `k` most similar names there, at
least `threshold` alike, become pairs; ties go to the smaller order key. Every part of that is a
property of the mention keys and the stored block, not of the order the mentions arrived in, so
one mention's candidates are computed online exactly as the batch computes them (`top_for_one`),
and a file read in another row order gives the same pairs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from features.blocking.order import order_keys
from features.normalize.names import phonetic

WINDOW = 2000
# Ties among equal scores go to the smaller order key: the score less a tiny multiple of the
# key's rank in the block. Distinct float32 scores above 0.5 differ by at least 2**-25; ranks of
# blocks up to 2**17 rows shift a score by at most 2**-28, and float64 keeps every step apart.
_RANK_STEP = 2.0**-45


def block_columns(frame: pd.DataFrame) -> list[pd.Series]:
    """The three string-pass blocks of every mention: birth year, phonetic surname, postal code."""
    return [frame["date_of_birth"].str[:4], phonetic(frame["last_name"]), frame["postal_code"]]


def pass_names(frame: pd.DataFrame) -> pd.Series:
    """The name the string pass compares: first and last name."""
    return (frame["first_name"] + " " + frame["last_name"]).str.strip()


def window_bounds(position: int, size: int, window: int = WINDOW) -> tuple[int, int]:
    """[start, end) of the rows the mention at `position` of a block of `size` rows is compared with."""
    if size <= window:
        return 0, size
    start = min(max(position - window // 2, 0), size - window)
    return start, start + window


def _scores(names_a: Sequence[str], names_b: Sequence[str]) -> np.ndarray:
    """Jaro-Winkler of every (a, b), computed once per distinct pair of names and spread back
    (a block of travel data repeats its names hundreds of times)."""
    return _Coded.of(names_b).scores(names_a, slice(None))


@dataclass(frozen=True)
class _Coded:
    """The names of a slab, each distinct one scored once: row i's name is `distinct[codes[i]]`
    (a slab of four thousand rows holds far fewer names, and one lookup scores it many times)."""

    names: list[str]
    distinct: list[str]
    codes: np.ndarray

    @classmethod
    def of(cls, names: Sequence[str]) -> _Coded:
        position: dict[str, int] = {}
        codes = np.fromiter((position.setdefault(n, len(position)) for n in names), np.intp, len(names))
        return cls(list(names), list(position), codes)

    def scores(self, queries: Sequence[str], columns: np.ndarray | slice) -> np.ndarray:
        """Jaro-Winkler of each query name with the names of the slab rows `columns`."""
        position: dict[str, int] = {}
        rows = np.fromiter((position.setdefault(n, len(position)) for n in queries), np.intp, len(queries))
        distinct = process.cdist(
            list(position),
            self.distinct,
            scorer=JaroWinkler.normalized_similarity,
            dtype=np.float32,
            workers=1,
        )
        return distinct[np.ix_(rows, self.codes[columns])]


def _top(
    scores: np.ndarray,
    ranks: np.ndarray,
    k: int,
    threshold: float,
    allowed: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each row's `k` best columns by (score, smaller rank) among those at least
    `threshold` alike and, with `allowed`, those it accepts (a mask of the (rows, columns) given).

    Taking the best `k` of the columns that reach the threshold is taking the best `k` of all
    and dropping those under it: the rank term is far below a float32 step. Only the few
    entries over the threshold are ranked, never the whole matrix."""
    rows, cols = np.nonzero(scores >= threshold)
    if allowed is not None:
        keep = allowed(rows, cols)
        rows, cols = rows[keep], cols[keep]
    if k <= 0 or not len(rows):
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    key = scores[rows, cols].astype(np.float64) - ranks[cols] * _RANK_STEP
    order = np.lexsort((-key, rows))  # by row, then best first
    rows, cols = rows[order], cols[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    within_row = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    first_k = within_row < k
    return rows[first_k], cols[first_k]


def _in_window(
    first: int, lo: int, starts: np.ndarray, window: int, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Which (row, column) entries of a tile (rows from `first`, columns from `lo`) lie in the
    row's window (from its `starts` entry, `window` wide) and are not the row itself."""
    column = lo + cols
    return (column >= starts[rows]) & (column < starts[rows] + window) & (column != first + rows)


def _ranks(orders: np.ndarray, pks: np.ndarray) -> np.ndarray:
    """Each row's rank by (order key, mention id), as float64 for the tie term."""
    return np.argsort(np.lexsort((pks, orders)), kind="stable").astype(np.float64)


def _block_pairs(
    pks: np.ndarray, orders: np.ndarray, names: list[str], k: int, threshold: float, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a < b) of one block, its rows sorted by (name, order key, mention id)."""
    n = len(pks)
    ranks = _ranks(orders, pks)
    tile = n if n <= window else window // 2
    found_a, found_b = [], []
    for first in range(0, n, tile):
        last = min(first + tile, n)
        starts = np.array([window_bounds(i, n, window)[0] for i in range(first, last)])
        lo, hi = int(starts[0]), int(min(starts[-1] + window, n))
        scores = _scores(names[first:last], names[lo:hi])
        r, c = _top(scores, ranks[lo:hi], k, threshold, partial(_in_window, first, lo, starts, window))
        a, b = pks[first + r], pks[lo + c]
        found_a.append(np.minimum(a, b))
        found_b.append(np.maximum(a, b))
    return np.concatenate(found_a), np.concatenate(found_b)


def sorted_blocks(frame: pd.DataFrame) -> list[pd.DataFrame]:
    """Per block kind, the (pk, order, name, block) rows of mentions that have a name and a block
    value, sorted as the string pass reads them: by block, name, order key, then mention id."""
    names = pass_names(frame)
    usable = names != ""
    orders = order_keys(frame["mention_key"])
    out = []
    for block in block_columns(frame):
        table = pd.DataFrame(
            {"pk": frame["mention_pk"].to_numpy(np.int64), "order": orders, "name": names, "block": block}
        )
        table = table[usable & (block != "")]
        out.append(table.sort_values(["block", "name", "order", "pk"], kind="stable"))
    return out


def string_pairs(
    frame: pd.DataFrame, k: int = 5, threshold: float = 0.88, window: int = WINDOW
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose names are among each other's `k` most Jaro-Winkler-similar in a block window."""
    groups: list[tuple[np.ndarray, np.ndarray, list[str]]] = []
    for table in sorted_blocks(frame):
        for _, group in table.groupby("block", sort=False):
            if len(group) >= 2:
                groups.append(
                    (
                        group["pk"].to_numpy(np.int64),
                        group["order"].to_numpy(np.int64),
                        group["name"].tolist(),
                    )
                )
    if not groups:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # One block per thread: rapidfuzz and numpy's partition release the GIL.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        found = list(pool.map(lambda g: _block_pairs(g[0], g[1], g[2], k, threshold, window), groups))
    return np.concatenate([a for a, _ in found]), np.concatenate([b for _, b in found])


def top_for_one(
    pk: int,
    order: int,
    name: str,
    window_pks: Sequence[int],
    window_orders: Sequence[int],
    window_names: Sequence[str],
    k: int,
    threshold: float,
) -> np.ndarray:
    """The string-pass candidates of one mention (`pk`, its `order` key, `name`) among the other
    rows of its window (any order), as the batch pass finds them: the mention ids of its `k` most
    similar names at least `threshold` alike, ties to the smaller order key."""
    pks = np.asarray(window_pks, np.int64)
    if not len(pks):
        return np.zeros(0, np.int64)
    orders = np.append(np.asarray(window_orders, np.int64), order)
    ranks = _ranks(orders, np.append(pks, pk))[:-1]
    # one name against about two thousand: scoring each is cheaper than finding the distinct ones
    scores = process.cdist(
        [name], list(window_names), scorer=JaroWinkler.normalized_similarity, dtype=np.float32, workers=1
    )
    _, cols = _top(scores, ranks, k, threshold)
    return pks[cols]


def _tops_in_slab(
    names: _Coded,
    ranks: np.ndarray,
    rows: np.ndarray,
    bounds: list[tuple[int, int]],
    k: int,
    threshold: float,
    columns: np.ndarray | None = None,
    chunk: int = 256,
) -> list[set[int]]:
    """Each of `rows`' `k` best slab positions within its window (`bounds`: positions into
    `columns`, the slab's positions to compare with; default all of `names`), itself excluded,
    as `_top` ranks them (score, then the smaller rank; those under `threshold` out).

    Rows of one name and one window share their scores: each such group is ranked once, for
    `k + 1` (one of them may be the row itself), by a partial selection, not `_top`'s sort of
    every entry over the threshold (a crowd of one name puts hundreds of rows by thousands of
    equal scores over it)."""
    columns = np.arange(len(names.names)) if columns is None else columns
    if not len(columns) or k <= 0:
        return [set() for _ in range(len(rows))]
    groups: dict[tuple[str, int, int], list[int]] = {}
    for i, (row, (start, end)) in enumerate(zip(rows.tolist(), bounds, strict=True)):
        groups.setdefault((names.names[row], start, end), []).append(i)
    keys = list(groups)
    out: list[set[int]] = [set() for _ in range(len(rows))]
    positions = np.arange(len(columns))
    for first in range(0, len(keys), chunk):
        part = keys[first : first + chunk]
        scores = names.scores([name for name, _, _ in part], columns)
        starts = np.array([start for _, start, _ in part], np.intp)[:, None]
        ends = np.array([end for _, _, end in part], np.intp)[:, None]
        allowed = (positions >= starts) & (positions < ends) & (scores >= threshold)
        key = np.where(allowed, scores.astype(np.float64) - ranks[columns] * _RANK_STEP, -np.inf)
        take = min(k + 1, key.shape[1])
        best = np.argpartition(-key, take - 1, axis=1)[:, :take]
        order = np.argsort(-np.take_along_axis(key, best, axis=1), axis=1, kind="stable")
        best = np.take_along_axis(best, order, axis=1)
        live = np.take_along_axis(key, best, axis=1) > -np.inf
        for group, cols, oks in zip(part, best, live, strict=True):
            ranked = [int(columns[c]) for c, ok in zip(cols.tolist(), oks.tolist(), strict=True) if ok]
            for i in groups[group]:
                out[i] = set([c for c in ranked if c != int(rows[i])][:k])
    return out


def reverse_for_one(
    position: int,
    pks: Sequence[int],
    orders: Sequence[int],
    names: Sequence[str],
    k: int,
    threshold: float,
    window: int = WINDOW,
    pushes: bool = True,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The other side of one mention's string-pass pairs in one block: of a slab of the block
    (rows in the block's order, the mention at `position`, up to `window` rows on each side of
    it: the whole block where a side holds fewer), the mentions whose own `k` most similar (in
    their own window, the mention among the rows) hold it; and the pairs (a < b) it takes out of
    the batch's: a row it enters drops its last pick, which that pick does not hold in turn.

    A row's window reaches at most `window // 2` beyond it, so the rows whose windows hold the
    mention lie in its own window, and their windows in the slab; a window the slab cuts (a
    dropped pick's, far from the mention) counts as keeping the pair. Without `pushes` (a mention
    that is only asked about, never stored), the pairs taken out are not looked for."""
    pk_array = np.asarray(pks, np.int64)
    n = len(pk_array)
    ranks = _ranks(np.asarray(orders, np.int64), pk_array)
    coded = _Coded.of(names)

    all_starts, all_ends = _windows_of(n, window)

    def bounds_of(row: int) -> tuple[int, int]:
        return int(all_starts[row]), int(all_ends[row])

    holds = (all_starts <= position) & (position < all_ends)
    holds[position] = False
    near = np.flatnonzero(holds).tolist()
    if not near:
        return np.zeros(0, np.int64), []
    near_scores = coded.scores([coded.names[position]], np.array(near, np.intp))[0]
    near = [r for r, s in zip(near, near_scores.tolist(), strict=True) if s >= threshold]
    if not near:
        return np.zeros(0, np.int64), []
    takers = _takers(position, near, coded, ranks, all_starts, all_ends, k)
    if not takers or not pushes:
        return pk_array[takers], []
    rows = np.array(takers, np.intp)
    with_it = _tops_in_slab(coded, ranks, rows, [bounds_of(r) for r in takers], k, threshold)
    # the takers' picks in the block without the mention (their windows shift by a row where the
    # block is longer than a window)
    others = np.flatnonzero(np.arange(n) != position)
    fewer_starts, fewer_ends = _windows_of(n - 1, window)
    shifted = rows - (rows > position)
    before_bounds = [(int(fewer_starts[r]), int(fewer_ends[r])) for r in shifted.tolist()]
    without = _tops_in_slab(coded, ranks, rows, before_bounds, k, threshold, columns=others)
    pushed = {(r, y) for r, before, now in zip(takers, without, with_it, strict=True) for y in before - now}
    lost: list[tuple[int, int]] = []
    if pushed:
        picks = [y for y in sorted({y for _, y in pushed}) if not _cut(bounds_of(y), position, n, window)]
        tops = (
            []
            if not picks
            else _tops_in_slab(
                coded, ranks, np.array(picks, np.intp), [bounds_of(y) for y in picks], k, threshold
            )
        )
        their = dict(zip(picks, tops, strict=True))
        for r, y in sorted(pushed):
            if y in their and r not in their[y]:
                a, b = int(pk_array[r]), int(pk_array[y])
                lost.append((min(a, b), max(a, b)))
    return pk_array[takers], sorted(set(lost))


def _takers(
    position: int,
    near: list[int],
    names: _Coded,
    ranks: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    k: int,
    chunk: int = 64,
) -> list[int]:
    """Those of the `near` rows (at least the threshold alike to the mention at `position`, their
    windows holding it) that rank it among their `k` best: fewer than `k` other rows of their
    window outrank it. Counted, not ranked: per distinct name, which rows of the span of its rows'
    windows outrank the mention, and a running sum of those gives every row's count from its
    window's two ends (a block of common names holds hundreds of rows alike to an arrival, each
    with its own window of 2,000; ranking each was most of a lookup)."""
    by_name: dict[str, list[int]] = {}
    for row in near:
        by_name.setdefault(names.names[row], []).append(row)
    distinct = list(by_name)
    out: list[int] = []
    for first in range(0, len(distinct), chunk):
        part = distinct[first : first + chunk]
        rows = np.array([r for name in part for r in by_name[name]], np.intp)
        group = np.repeat(np.arange(len(part)), [len(by_name[name]) for name in part])
        lo, hi = int(starts[rows].min()), int(ends[rows].max())
        key = names.scores(part, slice(lo, hi)).astype(np.float64) - ranks[lo:hi] * _RANK_STEP
        above = key > key[:, position - lo, None]
        counts = np.zeros((len(part), hi - lo + 1), np.int32)
        np.cumsum(above, axis=1, out=counts[:, 1:])
        # the row itself is no rival of its own
        rivals = counts[group, ends[rows] - lo] - counts[group, starts[rows] - lo] - above[group, rows - lo]
        out += rows[rivals < k].tolist()
    return sorted(out)


def _windows_of(n: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Every row's window of a block of `n` rows at once: `window_bounds`' (start, end) arrays."""
    starts = (
        np.clip(np.arange(n) - window // 2, 0, max(n - window, 0)) if n > window else np.zeros(n, np.intp)
    )
    return starts, starts + min(window, n)


def _cut(bounds: tuple[int, int], position: int, n: int, window: int) -> bool:
    """Whether a window may reach past the slab (the slab's edge is not the block's)."""
    start, end = bounds
    return (start == 0 and position >= window) or (end == n and n - 1 - position >= window)
