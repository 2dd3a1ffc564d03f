"""Provenance of a run: what ``run.json`` records besides the results.

The call (suite, models, folds, seed, options), the suite's definition, package versions, the git
commit of the code, the machine, and the run's timings (wall and CPU time, load average, seconds
per fold and per model).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from ._measure import cpu_seconds, load_average
from ._suites._registry import Suite


@dataclass(frozen=True)
class Clock:
    """Wall time, CPU time and load average when a run started."""

    started: float = field(default_factory=time.time)
    cpu_start: float = field(default_factory=cpu_seconds)
    load_start: list[float] | None = field(default_factory=load_average)


def run_record(
    call: dict[str, Any],
    *,
    suite: Suite,
    clock: Clock,
    fold_seconds: dict[str, float],
    timing: pd.DataFrame,
) -> dict[str, Any]:
    """``run.json`` of a run: ``call`` (the arguments of the run), the suite, versions, commit,
    machine and timings (since ``clock``)."""
    return {
        "command": list(sys.argv),
        "call": call,
        "suite": {
            "name": suite.name,
            "version": suite.version,
            "kind": suite.kind,
            "data": suite.data,
            "metrics": list(suite.metrics),
        },
        "versions": versions(),
        "git_commit": git_commit(),
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(clock.started)),
        "timings": {
            "total_s": time.time() - clock.started,
            # This process and every model process it waited for, all threads.
            "cpu_s": cpu_seconds() - clock.cpu_start,
            "load_average_start": clock.load_start,
            "load_average_end": load_average(),
            "per_fold_s": fold_seconds,
            "per_model_s": {
                str(m): float(g["total_s"].fillna(0).sum())
                for m, g in timing.groupby("model", sort=True)
            },
        },
    }


def versions() -> dict[str, str]:
    """Versions of Python, celltwin and the packages its numbers depend on (``""``: absent)."""
    out = {"python": platform.python_version()}
    for package in ("celltwin", "numpy", "scipy", "pandas", "anndata", "scanpy", "scikit-learn"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = ""
    try:
        out["torch"] = version("torch")
    except PackageNotFoundError:
        out["torch"] = ""
    return out


def machine() -> dict[str, Any]:
    """Platform, processor, CPU count (and affinity) and total memory of this machine."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    mem = _meminfo_total_gb()
    if mem is not None:
        info["memory_gb"] = mem
    return info


def _meminfo_total_gb() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(float(line.split()[1]) / 1024**2, 1)
    except OSError:
        return None
    return None


def git_commit() -> str:
    """The commit of the code being run (``""`` outside a git checkout)."""
    root = Path(__file__).resolve().parents[3]
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
