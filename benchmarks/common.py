"""Shared bits of the benchmarks: machine description, child-process measurement, result files."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown cpu",
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.0f} GiB RAM, Python {platform.python_version()}, "
        f"{dt.date.today().isoformat()}, commit {commit.strip() or 'uncommitted'}"
    )


# A child's peak RSS starts at its parent's at fork (Linux keeps the high-water mark across
# exec), so a big benchmark parent would floor every child's figure: reset it first (Linux 4.0+:
# writing 5 to clear_refs) and read VmHWM at the end.
RESET_PEAK = "try:\n    open('/proc/self/clear_refs', 'w').write('5')\nexcept OSError:\n    pass\n"
PEAK_EXPR = (
    "round(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024, 1)"
)


def reset_peak() -> None:
    """This process's own peak RSS from here on (what RESET_PEAK does in child code)."""
    exec(RESET_PEAK)


def peak_rss_mib() -> float:
    """This process's peak RSS in MiB since start or `reset_peak` (PEAK_EXPR)."""
    return float(eval(PEAK_EXPR))


def run_measured(code: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run Python `code` in a fresh interpreter; it must print one JSON object as its last line.

    Adds the child's wall time and peak resident memory (MiB), read from its own rusage.
    """
    wrapper = (
        f"{RESET_PEAK}import json, time\n_t0 = time.perf_counter()\n"
        f"{code}\n"
        "_r = result if 'result' in dir() else {}\n"
        "_r['wall_s'] = round(time.perf_counter() - _t0, 2)\n"
        f"_r['peak_rss_mib'] = {PEAK_EXPR}\n"
        "print(json.dumps(_r))\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("UPT_")}
    environ.update(env or {})
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", wrapper], capture_output=True, text=True, env=environ, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = round(time.perf_counter() - started, 2)
    return result


def write_section(name: str, markdown: str, data: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + "\n", encoding="utf-8")
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def rebuild_benchmarks_md(order: list[str]) -> None:
    parts = [
        "# Benchmarks\n",
        "Measured by `make bench` (`python -m benchmarks.run`; one part: `python -m benchmarks.run NAME`). "
        "Each section names its machine and commit. This machine is small and noisy, so every figure that is "
        "compared is compared against a baseline measured in the same run, as a ratio.\n",
    ]
    for name in order:
        # NAME.md is what the benchmark wrote; NAME.notes.md, read after it, what people wrote
        # about it (a rerun rewrites the first and never touches the second)
        for path in (RESULTS / f"{name}.md", RESULTS / f"{name}.notes.md"):
            if path.exists():
                parts.append(path.read_text(encoding="utf-8"))
    (ROOT / "BENCHMARKS.md").write_text("\n".join(parts), encoding="utf-8")


POSTGRES_ADMIN = os.environ.get(
    "UPT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def postgres_database() -> tuple[str, Any]:
    """(URL of a fresh database on the local PostgreSQL, a function that drops it)."""
    import uuid

    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"upt_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'create database "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()

    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


def run_worker(module: str, kind: str, args: dict[str, Any], quiet_env: bool = False) -> dict[str, Any]:
    """`python -m MODULE KIND ARGS_JSON` in a fresh process (a worker of one benchmark), its last
    output line read as JSON; `quiet_env`: without the caller's UPT_* variables."""
    env = {k: v for k, v in os.environ.items() if not (quiet_env and k.startswith("UPT_"))}
    done = subprocess.run(
        [sys.executable, "-m", module, kind, json.dumps(args, default=str)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
