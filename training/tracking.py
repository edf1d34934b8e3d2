"""MLflow set-up: where runs and the registry live, and the registered model of a store+domain.

`mlflow_tracking_uri` is a URI (`http://...`, `sqlite:///...`) or a folder; a folder (the default,
`mlruns`) holds a SQLite tracking and registry database (`mlflow.db`) and the artifacts, since
MLflow 3 keeps its plain-file backend only in maintenance mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from profiles.settings import Settings

EXPERIMENT = "upt-matcher"


def tracking_uri(settings: Settings) -> tuple[str, str | None]:
    """(tracking URI, artifact location for a new experiment or None to let the server decide)."""
    uri = settings.mlflow_tracking_uri
    if "://" in uri or uri.startswith("sqlite:"):
        return uri, None
    folder = Path(uri).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


def configure(settings: Settings) -> Any:
    """Point MLflow at the configured store and make sure the experiment exists; returns mlflow."""
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri, artifacts = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts)
    mlflow.set_experiment(EXPERIMENT)
    return mlflow


def registered_name(store_id: str, domain: str) -> str:
    """One model lineage per store and domain: a registry shared by several stores never hands
    one store's champion to another."""
    return f"upt-matcher-{domain}-{store_id[:8]}"
