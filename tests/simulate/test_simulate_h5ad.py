"""celltwin.simulate.write_h5ad: chunked on-disk output that anndata reads, equal to simulate()."""

from __future__ import annotations

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltwin._keys import CONTEXT, CONTROL, COUNTS_LAYER, DOSE, PERTURBATION, UNS_KEY
from celltwin.io import check
from celltwin.simulate import simulate, write_h5ad

MODEL = dict(n_genes=100, n_tfs=10, n_perturbations=6, combinations=2, drugs=1, doses=(0.1, 1.0),
             n_batches=2, seed=11)  # fmt: skip


def _group_keys(obs: pd.DataFrame) -> np.ndarray:
    return (obs[CONTEXT].astype(str) + "|" + obs[PERTURBATION].astype(str) + "|"
            + obs[DOSE].astype(str)).to_numpy()  # fmt: skip


@pytest.mark.parametrize("chunk_size", [700, 2048])
def test_equals_simulate_for_any_chunk_size(tmp_path, chunk_size: int) -> None:
    sim = simulate(**MODEL, cells_per_condition=30)
    path = write_h5ad(tmp_path / "cells.h5ad", n_cells=sim.adata.n_obs, chunk_size=chunk_size,
                      compression="lzf", **MODEL)  # fmt: skip
    back = ad.read_h5ad(path)
    assert (back.layers[COUNTS_LAYER] != sim.adata.layers[COUNTS_LAYER]).nnz == 0
    assert back.layers[COUNTS_LAYER].dtype == np.int32
    np.testing.assert_array_equal(back.X.toarray(), sim.adata.X.toarray())
    pd.testing.assert_frame_equal(back.obs, sim.adata.obs)
    pd.testing.assert_frame_equal(back.var, sim.adata.var)
    record = back.uns[UNS_KEY]["simulation"]
    assert record["seed"] == MODEL["seed"] and record["n_cells"] == sim.adata.n_obs
    assert back.uns[UNS_KEY]["normalization"]["method"] == "log1p_total"


def test_large_file_reads_backed_with_the_same_distribution(tmp_path) -> None:
    n_cells = 20_000
    path = write_h5ad(tmp_path / "big.h5ad", n_cells=n_cells, chunk_size=5_000, **MODEL)
    with h5py.File(path) as f:  # 64-bit indptr, so files past 2^31 non-zeros stay valid
        assert f["X/indptr"].dtype == np.int64 and f["layers/counts/indptr"].dtype == np.int64
    backed = ad.read_h5ad(path, backed="r")
    try:
        assert backed.shape == (n_cells, MODEL["n_genes"])
        assert backed.isbacked and backed.obs_names.is_unique
        assert check(backed, require_counts=True) == []
        obs = backed.obs.copy()
        keys = _group_keys(obs)
        sums, squares = [], []
        for start in range(0, n_cells, 4_000):
            block = backed.X[start : start + 4_000]
            assert sp.issparse(block)
            dense = pd.DataFrame(block.toarray())
            sums.append(dense.groupby(keys[start : start + 4_000]).sum())
            squares.append((dense**2).groupby(keys[start : start + 4_000]).sum())
    finally:
        backed.file.close()
    total = pd.concat(sums).groupby(level=0).sum()
    total_sq = pd.concat(squares).groupby(level=0).sum()
    n_per_group = pd.Series(keys).value_counts()
    disk_means = total.div(n_per_group.reindex(total.index), axis=0)
    # Cells are split as in simulate(): each context's control counts twice a condition.
    control = n_per_group[[k for k in n_per_group.index if f"|{CONTROL}|" in k]]
    others = n_per_group.drop(control.index)
    assert abs(control.mean() / others.mean() - 2) < 0.01
    assert n_per_group.sum() == n_cells

    sim = simulate(**MODEL, cells_per_condition=150)
    mem = sim.adata
    mem_x = pd.DataFrame(mem.X.toarray()).groupby(_group_keys(mem.obs))
    mem_means, mem_var, mem_n = mem_x.mean(), mem_x.var(), mem_x.size()
    groups = mem_means.index
    assert set(groups) == set(disk_means.index)
    n_disk = n_per_group.reindex(groups).to_numpy()[:, None]
    disk_var = (total_sq.loc[groups] - total.loc[groups] ** 2 / n_disk) / (n_disk - 1)
    # Two samples of the same model: group means differ by sampling noise only, so the
    # standardised differences look standard normal (E|z| = 0.80).
    se = np.sqrt(mem_var.to_numpy() / mem_n.to_numpy()[:, None] + disk_var.to_numpy() / n_disk)
    diff = disk_means.loc[groups].to_numpy() - mem_means.to_numpy()
    ok = se > 0
    z = np.abs(diff[ok] / se[ok])
    assert 0.6 < z.mean() < 1.0 and (z > 4).mean() < 0.005
    lib_disk = np.asarray(ad.read_h5ad(path).layers[COUNTS_LAYER].sum(axis=1)).ravel()
    lib_mem = np.asarray(mem.layers[COUNTS_LAYER].sum(axis=1)).ravel()
    assert abs(np.median(lib_disk) / np.median(lib_mem) - 1) < 0.05


@pytest.mark.parametrize(
    ("changes", "key"),
    [({"n_cells": 0}, "'n_cells'"), ({"chunk_size": 0}, "'chunk_size'"),
     ({"compression": "zip"}, "'compression'"), ({"n_tfs": 100}, "'n_tfs'")],
)  # fmt: skip
def test_validation_names_the_key(tmp_path, changes: dict, key: str) -> None:
    args = {"n_cells": 10, **MODEL, **changes}
    with pytest.raises(ValueError, match=key):
        write_h5ad(tmp_path / "x.h5ad", **args)
    assert not (tmp_path / "x.h5ad").exists()
