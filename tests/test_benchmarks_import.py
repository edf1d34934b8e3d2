"""Every benchmark module imports: `make bench` runs them only in its own long run, so a name
moved between them (d5bab02: a scorer one module still imported from another) would otherwise
surface only there. The anchors' packages are imported inside the functions that run them."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import benchmarks

MODULES = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__))


def test_the_benchmark_modules_are_found() -> None:
    assert {"run", "travel_sets", "travel_curve", "anchors", "online"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_each_benchmark_module_imports(name: str) -> None:
    importlib.import_module(f"benchmarks.{name}")
