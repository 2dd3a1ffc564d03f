"""Where pseudobulk reads its rows: an in-memory or backed AnnData, an ``.h5ad`` file or a Zarr store.

Each source gives the obs columns needed, var, and a reader of row blocks over X or one layer;
from a path only those columns, var and that matrix are read (anndata's lazy element readers, so
nothing else of the file is loaded). :func:`read_rows` gathers any set of rows in bounded memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from anndata.io import read_elem, sparse_dataset

from .._keys import BATCH, CONTEXT, DOSE, PERTURBATION, UNS_KEY


@dataclass
class RowSource:
    """Obs columns, var, and a row-chunk reader over X or one layer, wherever the data lives."""

    n_obs: int
    obs: pd.DataFrame  # only the columns pseudobulk needs
    var: pd.DataFrame
    uns: dict[str, Any]  # the input's uns['celltwin'], carried over when X is summarised
    rows: Any  # object supporting rows[start:stop] -> ndarray | CSR matrix


def _default_by(columns: Sequence[str]) -> list[str]:
    by = [CONTEXT, PERTURBATION]
    if DOSE in columns:
        by.append(DOSE)
    return by


def _validate_by(by: Sequence[str], columns: Sequence[str], *, match_batch: bool) -> list[str]:
    by = [by] if isinstance(by, str) else list(by)
    if PERTURBATION not in by:
        raise ValueError(
            f"'by' must include {PERTURBATION!r} to find control cells (got {by!r}). "
            f"Fix: by=({CONTEXT!r}, {PERTURBATION!r}, ...)."
        )
    if len(set(by)) != len(by):
        raise ValueError(f"'by' has duplicate columns (got {by!r}).")
    needed = [*by, BATCH] if match_batch else by
    missing = [c for c in needed if c not in columns]
    if missing:
        col = missing[0]
        fix = (
            f"add obs[{BATCH!r}] or use match_batch=False"
            if col == BATCH and col not in by
            else f"add obs[{col!r}] (see celltwin._keys) or pass by= without it"
        )
        raise KeyError(
            f"obs has no column {col!r} (needed for pseudobulk; obs columns: {list(columns)}). "
            f"Fix: {fix}."
        )
    return by


@contextmanager
def open_source(
    adata: AnnData | str | os.PathLike[str],
    *,
    layer: str | None,
    by: Sequence[str] | None,
    match_batch: bool,
) -> Iterator[tuple[RowSource, list[str]]]:
    """The source of ``adata`` (an AnnData or an ``.h5ad`` path) and the checked ``by``."""
    if isinstance(adata, AnnData):
        yield _anndata_source(adata, layer=layer, by=by, match_batch=match_batch)
        return
    with open_store(adata) as f:
        yield _h5ad_source(f, layer=layer, by=by, match_batch=match_batch)


@contextmanager
def open_store(path: str | os.PathLike[str]) -> Iterator[Any]:
    """The root group of an ``.h5ad`` file (h5py) or a Zarr store (a ``.zarr`` folder), read-only."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"'adata' must be an AnnData, an .h5ad path or a .zarr store (got {type(path).__name__})."
        )
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or store: {str(path)!r}. Fix: check the path.")
    if path.is_dir():  # anndata writes Zarr stores as folders
        import zarr

        yield zarr.open_group(str(path), mode="r")
        return
    with h5py.File(path, "r") as f:
        yield f


@contextmanager
def open_rows(path: str | os.PathLike[str], *, layer: str | None) -> Iterator[Any]:
    """The row reader of ``X`` (or ``layers[layer]``) of an on-disk AnnData, read lazily."""
    with open_store(path) as f:
        yield _matrix_rows(f, layer)


def read_rows(rows: Any, index: np.ndarray, *, chunk_size: int = 20_000) -> sp.csr_matrix:
    """The rows ``index`` (sorted, unique) of a row reader, as one CSR matrix in that order.

    Windows of at most ``chunk_size`` rows starting at the next wanted row are read, so rows
    stored next to each other cost one read and scattered rows one pass over the matrix. The
    output is allocated once from the row lengths, so memory holds the rows gathered plus one
    window (not a second copy of the rows); column indices come sorted within each row.
    """
    index = np.asarray(index, dtype=np.int64)
    n_genes = int(rows.shape[1])
    indptr = _row_pointers(rows)
    lengths = indptr[index + 1] - indptr[index] if indptr is not None else None
    out_ptr = np.zeros(index.size + 1, dtype=np.int64)
    if lengths is not None:
        np.cumsum(lengths, out=out_ptr[1:])
    data: np.ndarray | None = None
    indices: np.ndarray | None = None
    parts: list[sp.csr_matrix] = []
    i = 0
    while i < index.size:
        start = int(index[i])
        stop = min(start + chunk_size, int(rows.shape[0]))
        j = int(np.searchsorted(index, stop, side="left"))
        block = rows[start:stop]
        block = block if sp.issparse(block) else sp.csr_matrix(np.asarray(block))
        local = index[i:j] - start
        part = sp.csr_matrix(block[local] if local.size < block.shape[0] else block)
        if lengths is None:
            parts.append(part)
        else:
            if data is None:
                data = np.empty(int(out_ptr[-1]), dtype=part.dtype)
                indices = np.empty(int(out_ptr[-1]), dtype=np.int32)
            assert indices is not None
            data[out_ptr[i] : out_ptr[j]] = part.data
            indices[out_ptr[i] : out_ptr[j]] = part.indices
        i = j
    if lengths is not None:
        if data is None:
            return sp.csr_matrix((index.size, n_genes), dtype=np.float32)
        out = sp.csr_matrix((data, indices, out_ptr), shape=(index.size, n_genes))
        out.sort_indices()  # in place: spares the sorted copy consumers would make
        return out
    if not parts:
        return sp.csr_matrix((0, n_genes), dtype=np.float32)
    return sp.csr_matrix(sp.vstack(parts, format="csr"))


