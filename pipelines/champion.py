"""The champion model of a store and domain: what decides pairs, loaded by registry alias.

`champion()` loads it once (a batch run); `ChampionCache` keeps it in a long-running process (the
API, the stream consumer), checks the alias at most every `refresh_seconds` and swaps in the new
version atomically when it moved, so requests in flight finish on the model they started with.
Scoring goes through the bundle's own classifier (LightGBM's booster or the coefficients), never
a per-call MLflow load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from models.bundle import Bundle, Thresholds, load_bundle
from models.classifiers import Matcher
from profiles.errors import NotFound, NotReady
from profiles.resolution.rules import DEFAULT_RULES
from profiles.settings import Settings
from profiles.store import Store
from training.registry import model_name, resolve_version


def champion(store: Store, settings: Settings) -> tuple[Bundle, str]:
    """The champion bundle of this store and domain (thresholds overridden by settings), or
    NotReady telling what to do."""
    try:
        version = resolve_version(store, settings, "champion")
    except NotFound:
        if settings.merge_threshold is not None and settings.review_threshold is not None:
            # Rules and imported scores only (a user of another matcher may have no model of ours).
            thresholds = Thresholds(
                settings.merge_threshold, min(settings.review_threshold, settings.merge_threshold)
            )
            return rules_only(thresholds), NO_MODEL
        raise NotReady(
            f"no champion model for domain {store.domain!r} of this store: run `upt label` and "
            "`upt train` first (or point UPT_MLFLOW_TRACKING_URI at the registry that has it), or set "
            "UPT_MERGE_THRESHOLD and UPT_REVIEW_THRESHOLD to resolve by rules and imported scores alone"
        ) from None
    bundle = load_bundle(f"models:/{model_name(store)}/{version}")
    bundle.thresholds = effective_thresholds(bundle.thresholds, settings)
    return bundle, version


NO_MODEL = "none"


def rules_only(thresholds: Thresholds) -> Bundle:
    return Bundle(model=cast(Matcher, _NoModel()), thresholds=thresholds)


class _NoModel:
    """Stands in for the model when there is none: every pair scores 0, so only rule levels and
    imported scores can merge or link."""

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(features))


def effective_thresholds(thresholds: Thresholds, settings: Settings) -> Thresholds:
    merge = settings.merge_threshold if settings.merge_threshold is not None else thresholds.merge
    review = settings.review_threshold if settings.review_threshold is not None else thresholds.review
    return Thresholds(merge=merge, review=min(review, merge))


def model_identity(bundle: Bundle, version: str, settings: Settings) -> str:
    """The registry version plus a fingerprint of what decides: the classifier, its thresholds
    (after settings' overrides) and the rules. A version number alone is not enough: another
    registry, or a changed override, can give the same number to different decisions."""
    import hashlib
    import json

    rules = (settings.rules_file or DEFAULT_RULES).read_bytes()
    text = json.dumps(
        {
            "model": bundle.model.to_dict() if version != NO_MODEL else None,
            "thresholds": vars(bundle.thresholds),
        },
        sort_keys=True,
        default=str,
    ).encode()
    return f"{version}:{hashlib.sha256(text + rules).hexdigest()[:12]}"


@dataclass(frozen=True)
class Champion:
    bundle: Bundle
    version: str  # registry version, or NO_MODEL
    identity: str  # `model_identity`: what decides, as one string


class ChampionCache:
    """The champion of one store and domain for a long-running process.

    `get()` returns the loaded champion; at most every `refresh_seconds` it asks the registry
    where the `champion` alias points and, when it moved, loads that version and swaps it in (one
    reference assignment: a caller holds either the old or the new champion, never half of one).
    With `background` (what a server wants: a registry read takes a good part of a second) the
    look happens on a thread of its own and callers keep the champion they have meanwhile. With
    no champion loaded yet, `get()` asks at once, and raises what `champion()` raises (NotReady)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        refresh_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        background: bool = False,
    ) -> None:
        self.store, self.settings, self.refresh_seconds, self.clock = store, settings, refresh_seconds, clock
        self.background = background
        self._refreshing = False
        self._flag = threading.Lock()
        self._current: Champion | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()
        self._client: Any = None
        self._name = ""
        self.loads = 0  # how many times a bundle was loaded (for tests and metrics)

    def get(self) -> Champion:
        current = self._current
        if current is not None and self.clock() - self._checked_at < self.refresh_seconds:
            return current
        if current is not None and self.background:
            with self._flag:
                start, self._refreshing = not self._refreshing, True
            if start:
                threading.Thread(target=self._look_aside, name="upt-champion", daemon=True).start()
            return current
        return self._look()

    def _look_aside(self) -> None:
        try:
            self._look()
        except Exception:  # the registry unreachable or the alias gone: keep serving what we have
            self._checked_at = self.clock()
        finally:
            self._refreshing = False

    def _look(self) -> Champion:
        with self._lock:
            current = self._current
            if current is not None and self.clock() - self._checked_at < self.refresh_seconds:
                return current
            self._checked_at = self.clock()
            version = self._version()
            if current is None or current.version != version:
                bundle, version = champion(self.store, self.settings)
                self.loads += 1
                current = Champion(bundle, version, model_identity(bundle, version, self.settings))
                self._current = current
            return current

    def _version(self) -> str:
        """Where the alias points now: one registry read through a client kept for the process
        (configuring MLflow afresh for each look cost a third of a second)."""
        import mlflow

        if self._client is None:
            from training import tracking

            tracking.configure(self.settings)
            self._client = mlflow.MlflowClient()
            self._name = model_name(self.store)
        try:
            aliases = self._client.get_registered_model(self._name).aliases
        except mlflow.exceptions.MlflowException:
            return NO_MODEL
        return str(aliases["champion"]) if "champion" in aliases else NO_MODEL
