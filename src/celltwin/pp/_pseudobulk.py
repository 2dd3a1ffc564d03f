"""Pseudobulk profiles per (context, perturbation, dose), streamed over row chunks.

Cells become a table of groups: mean expression, within-group variance, and the mean delta against
the matched control cells. The matrix is read one block of rows at a time, so a backed AnnData or
an ``.h5ad`` path of millions of cells is summarised in bounded memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._dask import check_scheduler, run_tasks
from .._keys import BATCH, CONTROL, DOSE, PERTURBATION, UNS_KEY
from .._progress import progress_bar
from ._rows import RowSource, open_rows, open_source

#: Columns that define *what* was done to a group; every other ``by`` column must match between
#: a group and its control cells.
_TREATMENT_KEYS = (PERTURBATION, DOSE)
_NAME_SEP = "|"
_VAR_DDOF = 1


def pseudobulk(
    adata: AnnData | str | os.PathLike[str],
    *,
    layer: str | None = None,
    by: Sequence[str] | None = None,
    match_batch: bool = False,
    chunk_size: int = 20_000,
    progress: bool = False,
    scheduler: Any = None,
) -> AnnData:
    """Summarise cells into one pseudobulk profile per group, with deltas against matched controls.

    The matrix (``X`` or ``layers[layer]``) is streamed in blocks of ``chunk_size`` rows; per block,
    group sums and sums of squares are accumulated in float64 with a sparse indicator-matrix
    product, so the full matrix is never densified nor, for on-disk data, loaded.

    Parameters
    ----------
    adata
        Canonical cells x genes: an in-memory AnnData, a backed one
        (``anndata.read_h5ad(path, backed="r")``), or the path of an ``.h5ad`` file or a
        ``.zarr`` store. Note that
        anndata loads every *layer* into memory when it opens a file backed; to stream a layer of a
        large file, pass the path (only the needed obs columns, var and that layer are read).
        On disk the matrix must be CSR or dense (rows = cells).
    layer
        Layer to summarise; ``None`` uses ``X``.
    by
        obs columns defining a group. Default: ``(context, perturbation, dose)``, without ``dose``
        when obs has no such column. Must include ``perturbation``.
    match_batch
        Match controls within the same batch (obs ``batch``) too; see Notes.
    chunk_size
        Rows read per block: peak memory grows with it (one block, densified only per group).
    progress
        Show a progress bar over cells (only without ``scheduler``).
    scheduler
        Where the blocks are summed: ``None`` in this process; ``"local"`` on a
        :class:`distributed.LocalCluster` started for the call; an address such as
        ``"tcp://host:8786"`` on that Dask cluster; or a ``distributed.Client``. With a scheduler,
        ``adata`` must be a path every worker can read; each task sums a range of rows and the
        partial sums are added (the result equals the in-process one up to float rounding,
        about 1e-12). Needs ``pip install 'celltwin[dask]'``.

    Returns
    -------
    AnnData
        One row per group (sorted by ``by``), genes as in the input.

        - ``obs``: the ``by`` columns, ``n_cells`` and ``n_control_cells`` (the number of control
          cells the matched control mean is computed from).
        - ``X``: group mean (float64).
        - ``layers['delta']``: group mean minus the matched control mean. Control groups that are
          their whole matched control pool (the usual case) have delta exactly 0.
        - ``layers['var']``: within-group variance per gene (``ddof=1``; NaN for single-cell
          groups).
        - ``uns['celltwin']['pseudobulk']``: the parameters; when ``X`` was summarised, the
          input's other ``uns['celltwin']`` records (e.g. the normalisation) are carried over.

    Notes
    -----
    Control cells are those with ``obs['perturbation'] == "control"``. A group's matched control
    cells share its values of every ``by`` column except ``perturbation`` and ``dose`` (with the
    default ``by``: the same context). With ``match_batch=True`` the control mean is computed per
    (context, batch), and a group's matched control mean is the cell-weighted combination over
    the batches its own cells come from: ``sum_b n_gb / n_g * mean_control(context, b)``, which
    removes batch composition from the delta. Every (context[, batch]) holding cells must have
    control cells, otherwise a ``ValueError`` names the offending ones.

    Variances come from float64 sums of squares, ``(S2 - n * mean**2) / (n - 1)``; the relative
    error is about ``1e-16 * mean**2 / var``, negligible for expression data.

    Examples
    --------
    >>> import anndata as ad, numpy as np, pandas as pd
    >>> obs = pd.DataFrame(
    ...     {"context": ["K562"] * 4, "perturbation": ["control", "control", "KLF1", "KLF1"]},
    ...     index=[f"c{i}" for i in range(4)],
    ... )
    >>> cells = ad.AnnData(np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 1.0], [7.0, 3.0]]), obs=obs)
    >>> pb = pseudobulk(cells)
    >>> pb.obs[["perturbation", "n_cells", "n_control_cells"]].to_numpy().tolist()
    [['KLF1', 2, 2], ['control', 2, 2]]
    >>> pb.layers["delta"][0].tolist()
    [4.0, 1.0]
    """
    if chunk_size < 1:
        raise ValueError(f"'chunk_size' must be >= 1 (got {chunk_size}).")
    check_scheduler(scheduler)
    if scheduler is not None and isinstance(adata, AnnData):
        raise TypeError(
            "scheduler= needs the data as a file path that every worker can read (got an "
            "AnnData). Fix: pass the .h5ad/.zarr path, or scheduler=None."
        )
    with open_source(adata, layer=layer, by=by, match_batch=match_batch) as (src, by_cols):
        if scheduler is not None:
            src.rows = _Distributed(str(adata), layer, scheduler)
        return _pseudobulk(
            src,
            layer=layer,
            by=by_cols,
            match_batch=match_batch,
            chunk_size=chunk_size,
            progress=progress,
        )


@dataclass
class _Distributed:
    """Stands for the rows of ``path`` when a Dask cluster sums them, range by range."""

    path: str
    layer: str | None
    scheduler: Any


def _pseudobulk(
    src: RowSource,
    *,
    layer: str | None,
    by: list[str],
    match_batch: bool,
    chunk_size: int,
    progress: bool,
) -> AnnData:
    obs = src.obs
    group_codes, groups = _factorize(obs, by)
    unit_cols = [c for c in by if c not in _TREATMENT_KEYS]
    if match_batch and BATCH not in unit_cols:
        unit_cols.append(BATCH)
    unit_codes, units = _factorize(obs, unit_cols)
    is_control = (obs[PERTURBATION].astype(str) == CONTROL).to_numpy()

    n_groups, n_units, n_genes = len(groups), len(units), src.var.shape[0]
    n_cells = np.bincount(group_codes, minlength=n_groups)
    n_control_per_unit = np.bincount(unit_codes[is_control], minlength=n_units)
    # Which units (and how many of its cells in each) every group draws its control from.
    group_units = sp.csr_matrix(
        (np.ones(src.n_obs), (group_codes, unit_codes)), shape=(n_groups, n_units)
    )
    group_units.sum_duplicates()
    _check_controls(group_units, n_control_per_unit, units, match_batch=match_batch)

    sums, sumsq, control_sums = _stream_sums(
        src,
        group_codes,
        unit_codes,
        is_control,
        shape=(n_groups, n_units, n_genes),
        chunk_size=chunk_size,
        progress=progress,
    )
    mean = sums / n_cells[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (sumsq - sums * mean) / (n_cells[:, None] - _VAR_DDOF)
    var = np.where(n_cells[:, None] > _VAR_DDOF, np.maximum(var, 0.0), np.nan)

    control_mean = control_sums / np.maximum(n_control_per_unit, 1)[:, None]
    weights = sp.diags(1.0 / n_cells) @ group_units  # cell-weighted mix over a group's units
    delta = mean - weights @ control_mean
    n_control_cells = (group_units > 0).astype(np.int64) @ n_control_per_unit
    group_is_control = (groups[PERTURBATION].astype(str) == CONTROL).to_numpy()
    # A control group that is its entire matched pool differs from it only by rounding.
    delta[group_is_control & (n_control_cells == n_cells)] = 0.0

    out_obs = groups.copy()
    out_obs["n_cells"] = n_cells.astype(np.int64)
    out_obs["n_control_cells"] = np.asarray(n_control_cells, dtype=np.int64)
    out_obs.index = _group_names(groups)
    uns = dict(src.uns) if layer is None else {}
    uns["pseudobulk"] = {
        "by": list(by),
        "layer": layer,
        "match_batch": bool(match_batch),
        "batch_key": BATCH,
        "control": CONTROL,
        "var_ddof": _VAR_DDOF,
        "chunk_size": int(chunk_size),
    }
    return AnnData(
        X=mean,
        obs=out_obs,
        var=src.var.copy(),
        layers={"delta": delta, "var": var},
        uns={UNS_KEY: uns},
    )


def _stream_sums(
    src: RowSource,
    group_codes: np.ndarray,
    unit_codes: np.ndarray,
    is_control: np.ndarray,
    *,
    shape: tuple[int, int, int],
    chunk_size: int,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group sums and sums of squares, and per-unit control sums, one block of rows at a time.

    ``shape`` is (groups, units, genes).
    """
    if isinstance(src.rows, _Distributed):
        return _distributed_sums(
            src.rows, group_codes, unit_codes, is_control, shape=shape, chunk_size=chunk_size
        )
    with progress_bar(total=src.n_obs, unit="cells", enabled=progress, desc="pseudobulk") as bar:
        return _range_sums(
            src.rows, 0, group_codes, unit_codes, is_control, shape, chunk_size, bar.update
        )


