"""Cells of each group read from disk, a group (or a batch of groups) at a time.

A training loop or a test that works on one (context, perturbation) at a time does not need the
matrix in memory: :func:`iter_groups` reads the rows of a few groups at once (at most
``max_cells``) and yields them group by group; :func:`read_cells` reads any set of rows and
:func:`read_obs` only the obs columns asked for.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from anndata.io import read_elem

from ._pseudobulk import _factorize, _group_names
from ._rows import _default_by, _matrix_rows, open_store, read_rows

__all__ = ["iter_groups", "read_cells", "read_obs", "read_var"]


def read_obs(
    adata: AnnData | str | os.PathLike[str], *, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """The obs table of ``adata`` (an AnnData, an ``.h5ad`` path or a ``.zarr`` store).

    From a path only ``columns`` (default: all) are read, not the matrix nor the cell names;
    the index is then ``0..n_obs-1``. A missing column raises ``KeyError`` naming the columns.
    """
    if isinstance(adata, AnnData):
        cols = list(adata.obs.columns) if columns is None else list(columns)
        _check_columns(cols, list(adata.obs.columns))
        return adata.obs[cols].reset_index(drop=True)
    with open_store(adata) as f:
        group = f["obs"]
        present = [str(c) for c in group.attrs.get("column-order", [])]
        cols = present if columns is None else list(columns)
        _check_columns(cols, present)
        return pd.DataFrame({c: read_elem(group[c]) for c in cols})


def read_var(adata: AnnData | str | os.PathLike[str]) -> pd.DataFrame:
    """The var table (genes) of ``adata``; from a path nothing else is read."""
    if isinstance(adata, AnnData):
        return adata.var.copy()
    with open_store(adata) as f:
        return read_elem(f["var"])


def _check_columns(cols: list[str], present: list[str]) -> None:
    missing = [c for c in cols if c not in present]
    if missing:
        raise KeyError(
            f"obs has no column {missing[0]!r} (obs columns: {present}). "
            "Fix: add it (see celltwin._keys) or ask for another column."
        )


def read_cells(
    adata: AnnData | str | os.PathLike[str],
    index: Sequence[int] | np.ndarray,
    *,
    layer: str | None = None,
    chunk_size: int = 20_000,
) -> sp.csr_matrix:
    """The rows ``index`` of X (or ``layers[layer]``) as one CSR matrix, in the order of ``index``.

    ``adata`` is an AnnData (in memory or backed), an ``.h5ad`` path or a ``.zarr`` store; from
    disk only the windows of at most ``chunk_size`` rows that hold a wanted row are read, so
    memory holds the rows asked for plus one window. Rows stored together cost one read; rows
    spread over the file cost one pass over it.
    """
    idx = np.asarray(index, dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    wanted, inverse = np.unique(idx[order], return_inverse=True)
    with _rows(adata, layer) as rows:
        if wanted.size and (wanted[0] < 0 or wanted[-1] >= rows.shape[0]):
            raise IndexError(f"row index out of range 0..{rows.shape[0] - 1}")
        got = read_rows(rows, wanted, chunk_size=chunk_size)
    back = np.empty(idx.size, dtype=np.int64)
    back[order] = inverse
    return sp.csr_matrix(got[back]) if not np.array_equal(back, np.arange(idx.size)) else got


@contextmanager
def _rows(adata: AnnData | str | os.PathLike[str], layer: str | None) -> Iterator[Any]:
    if isinstance(adata, AnnData):
        if layer is not None and layer not in adata.layers:
            raise KeyError(f"no layer {layer!r} (layers: {list(adata.layers.keys())}).")
        matrix = adata.X if layer is None else adata.layers[layer]
        yield sp.csr_matrix(matrix) if sp.issparse(matrix) and matrix.format != "csr" else matrix
        return
    with open_store(adata) as f:
        yield _matrix_rows(f, layer)


def iter_groups(
    adata: AnnData | str | os.PathLike[str],
    *,
    by: Sequence[str] | None = None,
    layer: str | None = None,
    max_cells: int = 200_000,
    chunk_size: int = 20_000,
) -> Iterator[tuple[str, AnnData]]:
    """Yield ``(name, cells)`` for every group of cells, reading from disk a batch at a time.

    Groups are the distinct values of the ``by`` columns (default: context, perturbation and,
    when present, dose), in sorted order; ``name`` joins the values with ``|`` as
    :func:`pseudobulk` names its rows. Consecutive groups are read together until a batch holds
    ``max_cells`` cells (a larger group is read alone), so memory holds one batch, whatever the
    size of the file. Throughput is in benchmarks/notes/dask.md.

    Parameters
    ----------
    adata
        An AnnData (in memory or backed), an ``.h5ad`` path or a ``.zarr`` store.
    by
        obs columns defining a group.
    layer
        Layer to read; ``None`` reads ``X``.
    max_cells
        Cells read per batch.
    chunk_size
        Rows per read from disk (see :func:`read_cells`).

    Yields
    ------
    name, AnnData
        The group's cells, in file order: ``X`` is CSR, ``obs`` holds the ``by`` columns with the
        positions of the cells in the file as index.
    """
    if max_cells < 1:
        raise ValueError(f"'max_cells' must be >= 1 (got {max_cells}).")
    cols = _default_by(list(read_obs(adata).columns)) if by is None else list(by)
    obs = read_obs(adata, columns=cols)
    codes, groups = _factorize(obs, cols)
    names = _group_names(groups)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(groups) + 1))
    with _rows(adata, layer) as rows:
        for first, last in _batches(np.diff(bounds), max_cells):
            index = np.sort(order[bounds[first] : bounds[last]])
            batch = read_rows(rows, index, chunk_size=chunk_size)
            for g in range(first, last):
                take = np.flatnonzero(codes[index] == g)
                cell_obs = obs.iloc[index[take]].copy()
                cell_obs.index = pd.Index(index[take].astype(str))
                yield str(names[g]), AnnData(X=batch[take], obs=cell_obs)
            del batch  # before the next batch is read: one batch in memory, not two


def _batches(sizes: np.ndarray, max_cells: int) -> Iterator[tuple[int, int]]:
    """Consecutive ranges ``[first, last)`` of items whose sizes add up to at most ``max_cells``."""
    first, total = 0, 0
    for i, size in enumerate(sizes.tolist()):
        if i > first and total + size > max_cells:
            yield first, i
            first, total = i, 0
        total += size
    if sizes.size:
        yield first, int(sizes.size)
