"""The model registry of a store and domain: list, show, promote (guarded), roll back.

Promotion compares the candidate with the champion on the same evaluation labels (the current
labels of the domain) and refuses a model whose F1 there is lower, unless forced; who promoted
and when is recorded on the version and in the audit log.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from profiles.errors import NotFound, Refused
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.reads import store_id
from profiles.store.writes import write_audit
from training import tracking
from training.metrics import pair_scores


def _client(settings: Settings) -> Any:
    tracking.configure(settings)
    from mlflow import MlflowClient

    return MlflowClient()


def model_name(store: Store) -> str:
    """The registered model of this store and domain (the store gets its id when first asked)."""
    from profiles.store.decisions import get_info

    with store.reading() as conn:
        known = get_info(conn, "store_id")
    if known is None:
        with store.transaction() as conn:
            known = store_id(conn)
    return tracking.registered_name(known, store.domain)


def list_versions(store: Store, settings: Settings) -> list[dict[str, Any]]:
    """Every registered version with its aliases and evaluation metrics, newest first."""
    import mlflow

    client = _client(settings)
    name = model_name(store)
    try:
        registered = client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        return []
    aliases_of: dict[str, list[str]] = {}
    for alias, version in registered.aliases.items():
        aliases_of.setdefault(str(version), []).append(alias)
    out = []
    for mv in client.search_model_versions(f"name='{name}'"):
        metrics = dict(mlflow.get_run(mv.run_id).data.metrics) if mv.run_id else {}
        out.append(
            {
                "name": name,
                "version": str(mv.version),
                "aliases": sorted(aliases_of.get(str(mv.version), [])),
                "created": dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).isoformat(),
                "precision": metrics.get("precision"),
                "recall": metrics.get("recall"),
                "f1": metrics.get("f1"),
                "labels": metrics.get("labels"),
                "tags": dict(mv.tags),
                "thresholds": {
                    "merge": metrics.get("threshold_merge"),
                    "review": metrics.get("threshold_review"),
                },
            }
        )
    return sorted(out, key=lambda v: int(v["version"]), reverse=True)


def _registered(client: Any, name: str) -> Any:
    """The registered model, or NotFound saying how to make one."""
    import mlflow

    try:
        return client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        raise NotFound(
            f"no model is registered for this store and domain ({name}): label pairs and run `upt train`"
        ) from None


def resolve_version(store: Store, settings: Settings, ref: str) -> str:
    """A version number from a number or an alias (`champion`, `challenger`)."""
    import mlflow

    client = _client(settings)
    name = model_name(store)
    registered = _registered(client, name)
    if ref.isdigit():
        try:
            client.get_model_version(name, ref)
        except mlflow.exceptions.MlflowException:
            raise NotFound(f"{name} has no version {ref} (see `upt models list`)") from None
        return ref
    if ref not in registered.aliases:
        known = ", ".join(sorted(registered.aliases)) or "none"
        raise NotFound(f"{name} has no version with the alias {ref!r} (aliases: {known})")
    return str(registered.aliases[ref])


def evaluate_version(store: Store, settings: Settings, version: str) -> dict[str, float]:
    """A version's precision/recall/F1 on the domain's current labels, at its own merge threshold."""
    from models.bundle import load_bundle
    from training.train import labelled_features

    bundle = load_bundle(f"models:/{model_name(store)}/{version}")
    features, y, _ = labelled_features(store, settings)
    p = bundle.model.predict_proba(features)
    return pair_scores(y, p, bundle.thresholds.merge)


def promote(store: Store, settings: Settings, ref: str, actor: str, force: bool = False) -> dict[str, Any]:
    client = _client(settings)
    name = model_name(store)
    version = resolve_version(store, settings, ref)
    aliases = _registered(client, name).aliases
    champion = str(aliases["champion"]) if "champion" in aliases else None
    result: dict[str, Any] = {"name": name, "version": version, "previous_champion": champion}
    if champion and champion != version:
        mine, theirs = evaluate_version(store, settings, version), evaluate_version(store, settings, champion)
        result.update({"candidate_metrics": mine, "champion_metrics": theirs})
        if mine["f1"] < theirs["f1"] and not force:
            raise Refused(
                f"version {version} scores F1 {mine['f1']:.4f} on the evaluation labels, below the "
                f"champion {champion} ({theirs['f1']:.4f}); use --force to promote it anyway"
            )
        client.set_registered_model_alias(name, "previous-champion", champion)
    client.set_registered_model_alias(name, "champion", version)
    if aliases.get("challenger") is not None and str(aliases["challenger"]) == version:
        client.delete_registered_model_alias(name, "challenger")
    client.set_model_version_tag(name, version, "promoted_by", actor)
    client.set_model_version_tag(name, version, "promoted_at", dt.datetime.now(dt.UTC).isoformat())
    with store.transaction() as conn:
        details = {k: v for k, v in result.items() if k != "name"} | {"forced": force}
        write_audit(conn, store.domain, actor, "model.promote", details)
    return result


def rollback(store: Store, settings: Settings, actor: str) -> dict[str, Any]:
    """Give `champion` back to the version that held it before the last promotion."""
    client = _client(settings)
    name = model_name(store)
    aliases = _registered(client, name).aliases
    if "previous-champion" not in aliases:
        raise NotFound("no previous champion to roll back to: `upt models promote` records one")
    previous, current = str(aliases["previous-champion"]), str(aliases.get("champion"))
    client.set_registered_model_alias(name, "champion", previous)
    client.set_registered_model_alias(name, "previous-champion", current)
    with store.transaction() as conn:
        write_audit(conn, store.domain, actor, "model.rollback", {"from": current, "to": previous})
    return {"name": name, "champion": previous, "was": current}


def mark_trained_on_erased(
    store: Store, settings: Settings, erased_keys: set[str], receipt: str
) -> list[str]:
    """Tag every registered version whose training labels named an erased mention: its artifact
    keeps what it learned from that person, so a retrain without them is asked for."""
    import mlflow

    from models.bundle import load_bundle

    client = _client(settings)
    name = model_name(store)
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except mlflow.exceptions.MlflowException:
        return []
    marked = []
    for mv in versions:
        trained_on = load_bundle(f"models:/{name}/{mv.version}").trained_on
        pairs = trained_on.get("label_pairs") or []
        if any(a in erased_keys or b in erased_keys for a, b in pairs):
            client.set_model_version_tag(name, mv.version, "retrain_requested", "true")
            client.set_model_version_tag(name, mv.version, f"erasure_{receipt}", "trained on erased labels")
            marked.append(str(mv.version))
    return sorted(marked, key=int)
