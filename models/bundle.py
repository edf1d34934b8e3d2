"""The registered model: feature configuration + classifier + thresholds, as one MLflow pyfunc.

The bundle is JSON stamped with a format version (`bundle.json` among the model's artifacts);
`models/pyfunc_entry.py` is the models-from-code file MLflow runs to load it. Serving and batch
load one thing, by alias: `load_bundle("models:/upt-matcher@champion")`.
"""

from __future__ import annotations

import json
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.classifiers import Matcher, load_model
from profiles.errors import NotReady

BUNDLE_FORMAT = 1
REGISTERED_NAME = "upt-matcher"

# MLflow runs a models-from-code file with a stand-in `dbutils` module put into sys.modules and
# restored afterwards; two loads at once restore each other's stand-in and leave it there for good
# (hypothesis, among others, then trips over a module whose every attribute is a mock). Warning
# filters are process-wide too. So a process loads one model at a time.
_LOAD_LOCK = threading.Lock()


@dataclass
class Thresholds:
    merge: float  # at or above: merge automatically
    review: float  # between review and merge: a person decides

    def decide(self, p: np.ndarray) -> np.ndarray:
        return np.where(p >= self.merge, "merge", np.where(p >= self.review, "review", "no_match"))


@dataclass
class Bundle:
    model: Matcher
    thresholds: Thresholds
    feature_config: dict[str, Any] = field(default_factory=dict)
    trained_on: dict[str, Any] = field(default_factory=dict)

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """probability and decision for each pair's comparison vector."""
        p = self.model.predict_proba(features)
        return pd.DataFrame({"probability": p, "decision": self.thresholds.decide(p)})

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": BUNDLE_FORMAT,
            "model": self.model.to_dict(),
            "thresholds": {"merge": self.thresholds.merge, "review": self.thresholds.review},
            "feature_config": self.feature_config,
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bundle:
        if data.get("format_version") != BUNDLE_FORMAT:
            raise NotReady(
                f"bundle format {data.get('format_version')} is not {BUNDLE_FORMAT}; retrain the model"
            )
        t = data["thresholds"]
        return cls(
            load_model(data["model"]),
            Thresholds(float(t["merge"]), float(t["review"])),
            data.get("feature_config", {}),
            data.get("trained_on", {}),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Bundle:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def load_bundle(model_uri: str) -> Bundle:
    """The bundle of a registered model, e.g. `models:/upt-matcher@champion`."""
    import mlflow

    # suppress_warnings skips MLflow's comparison of the model's pip requirements with every
    # installed distribution (about 1 s per load); the bundle checks its own format version.
    with _LOAD_LOCK, warnings.catch_warnings():
        # MLflow asks for type hints on the models-from-code predict at every load (its filter in
        # pyfunc_entry comes too late: the check runs as MLflow reads the file)
        warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method")
        pyfunc = mlflow.pyfunc.load_model(model_uri, suppress_warnings=True)
    bundle: Bundle = pyfunc.unwrap_python_model().bundle
    return bundle
