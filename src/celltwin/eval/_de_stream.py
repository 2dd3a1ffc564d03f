"""Differential expression of every group against its matched control, over on-disk cells.

:func:`differential_expression` runs :func:`rank_sum_test` or :func:`welch_t_test` per control
pool (by default per context) without the matrix in memory. A group's test only involves its own
cells and its control's, so the groups of a pool are packed into batches of at most
``max_cells`` cells (control included); each batch is read from disk (:func:`celltwin.pp.read_cells`)
and tested as one task, in this process or on a Dask cluster. Results are exactly those of the
in-memory test on the pool's cells. Welch's test needs only each group's mean and variance, so
from a path it is one streamed pass (:func:`celltwin.pp.pseudobulk`) whatever the layout.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from .._dask import check_scheduler, run_tasks
from .._keys import CONTEXT, CONTROL, DOSE, PERTURBATION
from ..pp import pseudobulk, read_cells, read_obs
from ._de import DEResult, rank_sum_test
from ._de_welch import welch_from_moments, welch_t_test

__all__ = ["differential_expression"]

_TESTS = {"wilcoxon": rank_sum_test, "welch": welch_t_test}
_SEP = "|"


def differential_expression(
    adata: AnnData | str | os.PathLike[str],
    *,
    method: Literal["wilcoxon", "welch"] = "wilcoxon",
    by: Sequence[str] | None = None,
    layer: str | None = None,
    max_cells: int = 200_000,
    chunk_size: int = 20_000,
    scheduler: Any = None,
) -> dict[str, DEResult]:
    """Test every group against the control cells of its pool, in bounded memory.

    Parameters
    ----------
    adata
        Cells x genes (log1p expression): an AnnData (in memory or backed), an ``.h5ad`` path or a
        ``.zarr`` store. From a path only the ``by`` obs columns and, batch by batch, the rows
        tested are read.
    method
        ``"wilcoxon"`` (:func:`rank_sum_test`) or ``"welch"`` (:func:`welch_t_test`).
    by
        obs columns defining a group (default: context, perturbation and, when present, dose).
        The columns other than perturbation and dose define the control pool: a group is
        compared with the control cells (``perturbation == "control"``) sharing those values.
    layer
        Layer to test; ``None`` uses ``X``.
    max_cells
        Cells (groups plus their control) read and tested at once; memory grows with it. A group
        larger than ``max_cells`` minus its control is tested alone.
    chunk_size
        Rows per read from disk. For the Wilcoxon test, batches of groups spread over a file read
        it once per batch (sort the file by group to read it once in all); Welch's test on a
        path reads it once, summing moments (:func:`celltwin.pp.pseudobulk`), and equals the
        in-memory test up to float rounding (about 1e-12) instead of exactly.
    scheduler
        ``None`` runs the batches one after the other here; ``"local"``, a scheduler address
        (``"tcp://host:8786"``) or a ``distributed.Client`` runs them as tasks on that Dask
        cluster, ``adata`` then being a path every worker can read
        (``pip install 'celltwin[dask]'``). Every worker holds ``max_cells`` cells at a time.

    Returns
    -------
    dict
        One :class:`DEResult` per control pool, keyed by the pool's values joined with ``|``
        (e.g. ``"K562"``; ``"all"`` when ``by`` is perturbation alone). Group labels are the
        perturbation, with ``|dose`` appended when ``by`` holds dose (and the cell has one);
        groups are sorted.

    Examples
    --------
    >>> from celltwin.simulate import simulate
    >>> cells = simulate(n_genes=30, n_tfs=5, n_perturbations=4, cells_per_condition=40).adata
    >>> results = differential_expression(cells, method="welch", by=["context", "perturbation"])
    >>> sorted(results)
    ['A', 'B']
    """
    if method not in _TESTS:
        raise ValueError(f"'method' must be one of {sorted(_TESTS)} (got {method!r}).")
    if max_cells < 1:
        raise ValueError(f"'max_cells' must be >= 1 (got {max_cells}).")
    check_scheduler(scheduler)
    if scheduler is not None and isinstance(adata, AnnData):
        raise TypeError(
            "scheduler= needs the data as a file path that every worker can read (got an "
            "AnnData). Fix: pass the .h5ad/.zarr path, or scheduler=None."
        )
    if method == "welch" and not isinstance(adata, AnnData):
        return _welch_streamed(adata, by, layer=layer, chunk_size=chunk_size, scheduler=scheduler)
    pools, labels = _pools(adata, by)
    tasks: list[tuple[Any, ...]] = []
    owners: list[str] = []
    for name, rows in pools.items():
        for index in _batches(rows, labels, max_cells):
            source = adata if isinstance(adata, AnnData) else str(adata)
            tasks.append((source, index, labels[index], method, layer, chunk_size))
            owners.append(name)
    parts = run_tasks(_test_batch, tasks, scheduler=scheduler)
    return {name: _concat([p for p, o in zip(parts, owners, strict=True) if o == name])
            for name in pools}  # fmt: skip


def _welch_streamed(
    path: str | os.PathLike[str],
    by: Sequence[str] | None,
    *,
    layer: str | None,
    chunk_size: int,
    scheduler: Any,
) -> dict[str, DEResult]:
    """Welch's test of every group from one streamed pass of group means and variances."""
    by = _default_by(path) if by is None else list(by)
    pb = pseudobulk(path, layer=layer, by=by, chunk_size=chunk_size, scheduler=scheduler)
    treat = [c for c in by if c in (PERTURBATION, DOSE)]
    pool_cols = [c for c in by if c not in treat]
    obs = pb.obs.reset_index(drop=True)
    label = _joined(obs, treat)
    is_control = (obs[PERTURBATION].astype(str) == CONTROL).to_numpy()
    pool = _joined(obs, pool_cols) if pool_cols else np.full(len(obs), "all", dtype=object)
    n = obs["n_cells"].to_numpy(dtype=np.float64)
    mean, var = np.asarray(pb.X), np.asarray(pb.layers["var"])
    out = {}
    for name in sorted(set(pool.tolist())):
        ctrl = np.flatnonzero((pool == name) & is_control)
        rows = np.flatnonzero((pool == name) & ~is_control)
        rows = rows[np.argsort(label[rows].astype(str), kind="stable")]
        n_c, ctrl_mean, ctrl_var = _pooled(n[ctrl], mean[ctrl], var[ctrl])
        out[name] = welch_from_moments(
            label[rows].astype(str), n[rows].astype(np.int64), mean[rows], var[rows],
            n_control=int(n_c), control_mean=ctrl_mean, control_var=ctrl_var,
        )  # fmt: skip
    return out


