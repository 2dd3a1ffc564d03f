"""``transition``'s parameter checks and the compute settings of a fit or predict (device,
CPU threads)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

#: Integer parameters and their smallest allowed value.
_INTS: dict[str, int] = {
    "n_latent": 1,
    "hidden": 1,
    "n_layers": 0,
    "n_noise": 0,
    "n_members": 1,
    "max_steps": 0,
    "cells": 2,
    "patience": 1,
    "seed": 0,
}


def check_params(params: Mapping[str, Any]) -> None:
    """Raise a ValueError naming the first invalid parameter of ``params`` (``get_params()``)."""
    _check_numbers(params)
    _check_choices(params)


def _check_numbers(params: Mapping[str, Any]) -> None:
    for key, low in _INTS.items():
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"transition: {key!r} must be an integer >= {low} (got {value!r}).")
    for key in ("lr", "ridge", "correction_penalty"):
        value = params[key]
        if not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
            raise ValueError(f"transition: {key!r} must be a finite number >= 0 (got {value!r}).")
    interval = params["interval"]
    if not 0 < float(interval) < 1:
        raise ValueError(f"transition: 'interval' must be in (0, 1) (got {interval!r}), e.g. 0.9.")
    budget = params["time_budget"]
    if budget is not None and not float(budget) > 0:
        raise ValueError(f"transition: 'time_budget' must be > 0 seconds or None (got {budget!r}).")


def _check_choices(params: Mapping[str, Any]) -> None:
    for switch in ("fold_change", "cell_states"):
        value = params[switch]
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"transition: {switch!r} must be True or False (got {value!r}).")
    device = params["device"]
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"transition: 'device' must be 'auto', 'cpu' or 'cuda' (got {device!r}).")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("transition: device='cuda' but CUDA is not available. Fix: 'auto'.")
    from ...priors import GENE_EMBEDDING_SOURCES

    gene_prior = params["gene_prior"]
    prior_ok = gene_prior in ("auto", "data", "none") or all(
        part in GENE_EMBEDDING_SOURCES for part in str(gene_prior).split("+")
    )
    if not prior_ok:
        raise ValueError(
            f"transition: 'gene_prior' must be 'auto', 'data', 'none' or a gene embedding source "
            f"({sorted(GENE_EMBEDDING_SOURCES)}, joined by '+') (got {gene_prior!r})."
        )
    n_threads = params["n_threads"]
    if n_threads is not None and (isinstance(n_threads, bool) or int(n_threads) < 1):
        raise ValueError(f"transition: 'n_threads' must be >= 1 or None (got {n_threads!r}).")


def torch_device(device: str) -> torch.device:
    """The torch device of the ``device`` parameter (``"auto"``: CUDA when available)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def thread_count(n_threads: int | None) -> int:
    """CPU threads of a fit or predict (``None``: one)."""
    # The network is small: one thread is as fast as several and does not fight other
    # processes for the cores (measured: 75 ms vs 0.9 s per step on a busy 2-core machine).
    if n_threads is not None:
        return int(n_threads)
    return 1


@contextlib.contextmanager
def torch_settings(n_threads: int) -> Iterator[None]:
    """A torch and BLAS CPU thread count for the duration of a fit or predict.

    The operations used (dense matmuls, elementwise maths, reductions) are deterministic on CPU
    for a fixed thread count; ``torch.use_deterministic_algorithms`` is not switched on because
    importing it pulls in torch's compiler stack (seconds per process). The BLAS is limited too:
    its default (one thread per core, spinning) made the PCA 20-30x slower on a busy machine,
    outside the time budget, and a fixed count keeps results the same across machines.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(threads)