def _row_pointers(rows: Any) -> np.ndarray | None:
    """``indptr`` of a CSR matrix, in memory or on disk (read once); None for dense rows."""
    if isinstance(rows, sp.csr_matrix | sp.csr_array):
        return np.asarray(rows.indptr)
    pointers = getattr(rows, "_indptr", None)
    return None if pointers is None else np.asarray(pointers)


def _anndata_source(
    adata: AnnData, *, layer: str | None, by: Sequence[str] | None, match_batch: bool
) -> tuple[RowSource, list[str]]:
    cols = list(adata.obs.columns)
    by_cols = _validate_by(_default_by(cols) if by is None else by, cols, match_batch=match_batch)
    if layer is None:
        matrix = adata.X
        if matrix is None:
            raise ValueError("adata.X is None. Fix: set X or pass layer=.")
    elif layer not in adata.layers:
        raise KeyError(
            f"no layer {layer!r} (layers: {list(adata.layers.keys())}). Fix: pass one of them "
            "or layer=None for X."
        )
    else:
        matrix = adata.layers[layer]
    if sp.issparse(matrix) and matrix.format != "csr":
        matrix = sp.csr_matrix(matrix)  # row slicing of in-memory CSC/COO is slow or missing
    elif getattr(matrix, "format", None) == "csc":  # backed CSC: every row block reads it all
        raise ValueError(_CSC_FIX)
    needed = [*by_cols, BATCH] if match_batch and BATCH not in by_cols else by_cols
    src = RowSource(
        n_obs=adata.n_obs,
        obs=adata.obs[needed].copy(),
        var=adata.var.copy(),
        uns=dict(adata.uns.get(UNS_KEY, {})),
        rows=matrix,
    )
    return src, by_cols


_CSC_FIX = (
    "the matrix is stored CSC (columns = genes), which cannot be streamed by rows. "
    "Fix: rewrite it as CSR, e.g. adata.X = adata.X.tocsr(); adata.write_h5ad(path)."
)


def _name(f: Any) -> str:
    return str(getattr(f, "filename", None) or getattr(f.store, "root", f.store))


def _matrix_rows(f: Any, layer: str | None) -> Any:
    """A row reader (``rows[start:stop]``) over ``X`` or ``layers[layer]`` of an open store."""
    if layer is None:
        elem = f.get("X")
        if elem is None:
            raise ValueError(f"{_name(f)} has no X. Fix: pass layer=.")
    else:
        layers = f.get("layers")
        if layers is None or layer not in layers:
            names = list(layers.keys()) if layers is not None else []
            raise KeyError(
                f"no layer {layer!r} in {_name(f)} (layers: {names}). Fix: pass one of them "
                "or layer=None for X."
            )
        elem = layers[layer]
    encoding = elem.attrs.get("encoding-type", "array")
    if encoding == "csc_matrix":
        raise ValueError(_CSC_FIX)
    return sparse_dataset(elem) if encoding == "csr_matrix" else elem


def _h5ad_source(
    f: Any, *, layer: str | None, by: Sequence[str] | None, match_batch: bool
) -> tuple[RowSource, list[str]]:
    obs_group = f["obs"]
    cols = [str(c) for c in obs_group.attrs.get("column-order", [])]
    by_cols = _validate_by(_default_by(cols) if by is None else by, cols, match_batch=match_batch)
    rows = _matrix_rows(f, layer)
    needed = [*by_cols, BATCH] if match_batch and BATCH not in by_cols else by_cols
    # Only the columns needed are read, once; the cell names are not needed at all.
    obs = pd.DataFrame({c: read_elem(obs_group[c]) for c in needed})
    uns = read_elem(f["uns"][UNS_KEY]) if "uns" in f and UNS_KEY in f["uns"] else {}
    src = RowSource(n_obs=len(obs), obs=obs, var=read_elem(f["var"]), uns=dict(uns), rows=rows)
    return src, by_cols