#: Rows summed per Dask task at most (several blocks of ``chunk_size``).
_TASK_ROWS = 250_000


def _distributed_sums(
    rows: _Distributed,
    group_codes: np.ndarray,
    unit_codes: np.ndarray,
    is_control: np.ndarray,
    *,
    shape: tuple[int, int, int],
    chunk_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sums of :func:`_stream_sums`, one task per range of rows, added up."""
    n_obs = group_codes.size
    # At least ~8 tasks, so that every worker of a small cluster gets some.
    step = max(chunk_size, min(_TASK_ROWS, -(-n_obs // 8)))
    args = [
        (
            rows.path,
            rows.layer,
            start,
            group_codes[start : start + step],
            unit_codes[start : start + step],
            is_control[start : start + step],
            shape,
            chunk_size,
        )
        for start in range(0, n_obs, step)
    ]
    parts = run_tasks(_file_range_sums, args, scheduler=rows.scheduler)
    sums, sumsq, control_sums = parts[0]
    for more in parts[1:]:
        sums += more[0]
        sumsq += more[1]
        control_sums += more[2]
    return sums, sumsq, control_sums


def _file_range_sums(
    path: str,
    layer: str | None,
    offset: int,
    group_codes: np.ndarray,
    unit_codes: np.ndarray,
    is_control: np.ndarray,
    shape: tuple[int, int, int],
    chunk_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Dask task: the sums over the rows ``offset:offset + len(group_codes)`` of a file."""
    with open_rows(path, layer=layer) as rows:
        return _range_sums(rows, offset, group_codes, unit_codes, is_control, shape, chunk_size)


def _range_sums(
    rows: Any,
    offset: int,
    group_codes: np.ndarray,
    unit_codes: np.ndarray,
    is_control: np.ndarray,
    shape: tuple[int, int, int],
    chunk_size: int,
    update: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums over ``rows[offset:offset + n]``, ``n = len(group_codes)``, block by block."""
    n_groups, n_units, n_genes = shape
    sums = np.zeros((n_groups, n_genes))
    sumsq = np.zeros((n_groups, n_genes))
    control_sums = np.zeros((n_units, n_genes))
    for start in range(0, group_codes.size, chunk_size):
        stop = min(start + chunk_size, group_codes.size)
        block = _as_float64(rows[offset + start : offset + stop])
        ctrl = np.flatnonzero(is_control[start:stop])
        if ctrl.size:
            _accumulate(control_sums, unit_codes[start:stop][ctrl], block[ctrl])
        _accumulate(sums, group_codes[start:stop], block)
        _square_inplace(block)
        _accumulate(sumsq, group_codes[start:stop], block)
        if update is not None:
            update(stop - start)
    return sums, sumsq, control_sums


def _accumulate(acc: np.ndarray, codes: np.ndarray, block: np.ndarray | sp.csr_matrix) -> None:
    """Add each row of ``block`` to ``acc[code]`` via an indicator matrix over the codes present."""
    present, local = np.unique(codes, return_inverse=True)
    indicator = sp.csr_matrix(
        (np.ones(codes.size), (local, np.arange(codes.size))), shape=(present.size, codes.size)
    )
    part = indicator @ block
    acc[present] += part.toarray() if sp.issparse(part) else part


def _as_float64(block: Any) -> np.ndarray | sp.csr_matrix:
    """A float64 copy of a row block (the caller squares it in place)."""
    if sp.issparse(block):
        return sp.csr_matrix(block, dtype=np.float64, copy=True)
    return np.array(block, dtype=np.float64, copy=True)


def _square_inplace(block: np.ndarray | sp.csr_matrix) -> None:
    if isinstance(block, np.ndarray):
        np.square(block, out=block)
    else:
        np.square(block.data, out=block.data)


def _factorize(obs: pd.DataFrame, cols: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer code per cell and the table of distinct values (sorted) for ``cols``."""
    if not cols:  # a single group holding every cell
        return np.zeros(len(obs), dtype=np.int64), pd.DataFrame(index=pd.RangeIndex(1))
    grouped = obs[cols].groupby(cols, observed=True, sort=True, dropna=False)
    codes = grouped.ngroup().to_numpy(dtype=np.int64)
    table = grouped.size().reset_index()[cols]
    for col in cols:
        if isinstance(table[col].dtype, pd.CategoricalDtype):
            table[col] = table[col].cat.remove_unused_categories()
    return codes, table


def _group_names(groups: pd.DataFrame) -> pd.Index:
    names = groups.astype(str).agg(_NAME_SEP.join, axis=1)
    if names.is_unique:
        return pd.Index(names.to_numpy(dtype=object), dtype=object)
    return pd.Index([str(i) for i in range(len(groups))], dtype=object)


def _check_controls(
    group_units: sp.csr_matrix, n_control: np.ndarray, units: pd.DataFrame, *, match_batch: bool
) -> None:
    """Raise when cells need a control pool that holds no control cells."""
    cells_per_unit = np.asarray(group_units.sum(axis=0)).ravel()
    missing = np.flatnonzero((cells_per_unit > 0) & (n_control == 0))
    if missing.size == 0:
        return
    described = [
        ", ".join(f"{col}={units.iloc[u][col]!r}" for col in units.columns) or "all cells"
        for u in missing[:5]
    ]
    more = f" (and {missing.size - 5} more)" if missing.size > 5 else ""
    fix = (
        "drop those cells, add control cells, or use match_batch=False"
        if match_batch
        else "drop those cells or add control cells"
    )
    raise ValueError(
        f"no control cells (obs[{PERTURBATION!r}] == {CONTROL!r}) to match: "
        f"{'; '.join(described)}{more}. Fix: {fix}."
    )
