"""Progress bars that degrade cleanly: shown on a terminal (or in a notebook), never as escape
codes in a log file. Every progress bar of celltwin is made by :func:`progress_bar`. Steps
worth timing log their wall and CPU time with :func:`timed` (``celltwin -v`` shows them)."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm

__all__ = ["progress_bar", "shows_progress", "timed"]

logger = logging.getLogger("celltwin")

T = TypeVar("T")


def shows_progress() -> bool:
    """Whether a bar can be drawn: stderr is a terminal, or this runs in a Jupyter kernel."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty is not None and isatty()) or "ipykernel" in sys.modules


def progress_bar(
    iterable: Iterable[T] | None = None, *, enabled: bool = True, **kwargs: Any
) -> tqdm[T]:
    """A :class:`tqdm.auto.tqdm` on stderr, disabled unless ``enabled`` and
    :func:`shows_progress` (redirected to a file, it writes nothing)."""
    return tqdm(iterable, disable=not (enabled and shows_progress()), **kwargs)


@contextlib.contextmanager
def timed(step: str) -> Iterator[None]:
    """Log ``step``'s wall time and this process's CPU time (all threads) at INFO level."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        logger.info(
            "time: %s %.2f s (CPU %.2f s)",
            step,
            time.perf_counter() - wall,
            time.process_time() - cpu,
        )
