"""Loading a registered bundle from several threads at once (a server's champion refresh beside a
request that loads the first champion)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from models import bundle as bundle_module


def test_a_process_loads_one_model_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # MLflow swaps a stand-in `dbutils` into sys.modules while it runs a models-from-code file;
    # two loads at once leave the stand-in there for good. So no two loads may overlap.
    import mlflow.pyfunc

    inside, most, guard = 0, 0, threading.Lock()

    def slow_load(model_uri: str, **_: Any) -> SimpleNamespace:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.02)
        with guard:
            inside -= 1
        return SimpleNamespace(unwrap_python_model=lambda: SimpleNamespace(bundle=model_uri))

    monkeypatch.setattr(mlflow.pyfunc, "load_model", slow_load)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(bundle_module.load_bundle(f"models:/m/{i}")))
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [f"models:/m/{i}" for i in range(6)]
    assert most == 1
