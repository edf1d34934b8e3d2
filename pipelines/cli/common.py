"""What every `upt` command module shares: consoles, the --json flag, the per-invocation state."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from profiles.settings import Settings
from profiles.store import Store, open_store

out = Console()
err = Console(stderr=True)

# Exit status per error code (`profiles.errors`): 0 done, 1 a guard refused or part of the work
# failed, 2 bad input or settings (as for a wrong option), 3 not found, 4 an earlier step is
# missing, 5 busy or changed meanwhile (try again), 6 the store is unreachable.
EXIT_CODES = {
    "upt_error": 1,
    "refused": 1,
    "validation_failed": 2,
    "config_error": 2,
    "not_found": 3,
    "not_ready": 4,
    "conflict": 5,
    "store_busy": 5,
    "store_error": 6,
}

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on standard output.")]


class State:
    """Settings of this invocation and the store, opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store


def state_of(ctx: typer.Context) -> State:
    state: State = ctx.find_root().obj
    return state


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")


def progress_bar(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet or not err.is_terminal,
        transient=False,
    )


@contextmanager
def progress_steps(quiet: bool) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """A `step(description, total) -> advance(n)` function drawing one bar per step on stderr."""
    with progress_bar(quiet) as bar:

        def step(description: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(description, total=total)
            return lambda n: bar.advance(task, n)

        yield step


def current_user() -> str:
    """Who is at the keyboard, for labels, decisions and the audit log."""
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"
