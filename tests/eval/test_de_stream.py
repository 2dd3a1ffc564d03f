"""Differential expression streamed from disk equals the in-memory engine (issue 17, point 1)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from celltwin._keys import CONTEXT, PERTURBATION
from celltwin.eval import DEResult, differential_expression, rank_sum_test, welch_t_test
from celltwin.simulate import write_h5ad

BY = [CONTEXT, PERTURBATION]


@pytest.fixture(scope="module")
def cells_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("de") / "cells.h5ad"
    return write_h5ad(path, n_cells=4000, n_genes=50, n_perturbations=6, seed=5)


def in_memory(path: Path, method: str) -> dict[str, DEResult]:
    """The reference: the in-memory test on each context's cells."""
    adata = ad.read_h5ad(path)
    test = rank_sum_test if method == "wilcoxon" else welch_t_test
    out = {}
    for context in sorted(adata.obs[CONTEXT].astype(str).unique()):
        sub = adata[adata.obs[CONTEXT] == context]
        out[context] = test(sub.X, sub.obs[PERTURBATION].astype(str).to_numpy())
    return out


def assert_same(got: dict[str, DEResult], ref: dict[str, DEResult], *, rtol: float) -> None:
    assert got.keys() == ref.keys()
    for name, res in got.items():
        np.testing.assert_array_equal(res.groups, ref[name].groups)
        np.testing.assert_array_equal(res.n_cells, ref[name].n_cells)
        assert res.n_control == ref[name].n_control
        for field in ("log2_fold_change", "pvalue", "fdr", "statistic"):
            a, b = getattr(res, field), getattr(ref[name], field)
            np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-6 if rtol else 0, err_msg=field)


@pytest.mark.parametrize("max_cells", [10_000, 700])
def test_wilcoxon_from_disk_is_exactly_the_in_memory_test(cells_file: Path, max_cells: int) -> None:
    # 700 cells: each context's groups are tested in several batches, each with its control.
    got = differential_expression(cells_file, by=BY, max_cells=max_cells, chunk_size=97)
    assert_same(got, in_memory(cells_file, "wilcoxon"), rtol=0)


def test_welch_from_one_streamed_pass_matches(cells_file: Path) -> None:
    got = differential_expression(cells_file, method="welch", by=BY, chunk_size=333)
    # The in-memory engine squares float32 values in float32, the stream in float64.
    assert_same(got, in_memory(cells_file, "welch"), rtol=1e-6)


def test_in_memory_input_and_dose_labels(cells_file: Path) -> None:
    adata = ad.read_h5ad(cells_file)
    from_memory = differential_expression(adata, by=BY, max_cells=900)
    assert_same(from_memory, in_memory(cells_file, "wilcoxon"), rtol=0)
    # The default by holds dose; genetic perturbations have none, so labels stay the same.
    with_dose = differential_expression(cells_file, max_cells=900)
    assert_same(with_dose, from_memory, rtol=0)


def test_bad_arguments_explain_the_fix(cells_file: Path) -> None:
    with pytest.raises(ValueError, match="'method' must be one of"):
        differential_expression(cells_file, method="t")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must include 'perturbation'"):
        differential_expression(cells_file, by=[CONTEXT])
    with pytest.raises(TypeError, match="needs the data as a file path"):
        differential_expression(ad.read_h5ad(cells_file), scheduler="local")
    with pytest.raises(ValueError, match="scheduler address"):
        differential_expression(cells_file, scheduler="my-cluster")
