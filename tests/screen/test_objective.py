"""celltwin.screen objectives: the registry, the contract, and move/specific against hand values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from celltwin._settings import shared_dir
from celltwin.screen import (
    OBJECTIVES,
    Objective,
    get_objective,
    list_objectives,
    move,
    query_from_scores,
    specific,
)

GENES = ["A", "B", "C", "D", "E", "F"]


def test_the_registry_is_data_with_directions_and_nulls() -> None:
    assert list_objectives() == ["mimic", "move", "move_population", "reverse", "specific"]
    assert {n: s.direction for n, s in OBJECTIVES.items()} == {
        "reverse": "lower", "mimic": "higher", "move": "higher", "specific": "higher",
        "move_population": "higher",
    }  # fmt: skip
    q = query_from_scores(pd.Series(np.linspace(-1, 1, 6), index=GENES), n_genes=2)
    for name, params in [("reverse", {"query": q}), ("mimic", {"query": q}),
                         ("move", {"up": ["A"]}), ("specific", {})]:  # fmt: skip
        obj = get_objective(name, **params)
        assert isinstance(obj, Objective) and obj.name == name
        assert obj.null == OBJECTIVES[name].null and obj.null


def test_unknown_names_and_parameters_suggest_the_close_one() -> None:
    with pytest.raises(
        ValueError, match=r"unknown objective 'revers' \(did you mean 'reverse'\?\)"
    ):
        get_objective("revers")
    with pytest.raises(ValueError, match=r"no parameter 'penalt' \(did you mean 'penalty'\?\)"):
        get_objective("move", up=["A"], penalt=2.0)
    with pytest.raises(ValueError, match=r"needs parameter\(s\) \['query'\]"):
        get_objective("mimic")
    with pytest.raises(ValueError, match="'statistic' must be one of"):
        get_objective("mimic", query=pd.Series([1.0], index=["A"]), statistic="z")


def test_score_checks_its_inputs() -> None:
    obj = move(up=["A"])
    with pytest.raises(ValueError, match="5 columns but 6 gene names"):
        obj.score(np.zeros((2, 5)), GENES)
    with pytest.raises(ValueError, match="NaN or infinite"):
        obj.score(np.full((2, 6), np.nan), GENES)
    with pytest.raises(ValueError, match="'uncertainty' must have the shape"):
        obj.score(np.zeros((2, 6)), GENES, uncertainty=np.ones((1, 6)))
    with pytest.raises(ValueError, match=r"0 of the 1 targets .* Missing e.g. \['Z'\]"):
        move(up=["Z"]).score(np.zeros((2, 6)), GENES)


def test_move_genes_scores_the_signed_target_change_minus_the_off_target_change() -> None:
    x = np.array([[2.0, -1.0, 0.5, -0.5, 0.0, 0.0],  # moves A up and B down, some off-target
                  [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                  [-2.0, 1.0, 0.0, 0.0, 0.0, 0.0]])  # fmt: skip
    obj = move(up=["A"], down=["B"], penalty=2.0)
    want_0 = (2.0 + 1.0) / 2 - 2.0 * (0.5 + 0.5) / 4
    np.testing.assert_allclose(obj.score(x, GENES), [want_0, 0.0, -1.5])
    assert obj.best_first(obj.score(x, GENES)).tolist() == [0, 1, 2]


def test_move_a_pathway_uses_the_nets_weights_and_its_direction() -> None:
    net = pd.DataFrame(
        {"source": ["P", "P", "Q"], "target": ["A", "B", "C"], "weight": [2.0, -1.0, 1.0]}
    )
    x = np.array([[1.0, -1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0, 0.0, 0.0]])
    up = move(pathway="P", net=net, penalty=0.0).score(x, GENES)
    np.testing.assert_allclose(up, [(2.0 * 1.0 + 1.0) / 3.0, 0.0])
    down = move(pathway="P", net=net, toward="down", penalty=0.0).score(x, GENES)
    np.testing.assert_allclose(down, -up)
    with pytest.raises(ValueError, match=r"'R' is not a source of the given net.*\['P', 'Q'\]"):
        move(pathway="R", net=net)
    with pytest.raises(ValueError, match="either genes"):
        move(up=["A"], pathway="P", net=net)


def test_move_pvalues_are_smallest_for_a_clean_hit_and_roughly_uniform_under_the_null() -> None:
    rng = np.random.default_rng(0)
    genes = [f"g{i}" for i in range(300)]
    x = rng.normal(0.0, 0.1, size=(400, 300))
    x[0, :10] += 2.0
    obj = move(up=genes[:10], n_null=199)
    p = obj.pvalues(x, genes, obj.score(x, genes))
    assert p is not None and p[0] == pytest.approx(1 / 200)
    assert abs(np.median(p[1:]) - 0.5) < 0.1 and 0.05 < (p[1:] <= 0.1).mean() < 0.16


@pytest.mark.skipif(not (shared_dir() / "priors").is_dir(), reason="needs ../shared/priors")
@pytest.mark.parametrize(("net", "source"), [("progeny", "JAK-STAT"), ("dorothea", "STAT1"),
                                             ("hallmark", "HALLMARK_INTERFERON_GAMMA_RESPONSE")])  # fmt: skip
def test_move_reads_the_shared_priors(net: str, source: str) -> None:
    from celltwin.screen._move import _net_table

    table = _net_table(net)
    targets = table[table["source"] == source]
    genes = [*targets["target"].astype(str).unique()[:20], "NOT_A_TARGET"]
    x = np.zeros((1, len(genes)))
    x[0, :-1] = np.sign(targets.groupby("target")["weight"].sum().reindex(genes[:-1]).to_numpy())
    assert move(pathway=source, net=net, penalty=0.0).score(x, genes)[0] > 0
    with pytest.raises(ValueError, match="did you mean"):
        move(pathway=source[:-1] + "x", net=net)


def test_specific_is_the_largest_effect_over_its_sd_with_a_max_of_normals_null() -> None:
    x = np.array([[1.0, 0.2, 0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0, 0.0, 0.0]])
    sd = np.array([[2.0, 0.05, 1.0, 1.0, 1.0, 1.0], [0.1] * 6])
    obj = specific()
    scores = obj.score(x, GENES, uncertainty=sd)
    np.testing.assert_allclose(scores, [4.0, 5.0])
    p = obj.pvalues(x, GENES, scores, uncertainty=sd)
    assert p is not None
    np.testing.assert_allclose(p, 1 - (1 - 2 * norm.sf(scores)) ** 6)
    # without intervals: the row's robust scale (1.4826 * MAD)
    y = np.array([[0.1, -0.1, 0.1, -0.1, 0.0, 3.0]])
    mad = 1.4826 * np.median(np.abs(y - np.median(y)))
    np.testing.assert_allclose(obj.score(y, GENES), [3.0 / mad])
    # a NaN interval (a model without intervals for that gene) falls back the same way
    nan_sd = np.full((1, 6), np.nan)
    np.testing.assert_allclose(obj.score(y, GENES, uncertainty=nan_sd), [3.0 / mad])


def test_connectivity_pvalues_are_one_sided_and_shared_by_every_statistic() -> None:
    from celltwin.screen import mimic, reverse

    rng = np.random.default_rng(3)
    genes = [f"g{i}" for i in range(300)]
    q = query_from_scores(pd.Series(rng.normal(size=300), index=genes), n_genes=30)
    assert q.scores is not None
    x = np.vstack([rng.normal(size=(50, 300)), q.scores.to_numpy(), -q.scores.to_numpy()])
    by_stat = []
    for statistic in ("score", "ncs", "tau"):
        obj = mimic(q, statistic=statistic, n_null=99)  # type: ignore[arg-type]
        p = obj.pvalues(x, genes, obj.score(x, genes))
        assert p is not None
        by_stat.append(p)
    np.testing.assert_array_equal(by_stat[0], by_stat[1])
    np.testing.assert_array_equal(by_stat[0], by_stat[2])
    assert by_stat[0][50] == pytest.approx(1 / 100) and by_stat[0][51] == 1.0
    rev = reverse(q, n_null=99)
    p_rev = rev.pvalues(x, genes, rev.score(x, genes))
    assert p_rev is not None and p_rev[51] == pytest.approx(1 / 100) and p_rev[50] == 1.0
