"""The `upt` command line: a thin face over the use cases in `pipelines/`. `serving/` never
imports it (an import-linter contract says so)."""

from pipelines.cli.main import app, run

__all__ = ["app", "run"]
