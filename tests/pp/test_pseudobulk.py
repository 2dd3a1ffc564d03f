"""Streaming pseudobulk agrees with a plain in-memory groupby, on every input kind and chunking."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltwin._keys import (
    BATCH,
    CONTEXT,
    CONTROL,
    COUNTS_LAYER,
    DOSE,
    PERTURBATION,
    PERTURBATION_TYPE,
    UNS_KEY,
)
from celltwin._settings import shared_dir
from celltwin.pp import log_normalize, pseudobulk

N_GENES = 23


def _cells(*, sparse: bool, seed: int = 0, n: int = 503) -> ad.AnnData:
    """Two contexts x three batches, controls everywhere, a combo, two doses, a one-cell group."""
    rng = np.random.default_rng(seed)
    pert = rng.choice([CONTROL, "A", "B", "A+B"], size=n, p=[0.3, 0.3, 0.2, 0.2]).astype(object)
    context = rng.choice(["K562", "RPE1"], size=n)
    batch = rng.choice(["b1", "b2", "b3"], size=n, p=[0.5, 0.3, 0.2])
    # Every (context, batch) gets at least one control cell.
    for i, (c, b) in enumerate((c, b) for c in ("K562", "RPE1") for b in ("b1", "b2", "b3")):
        pert[i], context[i], batch[i] = CONTROL, c, b
    pert[-1], context[-1] = "C", "RPE1"  # a group of one cell: variance undefined
    dose = np.where(pert == CONTROL, "", rng.choice(["0.1", "1"], size=n)).astype(object)
    dose[pert == "A+B"] = "1+1"
    ptype = np.where(pert == CONTROL, "control", "crispri")
    obs = pd.DataFrame(
        {
            PERTURBATION: pd.Categorical(pert),
            PERTURBATION_TYPE: pd.Categorical(ptype),
            CONTEXT: pd.Categorical(context),
            BATCH: pd.Categorical(batch),
            DOSE: dose,
        },
        index=[f"cell{i}" for i in range(n)],
    )
    # Perturbed cells shift some genes, batches shift all: deltas and batch matching both matter.
    rate = rng.gamma(2.0, 1.0, size=N_GENES)[None, :] * np.ones((n, 1))
    rate[pert == "A", :5] *= 4
    rate[batch == "b2"] *= 2
    counts = rng.poisson(rate).astype(np.float32)
    adata = ad.AnnData(
        sp.csr_matrix(counts) if sparse else counts,
        obs=obs,
        var=pd.DataFrame(index=[f"G{j}" for j in range(N_GENES)]),
    )
    log_normalize(adata)
    return adata


def _reference(adata: ad.AnnData, by: list[str], *, match_batch: bool, layer=None) -> dict:
    """Group statistics by pandas, controls matched by an explicit loop over groups."""
    mat = adata.X if layer is None else adata.layers[layer]
    x = np.asarray(mat.toarray() if sp.issparse(mat) else mat, dtype=np.float64)
    obs = adata.obs[by + ([BATCH] if BATCH not in by else [])].astype(str)
    keys = list(obs[by].itertuples(index=False, name=None))
    frame = pd.DataFrame(x)
    frame.index = pd.MultiIndex.from_tuples(keys, names=by)
    grouped = frame.groupby(level=by, sort=True)
    mean, var, size = grouped.mean(), grouped.var(ddof=1), grouped.size()
    match_cols = [c for c in by if c not in (PERTURBATION, DOSE)]
    is_ctrl = obs[PERTURBATION].to_numpy() == CONTROL
    delta, n_ctrl = [], []
    for key in mean.index:
        in_group = np.all(obs[by].to_numpy() == np.array(key, dtype=object), axis=1)
        same = np.all(obs[match_cols].to_numpy() == obs[match_cols].to_numpy()[in_group][0], axis=1)
        if match_batch:
            ctrl_mean, n_c = np.zeros(x.shape[1]), 0
            batches, counts = np.unique(obs[BATCH].to_numpy()[in_group], return_counts=True)
            for b, k in zip(batches, counts, strict=True):
                pool = same & is_ctrl & (obs[BATCH].to_numpy() == b)
                ctrl_mean += k / in_group.sum() * x[pool].mean(axis=0)
                n_c += pool.sum()
        else:
            pool = same & is_ctrl
            ctrl_mean, n_c = x[pool].mean(axis=0), pool.sum()
        delta.append(x[in_group].mean(axis=0) - ctrl_mean)
        n_ctrl.append(n_c)
    return {
        "keys": [tuple(k) for k in mean.index],
        "mean": mean.to_numpy(),
        "var": var.to_numpy(),
        "delta": np.array(delta),
        "n_cells": size.to_numpy(),
        "n_control_cells": np.array(n_ctrl),
    }


def _assert_matches(pb: ad.AnnData, ref: dict, by: list[str]) -> None:
    got = {tuple(r) for r in pb.obs[by].astype(str).itertuples(index=False, name=None)}
    assert got == set(ref["keys"])
    order = (
        pb.obs[by].astype(str).apply(tuple, axis=1).map({k: i for i, k in enumerate(ref["keys"])})
    )
    idx = order.to_numpy(dtype=int)
    np.testing.assert_array_equal(pb.obs["n_cells"].to_numpy(), ref["n_cells"][idx])
    np.testing.assert_array_equal(pb.obs["n_control_cells"].to_numpy(), ref["n_control_cells"][idx])
    np.testing.assert_allclose(pb.X, ref["mean"][idx], rtol=0, atol=1e-6)
    np.testing.assert_allclose(pb.layers["delta"], ref["delta"][idx], rtol=0, atol=1e-6)
    np.testing.assert_allclose(pb.layers["var"], ref["var"][idx], rtol=1e-9, atol=1e-6)


def _as_input(adata: ad.AnnData, kind: str, tmp_path: Path):
    if kind == "memory":
        return adata
    if kind == "zarr":  # anndata's Zarr store, read lazily like an .h5ad path
        with warnings.catch_warnings():  # anndata announces its next default zarr format
            warnings.simplefilter("ignore", UserWarning)
            adata.write_zarr(tmp_path / "cells.zarr")
        return tmp_path / "cells.zarr"
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path if kind == "path" else ad.read_h5ad(path, backed="r")


BY = [CONTEXT, PERTURBATION, DOSE]


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
@pytest.mark.parametrize("kind", ["memory", "backed", "path", "zarr"])
@pytest.mark.parametrize("chunk_size", [1000, 64, 7])
def test_matches_groupby(tmp_path: Path, sparse: bool, kind: str, chunk_size: int) -> None:
    adata = _cells(sparse=sparse)
    pb = pseudobulk(_as_input(adata, kind, tmp_path), chunk_size=chunk_size)
    _assert_matches(pb, _reference(adata, BY, match_batch=False), BY)
    assert list(pb.var_names) == list(adata.var_names)


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
@pytest.mark.parametrize("kind", ["memory", "backed", "path"])
def test_match_batch_matches_reference(tmp_path: Path, sparse: bool, kind: str) -> None:
    adata = _cells(sparse=sparse, seed=1)
    pb = pseudobulk(_as_input(adata, kind, tmp_path), match_batch=True, chunk_size=50)
    ref = _reference(adata, BY, match_batch=True)
    _assert_matches(pb, ref, BY)
    # Batch composition differs between groups, so matching by batch must change some deltas.
    unmatched = _reference(adata, BY, match_batch=False)
    assert np.abs(ref["delta"] - unmatched["delta"]).max() > 0.01


def test_layer_and_extra_by_column(tmp_path: Path) -> None:
    adata = _cells(sparse=True, seed=2)
    by = [CONTEXT, BATCH, PERTURBATION, DOSE]  # batch in `by`: controls matched per batch
    pb = pseudobulk(_as_input(adata, "path", tmp_path), layer=COUNTS_LAYER, by=by, chunk_size=33)
    _assert_matches(pb, _reference(adata, by, match_batch=False, layer=COUNTS_LAYER), by)
    rec = pb.uns[UNS_KEY]
    assert rec["pseudobulk"]["layer"] == COUNTS_LAYER
    assert "normalization" not in rec  # describes X of the cells, not this layer


def test_controls_default_by_and_metadata(tmp_path: Path) -> None:
    adata = _cells(sparse=True, seed=3)
    del adata.obs[DOSE]
    pb = pseudobulk(adata)
    by = [CONTEXT, PERTURBATION]
    assert list(pb.obs.columns) == [*by, "n_cells", "n_control_cells"]
    _assert_matches(pb, _reference(adata, by, match_batch=False), by)
    ctrl = (pb.obs[PERTURBATION] == CONTROL).to_numpy()
    assert ctrl.sum() == 2
    assert np.all(pb.layers["delta"][ctrl] == 0.0)
    np.testing.assert_array_equal(pb.obs["n_cells"][ctrl], pb.obs["n_control_cells"][ctrl])
    assert pb.obs["n_cells"].sum() == adata.n_obs
    one = (pb.obs["n_cells"] == 1).to_numpy()
    assert one.sum() == 1 and np.isnan(pb.layers["var"][one]).all()
    assert pb.uns[UNS_KEY]["pseudobulk"]["by"] == by
    assert pb.uns[UNS_KEY]["normalization"]["method"] == "log1p_total"
    assert pb.obs_names.is_unique
    # The table itself is a valid h5ad.
    pb.write_h5ad(tmp_path / "pb.h5ad")
    back = ad.read_h5ad(tmp_path / "pb.h5ad")
    np.testing.assert_array_equal(back.layers["delta"], pb.layers["delta"])


def test_context_without_controls_names_it() -> None:
    adata = _cells(sparse=True)
    drop = (adata.obs[CONTEXT] == "RPE1") & (adata.obs[PERTURBATION] == CONTROL)
    with pytest.raises(ValueError, match=r"context='RPE1'.*Fix: drop those cells"):
        pseudobulk(adata[~drop.to_numpy()].copy())


def test_batch_without_controls_names_it() -> None:
    adata = _cells(sparse=True)
    drop = (
        (adata.obs[CONTEXT] == "K562")
        & (adata.obs[BATCH] == "b3")
        & (adata.obs[PERTURBATION] == CONTROL)
    )
    cells = adata[~drop.to_numpy()].copy()
    pseudobulk(cells)  # fine without batch matching
    with pytest.raises(ValueError, match=r"context='K562', batch='b3'.*match_batch=False"):
        pseudobulk(cells, match_batch=True)


def test_bad_arguments_explain_the_fix(tmp_path: Path) -> None:
    adata = _cells(sparse=True)
    with pytest.raises(KeyError, match=r"no column 'time'.*Fix"):
        pseudobulk(adata, by=[CONTEXT, PERTURBATION, "time"])
    with pytest.raises(ValueError, match=r"must include 'perturbation'"):
        pseudobulk(adata, by=[CONTEXT, DOSE])
    with pytest.raises(KeyError, match=r"no layer 'nope'"):
        pseudobulk(adata, layer="nope")
    with pytest.raises(ValueError, match=r"'chunk_size' must be >= 1"):
        pseudobulk(adata, chunk_size=0)
    no_batch = adata.copy()
    del no_batch.obs[BATCH]
    with pytest.raises(KeyError, match=r"no column 'batch'.*match_batch=False"):
        pseudobulk(no_batch, match_batch=True)
    csc = adata.copy()
    csc.X = sp.csc_matrix(csc.X)
    csc.write_h5ad(tmp_path / "csc.h5ad")
    with pytest.raises(ValueError, match=r"CSC.*tocsr"):
        pseudobulk(tmp_path / "csc.h5ad")
    # In memory, CSC is converted once and gives the same answer as CSR.
    np.testing.assert_allclose(pseudobulk(csc).layers["delta"], pseudobulk(adata).layers["delta"])


@pytest.mark.shared
def test_papalexi_batch_matched_agrees() -> None:
    """Real CRISPR screen (3 replicates): batch-matched deltas agree with the reference."""
    path = shared_dir() / "data" / "papalexi2021_thp1_subset.h5ad"
    if not path.exists():
        pytest.skip(f"real data not found at {path}; set CELLTWIN_SHARED to the shared folder")
    raw = ad.read_h5ad(path)
    target = raw.obs["target_gene_max"].astype(str)
    obs = pd.DataFrame(
        {
            PERTURBATION: np.where(target == "non-targeting", CONTROL, target),
            CONTEXT: "THP-1",
            BATCH: raw.obs["bio_rep"].astype(str).to_numpy(),
        },
        index=raw.obs_names,
    )
    cells = ad.AnnData(sp.csr_matrix(raw.X), obs=obs, var=pd.DataFrame(index=raw.var_names))
    log_normalize(cells)
    pb = pseudobulk(cells, match_batch=True, chunk_size=4096)
    by = [CONTEXT, PERTURBATION]
    _assert_matches(pb, _reference(cells, by, match_batch=True), by)
    assert pb.n_obs == target.nunique()


def test_streams_in_row_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From a path, the matrix is only ever read in row blocks of at most chunk_size."""
    import celltwin.pp._rows as module

    reads: list[tuple[int, int]] = []
    open_sparse = module.sparse_dataset

    class Recorder:
        def __init__(self, elem) -> None:
            self._inner = open_sparse(elem)

        def __getitem__(self, rows: slice):
            reads.append((rows.start, rows.stop))
            return self._inner[rows]

    adata = _cells(sparse=True)
    monkeypatch.setattr(module, "sparse_dataset", Recorder)
    pseudobulk(_as_input(adata, "path", tmp_path), chunk_size=100)
    assert reads == [(s, min(s + 100, adata.n_obs)) for s in range(0, adata.n_obs, 100)]
