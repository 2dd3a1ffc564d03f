"""``explain.activity_agreement`` and ``explain.recovery_auroc``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("decoupler")

from decoupler.bm.metric._auc import auroc as decoupler_auroc

from celltwin.explain import activity, activity_agreement, recovery_auroc


@pytest.fixture(scope="module")
def net_and_effects(signed_world):
    """A net of 12 sources over 400 genes; source S{i} drives condition i (a, b, c)."""
    net, effects = signed_world(0, 400, 12, 25)
    for i, cond in enumerate(effects.index):
        edges = net[net["source"] == f"S{i}"]
        effects.loc[cond, edges["target"]] += 4.0 * edges["weight"].to_numpy()
    return net, effects


def test_identical_effects_agree_fully_and_negated_ones_not_at_all(net_and_effects) -> None:
    net, effects = net_and_effects
    same = activity_agreement(effects, effects, net=net, top=(3, 5))
    assert list(same.index) == ["a", "b", "c"]
    np.testing.assert_allclose(same["spearman"], 1.0)
    assert same["all_found"].all() and (same["found"] == 3).all()
    assert (same["n_sources"] == 12).all()
    assert same.loc["a", "measured_top"].split(", ")[0] == "S0"
    flipped = activity_agreement(-effects, effects, net=net)
    np.testing.assert_allclose(flipped["spearman"], -1.0)
    # Agreement is the Spearman correlation of the two activity() score vectors.
    noisy = effects + np.random.default_rng(1).normal(scale=2.0, size=effects.shape)
    table = activity_agreement(noisy, effects, net=net)
    a = activity(noisy, net=net, min_size=10).scores
    b = activity(effects, net=net, min_size=10).scores
    for cond in effects.index:
        assert table.loc[cond, "spearman"] == pytest.approx(
            pd.Series(a.loc[cond]).rank().corr(pd.Series(b.loc[cond]).rank())
        )


def test_agreement_refuses_mismatched_inputs(net_and_effects) -> None:
    net, effects = net_and_effects
    with pytest.raises(ValueError, match="same conditions"):
        activity_agreement(effects.iloc[:2], effects, net=net)
    with pytest.raises(ValueError, match="share no gene"):
        activity_agreement(effects.add_prefix("x"), effects, net=net)


def test_recovery_auroc_equals_decoupler_benchmark_metric() -> None:
    rng = np.random.default_rng(2)
    scores = pd.DataFrame(
        np.round(rng.normal(size=(6, 8)), 1),  # rounded: ties, as decoupler handles them
        index=[f"c{i}" for i in range(6)],
        columns=[f"S{j}" for j in range(8)],
    )
    truth = {f"c{i}": f"S{i}" for i in range(6)}
    for sign in (1.0, -1.0):
        labels = np.vstack([scores.columns == truth[c] for c in scores.index]).ravel()
        expected = decoupler_auroc(labels, sign * scores.to_numpy().ravel())
        assert recovery_auroc(scores, truth, sign=sign) == pytest.approx(expected, abs=1e-12)


def test_recovery_auroc_is_one_when_each_true_source_leads(net_and_effects) -> None:
    net, effects = net_and_effects
    scores = activity(effects, net=net).scores
    assert recovery_auroc(scores, {"a": "S0", "b": "S1", "c": "S2", "x": "S3"}) == 1.0
    # Several true sources per condition: each is a positive; unscored ones are left out.
    two = recovery_auroc(scores, pd.Series({"a": ["S0", "S5"], "b": ("S1", "gone")}))
    cols = scores.columns
    labels = np.vstack([cols.isin(["S0", "S5"]), cols == "S1"])
    sub = scores.loc[["a", "b"]].to_numpy()
    assert two == pytest.approx(decoupler_auroc(labels.ravel(), sub.ravel()), abs=1e-12)
    with pytest.raises(ValueError, match="no condition's true source"):
        recovery_auroc(scores, {"a": "nope"})
    with pytest.raises(ValueError, match="needs other sources"):
        recovery_auroc(scores[["S0"]], {"a": "S0"})
