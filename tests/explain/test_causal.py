"""celltwin.explain.causal_map / correlation_map / score_map (issue 19, point 5)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from celltwin.eval import rank_sum_test
from celltwin.explain import CausalMap, causal_map, correlation_map, score_map
from celltwin.simulate import simulate


@pytest.fixture(scope="module")
def sim():
    return simulate(
        n_genes=80, n_tfs=8, n_perturbations=6, combinations=1, cells_per_condition=80, seed=4
    )


def test_tests_are_the_de_engine_per_context(sim) -> None:
    cmap = causal_map(sim.adata)
    adata = sim.adata[sim.adata.obs["context"] == "A"]
    labels = adata.obs["perturbation"].astype(str).to_numpy()
    de = rank_sum_test(adata.X, labels)
    source = de.groups[0]
    rows = cmap.tests[(cmap.tests["context"] == "A") & (cmap.tests["source"] == source)]
    keep = adata.var_names != source  # no self-edge
    np.testing.assert_allclose(rows["pvalue"], de.pvalue[0][keep], rtol=1e-12)
    np.testing.assert_allclose(rows["fdr"], de.fdr[0][keep], rtol=1e-12)
    x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    x = x.astype(np.float64)
    delta = x[labels == source].mean(0) - x[labels == "control"].mean(0)
    np.testing.assert_allclose(rows["delta"], delta[keep], rtol=1e-6, atol=1e-9)
    combo = [p for p in set(labels) if "+" in p]
    assert combo and all(p in cmap.skipped for p in combo)
    assert not cmap.tests["source"].str.contains("+", regex=False).any()


def test_edges_combine_contexts_with_bonferroni(sim) -> None:
    cmap = causal_map(sim.adata, alpha=0.05)
    wide = cmap.tests.pivot_table(index=["source", "target"], columns="context", values="fdr")
    combined = np.minimum(1.0, 2 * wide.min(axis=1))
    called = combined[combined < 0.05]
    edges = cmap.edges.set_index(["source", "target"])
    assert set(edges.index) == set(called.index)
    np.testing.assert_allclose(edges["fdr"].reindex(called.index), called, rtol=1e-12)
    assert set(edges["sign"]) <= {-1, 1} and (edges["n_contexts"] == 2).all()


def test_causal_map_beats_correlation_on_the_true_network(sim) -> None:
    cmap, corr = causal_map(sim.adata), correlation_map(sim.adata)
    a, b = score_map(cmap, sim.grn, reach=True), score_map(corr, sim.grn, reach=True)
    assert a["called"] > 0 and a["precision"] > 0.8
    assert a["precision"] > b["precision"]
    direct = score_map(cmap, sim.grn)
    assert direct["sign_agreement"] > 0.7  # knockouts lower activated targets


def test_correlation_r_equals_numpy(sim) -> None:
    corr = correlation_map(sim.adata, sources=["TF1" if "TF1" in sim.adata.var_names else
                                                sim.adata.var_names[0]])  # fmt: skip
    source = corr.tests["source"].iloc[0]
    adata = sim.adata[sim.adata.obs["context"] == "B"]
    x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    j = list(adata.var_names).index(source)
    rows = corr.tests[corr.tests["context"] == "B"].set_index("target")
    for k in (0, 5, 40):
        gene = adata.var_names[k]
        if gene == source:
            continue
        r = np.corrcoef(x[:, j].astype(float), x[:, k].astype(float))[0, 1]
        assert rows.loc[gene, "delta"] == pytest.approx(r, abs=1e-9)


def test_write_csv_and_graphml_round_trip(sim, tmp_path) -> None:
    cmap = causal_map(sim.adata)
    csv, graphml = cmap.write(tmp_path)
    back = pd.read_csv(csv)
    assert list(back.columns) == list(cmap.edges.columns) and len(back) == len(cmap.edges)
    graph = nx.read_graphml(graphml)
    assert graph.is_directed() and graph.number_of_edges() == len(cmap.edges)
    first = cmap.edges.iloc[0]
    assert graph.edges[first["source"], first["target"]]["sign"] == first["sign"]


def test_score_map_by_hand() -> None:
    truth = pd.DataFrame({"source": ["A", "A", "B"], "target": ["x", "y", "z"], "sign": [1, -1, 1]})
    called = pd.DataFrame({"source": ["A", "A", "B"], "target": ["x", "z", "z"],
                           "sign": [-1, -1, 1]})  # fmt: skip
    s = score_map(called, truth, sources=["A", "B"], genes=["x", "y", "z"])
    assert (s["pairs"], s["true"], s["called"], s["true_positives"]) == (6, 3, 3, 2)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["sign_agreement"] == pytest.approx(0.5)  # A->x agrees (KO lowers), B->z does not
    # reach: A -> B -> z makes A -> z true
    chain = pd.DataFrame({"source": ["A", "B"], "target": ["B", "z"]})
    r = score_map(called, chain, sources=["A", "B"], genes=["x", "y", "z", "B"], reach=True)
    assert r["true"] == 3 and r["true_positives"] == 2
    u = score_map(called, pd.DataFrame({"source": ["x"], "target": ["A"]}), directed=False,
                  sources=["A"], genes=["x"])  # fmt: skip
    assert u["true_positives"] == 1


def test_bad_screens_are_refused(sim) -> None:
    with pytest.raises(ValueError, match="no control cells"):
        causal_map(sim.adata[sim.adata.obs["perturbation"] != "control"].copy())
    with pytest.raises(KeyError, match="obs lacks"):
        causal_map(sim.adata[:, :5].copy().__class__(X=sim.adata.X[:10]))
    with pytest.raises(ValueError, match="alpha must be in"):
        causal_map(sim.adata, alpha=1.5)
    assert isinstance(causal_map(sim.adata), CausalMap)
