"""Cells read from disk by group: iter_groups, read_cells, read_obs (issue 17, point 1)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from celltwin._keys import CONTEXT, PERTURBATION
from celltwin.pp import iter_groups, read_cells, read_obs
from celltwin.simulate import write_h5ad


@pytest.fixture(scope="module")
def cells_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("groups") / "cells.h5ad"
    return write_h5ad(path, n_cells=3000, n_genes=40, n_perturbations=6, seed=3)


def test_iter_groups_yields_every_cell_of_each_group(cells_file: Path) -> None:
    adata = ad.read_h5ad(cells_file)
    dense = adata.X.toarray()
    seen: list[int] = []
    names = []
    for name, cells in iter_groups(cells_file, by=[CONTEXT, PERTURBATION], max_cells=500):
        rows = cells.obs.index.astype(int).to_numpy()
        seen.extend(rows.tolist())
        names.append(name)
        assert sp.issparse(cells.X)
        np.testing.assert_array_equal(cells.X.toarray(), dense[rows])
        context, perturbation = name.split("|")
        assert (adata.obs[CONTEXT].iloc[rows] == context).all()
        assert (adata.obs[PERTURBATION].iloc[rows].astype(str) == perturbation).all()
        assert np.all(np.diff(rows) > 0)  # file order
    assert sorted(seen) == list(range(adata.n_obs))  # every cell once
    expected = adata.obs.groupby([CONTEXT, PERTURBATION], observed=True).ngroups
    assert len(names) == len(set(names)) == expected


def test_iter_groups_batch_size_does_not_change_the_groups(cells_file: Path) -> None:
    small = {n: c.X.toarray() for n, c in iter_groups(cells_file, max_cells=1, chunk_size=17)}
    large = {n: c.X.toarray() for n, c in iter_groups(ad.read_h5ad(cells_file))}
    assert small.keys() == large.keys()
    for name in small:
        np.testing.assert_array_equal(small[name], large[name])


def test_read_cells_in_the_order_asked(cells_file: Path) -> None:
    adata = ad.read_h5ad(cells_file)
    index = [2999, 5, 5, 1200, 0]
    got = read_cells(cells_file, index, chunk_size=64)
    np.testing.assert_array_equal(got.toarray(), adata.X[index].toarray())
    np.testing.assert_array_equal(read_cells(adata, index).toarray(), got.toarray())
    with pytest.raises(IndexError, match="out of range"):
        read_cells(cells_file, [3000])


def test_read_obs_reads_only_the_columns_asked(cells_file: Path) -> None:
    obs = read_obs(cells_file, columns=[PERTURBATION])
    assert list(obs.columns) == [PERTURBATION]
    expected = ad.read_h5ad(cells_file).obs[PERTURBATION].astype(str).to_numpy()
    np.testing.assert_array_equal(obs[PERTURBATION].astype(str).to_numpy(), expected)
    with pytest.raises(KeyError, match=r"no column 'time'.*Fix"):
        read_obs(cells_file, columns=["time"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_obs(cells_file.parent / "nope.h5ad")
    with pytest.raises(ValueError, match="'max_cells' must be >= 1"):
        next(iter_groups(cells_file, max_cells=0))


def test_read_cells_from_a_dense_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.poisson(0.5, size=(300, 7)).astype(np.float32)
    ad.AnnData(X).write_h5ad(tmp_path / "dense.h5ad")
    index = np.array([299, 3, 150, 4])
    got = read_cells(tmp_path / "dense.h5ad", index, chunk_size=50)
    np.testing.assert_array_equal(got.toarray(), X[index])
