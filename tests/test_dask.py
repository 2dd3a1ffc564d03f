"""The Dask path gives the in-memory answer, on a local multi-process cluster (issue 17, point 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from celltwin._dask import check_scheduler, run_tasks
from celltwin._keys import CONTEXT, PERTURBATION
from celltwin.eval import differential_expression, rank_sum_test, welch_t_test
from celltwin.pp import pseudobulk
from celltwin.simulate import write_h5ad

distributed = pytest.importorskip("distributed")

BY = [CONTEXT, PERTURBATION]


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """Two worker processes, one thread each: what a cluster of two machines looks like."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        c.wait_for_workers(2)
        yield c


def _in_memory(path: Path) -> tuple[ad.AnnData, dict, dict]:
    adata = ad.read_h5ad(path)
    wilcoxon, welch = {}, {}
    for context in sorted(adata.obs[CONTEXT].astype(str).unique()):
        sub = adata[adata.obs[CONTEXT] == context]
        labels = sub.obs[PERTURBATION].astype(str).to_numpy()
        wilcoxon[context] = rank_sum_test(sub.X, labels)
        welch[context] = welch_t_test(sub.X, labels)
    return pseudobulk(adata, by=BY), wilcoxon, welch


def _check(path: Path, client: object, *, max_cells: int, tol: float = 1e-6) -> None:
    pb_ref, wilcoxon_ref, welch_ref = _in_memory(path)
    pb = pseudobulk(path, by=BY, scheduler=client, chunk_size=5_000)
    np.testing.assert_array_equal(pb.obs_names, pb_ref.obs_names)
    for layer in (None, "delta", "var"):
        got = pb.X if layer is None else pb.layers[layer]
        ref = pb_ref.X if layer is None else pb_ref.layers[layer]
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol, equal_nan=True)
    for method, refs in (("wilcoxon", wilcoxon_ref), ("welch", welch_ref)):
        got_de = differential_expression(
            path, method=method, by=BY, max_cells=max_cells, scheduler=client
        )
        assert got_de.keys() == refs.keys()
        for name, res in got_de.items():
            np.testing.assert_array_equal(res.groups, refs[name].groups)
            for field in ("log2_fold_change", "pvalue", "fdr", "statistic"):
                a, b = getattr(res, field), getattr(refs[name], field)
                # Welch's t from streamed moments: relative 1e-6 (t can be ~50).
                rtol = tol if method == "welch" and field == "statistic" else 0
                np.testing.assert_allclose(a, b, rtol=rtol, atol=tol, err_msg=f"{method} {field}")


def test_dask_equals_in_memory(tmp_path: Path, client: object) -> None:
    path = write_h5ad(tmp_path / "cells.h5ad", n_cells=3_000, n_genes=40, n_perturbations=5)
    _check(path, client, max_cells=800)  # several DE batches per context, spread over workers


@pytest.mark.slow
def test_dask_equals_in_memory_on_100k_cells(tmp_path: Path, client: object) -> None:
    path = write_h5ad(
        tmp_path / "cells.h5ad",
        n_cells=100_000,
        n_genes=200,
        n_tfs=20,
        contexts=("K562", "RPE1", "HepG2"),
        n_perturbations=40,
        seed=7,
    )
    _check(path, client, max_cells=40_000)


def _square(x: int) -> int:
    return x * x


def test_run_tasks_same_here_and_on_the_cluster(client: object) -> None:
    args = [(i,) for i in range(7)]
    assert run_tasks(_square, args) == run_tasks(_square, args, scheduler=client)


def test_local_starts_a_cluster_for_the_call() -> None:
    args = [(i,) for i in range(3)]
    assert run_tasks(_square, args, scheduler="local") == [0, 1, 4]


def test_scheduler_values_are_checked() -> None:
    check_scheduler(None)
    check_scheduler("local")
    check_scheduler("tcp://10.0.0.5:8786")
    with pytest.raises(ValueError, match="dask scheduler"):
        check_scheduler("cluster")
    with pytest.raises(TypeError, match=r"distributed\.Client"):
        check_scheduler(8786)