def _pooled(
    n: np.ndarray, mean: np.ndarray, var: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Cells, mean and variance (``ddof=1``) of several control groups together."""
    if n.size == 1:
        return float(n[0]), mean[0], var[0]
    n_c = float(n.sum())
    sums = (mean * n[:, None]).sum(axis=0)
    sumsq = (np.nan_to_num(var) * (n[:, None] - 1) + mean**2 * n[:, None]).sum(axis=0)
    ctrl_mean = sums / n_c
    return n_c, ctrl_mean, np.maximum(sumsq - sums * ctrl_mean, 0.0) / (n_c - 1)


def _default_by(adata: AnnData | str | os.PathLike[str]) -> list[str]:
    present = list(read_obs(adata, columns=None).columns)
    return [CONTEXT, PERTURBATION, *([DOSE] if DOSE in present else [])]


def _pools(
    adata: AnnData | str | os.PathLike[str], by: Sequence[str] | None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Rows of each control pool, and each cell's group label (``control`` for controls)."""
    by = _default_by(adata) if by is None else list(by)
    if PERTURBATION not in by:
        raise ValueError(f"'by' must include {PERTURBATION!r} (got {by!r}).")
    obs = read_obs(adata, columns=by)
    treat = [c for c in by if c in (PERTURBATION, DOSE)]
    pool_cols = [c for c in by if c not in treat]
    label = _joined(obs, treat)
    is_control = (obs[PERTURBATION].astype(str) == CONTROL).to_numpy()
    label[is_control] = CONTROL
    pool = _joined(obs, pool_cols) if pool_cols else np.full(len(obs), "all", dtype=object)
    codes, names = pd.factorize(pool, sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    pools = {str(n): np.sort(order[bounds[i] : bounds[i + 1]]) for i, n in enumerate(names)}
    for name, rows in pools.items():
        if not is_control[rows].any():
            raise ValueError(
                f"no control cells (obs[{PERTURBATION!r}] == {CONTROL!r}) in pool {name!r} "
                f"({', '.join(pool_cols)}). Fix: drop its cells or add control cells."
            )
    return pools, label.astype(str)


def _joined(obs: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """Per cell, the values of ``cols`` as text joined with ``|`` (computed once per value)."""
    grouped = obs[cols].groupby(cols, observed=True, sort=False, dropna=False)
    codes = grouped.ngroup().to_numpy()
    table = grouped.size().reset_index()[cols]
    text = [
        _SEP.join(str(v) for v in row if pd.notna(v) and str(v)) for row in table.itertuples(False)
    ]
    return np.asarray(text, dtype=object)[codes]


def _batches(rows: np.ndarray, labels: np.ndarray, max_cells: int) -> list[np.ndarray]:
    """Sorted row indices of each batch: groups in sorted order, each batch with the control."""
    lab = labels[rows]
    control = rows[lab == CONTROL]
    groups, inverse, counts = np.unique(lab, return_inverse=True, return_counts=True)
    keep = groups != CONTROL
    budget = max(max_cells - control.size, 1)
    batches: list[np.ndarray] = []
    current: list[int] = []
    total = 0
    for g in np.flatnonzero(keep).tolist():
        if current and total + counts[g] > budget:
            batches.append(_batch_rows(rows, inverse, current, control))
            current, total = [], 0
        current.append(g)
        total += int(counts[g])
    if current:
        batches.append(_batch_rows(rows, inverse, current, control))
    return batches


def _batch_rows(
    rows: np.ndarray, inverse: np.ndarray, groups: list[int], control: np.ndarray
) -> np.ndarray:
    return np.sort(np.concatenate([rows[np.isin(inverse, groups)], control]))


def _test_batch(
    source: AnnData | str,
    index: np.ndarray,
    labels: np.ndarray,
    method: str,
    layer: str | None,
    chunk_size: int,
) -> DEResult:
    """One task: read the rows ``index`` and test their groups against their control."""
    X = read_cells(source, index, layer=layer, chunk_size=chunk_size)
    return _TESTS[method](X, labels)


def _concat(parts: list[DEResult]) -> DEResult:
    """The results of a pool's batches as one (groups stay sorted: batches are in order)."""
    if len(parts) == 1:
        return parts[0]
    return DEResult(
        groups=np.concatenate([p.groups for p in parts]),
        n_cells=np.concatenate([p.n_cells for p in parts]),
        n_control=parts[0].n_control,
        log2_fold_change=np.vstack([p.log2_fold_change for p in parts]),
        pvalue=np.vstack([p.pvalue for p in parts]),
        fdr=np.vstack([p.fdr for p in parts]),
        statistic=np.vstack([p.statistic for p in parts]),
        method=parts[0].method,
    )
