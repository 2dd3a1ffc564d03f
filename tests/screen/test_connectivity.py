"""celltwin.screen connectivity: CMap's WTCS against a direct reference, its null, NCS and tau."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from celltwin.screen import (
    Query,
    connectivity,
    connectivity_matrix,
    mimic,
    query_from_scores,
    reverse,
    wtcs,
)


def _es_reference(profile: np.ndarray, members: set[int]) -> float:
    """ES of Subramanian et al. 2005 with p = 1, walked gene by gene (the published definition)."""
    n = profile.size
    order = sorted(range(n), key=lambda j: (-profile[j], j))  # most up first, ties by position
    n_r = sum(abs(profile[j]) for j in members)
    if n_r == 0:
        return 0.0
    running, best, worst = 0.0, 0.0, 0.0
    for j in order:
        if j in members:
            running += abs(profile[j]) / n_r
        else:
            running -= 1.0 / (n - len(members))
        best, worst = max(best, running), min(worst, running)
    return best if abs(best) > abs(worst) else worst


def _wtcs_reference(profile: np.ndarray, up: list[int], down: list[int]) -> float:
    """WTCS of Subramanian et al. 2017: (ES_up - ES_down) / 2 when the signs differ, else 0."""
    if not down:
        return _es_reference(profile, set(up))
    if not up:
        return -_es_reference(profile, set(down))
    es_up, es_down = _es_reference(profile, set(up)), _es_reference(profile, set(down))
    return (es_up - es_down) / 2 if np.sign(es_up) != np.sign(es_down) else 0.0


@pytest.mark.parametrize(("n_up", "n_down"), [(15, 12), (20, 0), (0, 9), (1, 1)])
def test_wtcs_equals_the_published_definition(n_up: int, n_down: int) -> None:
    rng = np.random.default_rng(n_up * 100 + n_down)
    x = rng.normal(size=(25, 120))
    x[:5, :40] = 0.0  # ties and zero weights, as in top-k rank profiles
    x[5] = np.round(x[5])  # many ties
    genes = rng.permutation(120)
    up, down = sorted(genes[:n_up]), sorted(genes[n_up : n_up + n_down])
    got = wtcs(x, up=np.array(up, dtype=int), down=np.array(down, dtype=int))
    want = [_wtcs_reference(row, list(up), list(down)) for row in x]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_negating_the_profile_negates_wtcs() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 300))
    up, down = np.arange(0, 30), np.arange(30, 50)
    np.testing.assert_allclose(wtcs(-x, up=up, down=down), -wtcs(x, up=up, down=down), atol=1e-12)


def _query_and_library(seed: int = 2) -> tuple[Query, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    genes = [f"g{i}" for i in range(400)]
    q = query_from_scores(pd.Series(rng.normal(size=400), index=genes), n_genes=40)
    library = rng.normal(size=(200, 400))
    return q, library, genes


@pytest.mark.parametrize("method", ["wtcs", "cosine", "pearson"])
def test_the_query_itself_scores_highest_and_its_negation_lowest(method: str) -> None:
    q, library, genes = _query_and_library()
    assert q.scores is not None
    profiles = np.vstack([library, q.scores.to_numpy(), -q.scores.to_numpy()])
    table = connectivity(profiles, q, genes=genes, method=method, n_null=500)
    assert table["score"].idxmax() == 200 and table["score"].idxmin() == 201
    assert table.loc[200, "tau"] >= 99 and table.loc[201, "tau"] <= -99
    assert table.loc[200, "pvalue"] == pytest.approx(1 / 501)
    best_mimic = mimic(q, method=method).score(profiles, genes).argmax()
    best_reverse = reverse(q, method=method).score(profiles, genes).argmin()
    assert (best_mimic, best_reverse) == (200, 201)


def test_cosine_and_pearson_match_numpy_and_scipy() -> None:
    q, library, genes = _query_and_library(3)
    assert q.scores is not None
    v = q.scores.to_numpy()
    cos = connectivity(library, q, genes=genes, method="cosine", n_null=10)["score"]
    r = connectivity(library, q, genes=genes, method="pearson", n_null=10)["score"]
    np.testing.assert_allclose(
        cos, library @ v / np.linalg.norm(library, axis=1) / np.linalg.norm(v)
    )
    np.testing.assert_allclose(r, [stats.pearsonr(row, v)[0] for row in library], atol=1e-12)


def test_null_is_the_same_whatever_the_batch() -> None:
    q, library, genes = _query_and_library(4)
    whole = connectivity(library, q, genes=genes, n_null=300)
    parts = pd.concat(
        [connectivity(library[:77], q, genes=genes, n_null=300),
         connectivity(library[77:], q, genes=genes, n_null=300).set_axis(range(77, 200))]
    )  # fmt: skip
    pd.testing.assert_frame_equal(whole.drop(columns="fdr"), parts.drop(columns="fdr"))


def test_pvalues_under_the_null_are_roughly_uniform() -> None:
    q, library, genes = _query_and_library(5)
    p = connectivity(library, q, genes=genes, n_null=400)["pvalue"].to_numpy()
    assert 0.03 < (p <= 0.1).mean() < 0.2  # 10% expected
    assert abs(np.median(p) - 0.5) < 0.12


def test_ncs_divides_each_sign_by_its_null_mean_and_tau_is_a_signed_percentile() -> None:
    from celltwin.screen._connectivity import normalise

    null = np.array([[0.1, 0.3, -0.2, -0.4, 0.2]])
    ncs, tau = normalise(np.array([0.4]), null)
    assert ncs[0] == pytest.approx(0.4 / 0.2)
    # null NCS: 0.5, 1.5, -0.666.., -1.333.., 1.0 -> |.| < 2 for all five
    assert tau[0] == pytest.approx(100.0)
    ncs, tau = normalise(np.array([-0.3]), null)
    assert ncs[0] == pytest.approx(-0.3 / 0.3)
    assert tau[0] == pytest.approx(-100.0 * 2 / 5)  # 0.5 and 0.666.. are below 1


def test_too_few_query_genes_among_the_scored_genes_says_how_many() -> None:
    q = Query(None, up=("A", "B", "Z"), down=("C",), name="mine")
    with pytest.raises(ValueError, match=r"only 2 of query 'mine'.*'up': 1 of 3, 'down': 1 of 1"):
        connectivity(np.zeros((2, 3)), q, genes=["A", "C", "D"])
    with pytest.raises(ValueError, match="'method' must be one of"):
        connectivity(np.zeros((2, 3)), q, genes=["A", "C", "D"], method="spearman")  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["wtcs", "pearson"])
def test_the_matrix_of_many_queries_equals_one_query_at_a_time(method: str) -> None:
    q, library, genes = _query_and_library(6)
    queries = [q, -q, Query(None, up=tuple(genes[:20]), name="sets")]
    frame = pd.DataFrame(library, columns=genes)
    matrix = connectivity_matrix(frame, queries, method=method)  # type: ignore[arg-type]
    assert list(matrix.columns) == ["query", "-query", "sets"]
    for j, one in enumerate(queries):
        want = connectivity(frame, one, method=method, n_null=5)["score"]  # type: ignore[arg-type]
        np.testing.assert_allclose(matrix.iloc[:, j], want, atol=1e-12)


def test_each_null_draw_is_the_wtcs_of_a_random_gene_set_pair_of_the_querys_sizes() -> None:
    from celltwin.screen._connectivity import _null_positions, wtcs_null

    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 200))
    null = wtcs_null(x, 12, 8, n_null=25, seed=3)
    up_pos, down_pos = _null_positions(200, 12, 8, 25, 3)
    for i, row in enumerate(x):
        order = np.argsort(-row, kind="stable")  # the genes at those positions of this row
        for k in range(25):
            want = wtcs(row[None, :], up=order[up_pos[k]], down=order[down_pos[k]])[0]
            assert null[i, k] == pytest.approx(want, abs=1e-5)  # the null runs in float32
    assert len(set(up_pos[0]) | set(down_pos[0])) == 20  # disjoint sets
