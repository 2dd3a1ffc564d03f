"""Measurement: wall time, CPU time and peak resident memory of a block of code.

A model-fold measured in its own process (the runner's default, :mod:`._isolation`) reports

* ``fit_s``, ``predict_s``: wall-clock seconds of ``fit`` and ``predict``;
* ``peak_rss_mb``: the process's resident-set high-water mark at the end (``VmHWM``);
* ``peak_delta_mb``: that high-water mark minus the resident set just before ``fit``, with the
  high-water mark reset there (Linux ``/proc/self/clear_refs``, value 5): the extra memory
  fit + predict needed at their peak, numpy/torch buffers included (``tracemalloc`` would see
  only Python allocations). Where the reset is not available the delta is measured from the
  process's peak so far (``resource.getrusage``), an upper bound, flagged in ``memory_method``.

Measured in the runner's own process (``isolate=False``) the same numbers are taken, but freed
memory that the allocator reuses does not show up again, so the delta can be lower than the
model's real need.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any


def _status_kb(field_name: str) -> float | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _maxrss_kb() -> float:
    peak = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak / 1024.0 if sys.platform == "darwin" else peak  # macOS reports bytes


@contextmanager
def measure() -> Iterator[dict[str, Any]]:
    """Measure the wall time and the peak resident memory of the enclosed block.

    Yields a dict filled on exit with ``seconds`` (wall clock), ``cpu_s`` (CPU time of this
    process, all threads), ``peak_rss_mb``, ``peak_delta_mb`` and ``memory_method``
    (``"vmhwm_reset"`` or ``"maxrss"``; see the module docstring).
    """
    stats: dict[str, Any] = {}
    rss0 = _status_kb("VmRSS")
    method = "maxrss"
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets the high-water mark to the current resident set
        method = "vmhwm_reset"
    except OSError:
        pass
    if rss0 is None:
        rss0 = _maxrss_kb()
    start = time.perf_counter()
    cpu = time.process_time()
    try:
        yield stats
    finally:
        stats["seconds"] = time.perf_counter() - start
        stats["cpu_s"] = time.process_time() - cpu
        peak = _status_kb("VmHWM") if method == "vmhwm_reset" else None
        if peak is None:
            peak, method = _maxrss_kb(), "maxrss"
        stats["peak_rss_mb"] = peak / 1024.0
        stats["peak_delta_mb"] = max(peak - rss0, 0.0) / 1024.0
        stats["memory_method"] = method


def measured(total: Mapping[str, Any]) -> dict[str, Any]:
    """The timing-table fields of a :func:`measure` result (``seconds`` as ``total_s``)."""
    return {
        "total_s": total["seconds"],
        "cpu_s": total["cpu_s"],
        "peak_rss_mb": total["peak_rss_mb"],
        "peak_delta_mb": total["peak_delta_mb"],
        "memory_method": total["memory_method"],
    }


def cpu_seconds() -> float:
    """CPU seconds of this process and of every child process it waited for, all threads."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def load_average() -> list[float] | None:
    """The system's load averages (1, 5, 15 minutes), rounded; ``None`` where unknown."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None
