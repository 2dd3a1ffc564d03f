"""Where data-parallel work runs: in this process, or on a Dask cluster.

Every function that can spread work over a cluster takes ``scheduler=`` and passes it to
:func:`run_tasks`: ``None`` runs the tasks one after the other in this process (no Dask needed),
``"local"`` starts a :class:`distributed.LocalCluster` on this machine for the call, an address
such as ``"tcp://10.0.0.5:8786"`` connects to a running cluster, and a ``distributed.Client``
is used as it is. The tasks and their results are the same whichever runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["DASK_INSTALL", "check_scheduler", "run_tasks"]

T = TypeVar("T")

#: What to install for the Dask path.
DASK_INSTALL = "pip install 'celltwin[dask]'  (installs dask[array,distributed])"

#: The value of ``scheduler=`` that starts a cluster on this machine.
LOCAL = "local"


def check_scheduler(scheduler: object) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``scheduler`` is a valid ``scheduler=`` value."""
    if scheduler is None or _is_client(scheduler):
        return
    if not isinstance(scheduler, str):
        raise TypeError(
            "'scheduler' must be None, 'local', a scheduler address such as "
            f"'tcp://host:8786', or a distributed.Client (got {type(scheduler).__name__})."
        )
    if scheduler != LOCAL and "://" not in scheduler and ":" not in scheduler:
        raise ValueError(
            f"'scheduler' must be 'local' or a scheduler address such as 'tcp://host:8786' "
            f"(got {scheduler!r}). Fix: start one with `dask scheduler` and pass the address "
            "it prints."
        )


def _is_client(obj: object) -> bool:
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")


def run_tasks(
    func: Callable[..., T], args: Sequence[tuple[Any, ...]], *, scheduler: Any = None
) -> list[T]:
    """``[func(*a) for a in args]``, in this process or on the cluster ``scheduler`` names.

    Results come back in the order of ``args``. On a cluster every task runs on some worker,
    so ``func`` must be importable there and its arguments picklable (file paths, not open files).
    """
    check_scheduler(scheduler)
    if scheduler is None:
        return [func(*a) for a in args]
    with _client(scheduler) as client:
        futures = [client.submit(func, *a, pure=False) for a in args]
        return list(client.gather(futures))


@contextmanager
def _client(scheduler: Any) -> Iterator[Any]:
    if _is_client(scheduler):
        yield scheduler
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"scheduler={scheduler!r} runs on Dask, which is not installed. Fix: {DASK_INSTALL}, "
            "or pass scheduler=None to run in this process."
        ) from err
    if scheduler == LOCAL:
        with LocalCluster(processes=True, dashboard_address=":0") as cluster, Client(cluster) as c:
            yield c
        return
    with Client(scheduler) as c:
        yield c
