"""The server's fast activities equal decoupler's ulm (celltwin.explain.activity)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celltwin.priors import gene_symbols, priors_available
from celltwin.serve._activity import ActivityNet, activity_nets


def test_ulm_t_values_on_a_planted_net() -> None:
    """Effects built from one source's weights give that source the largest t-value."""
    rng = np.random.default_rng(0)
    genes = [f"g{i}" for i in range(60)]
    rows = [(s, genes[j], float(rng.choice([-1, 1]))) for s in "ABC" for j in rng.choice(60, 10)]
    table = pd.DataFrame(rows, columns=["source", "target", "weight"]).drop_duplicates(
        ["source", "target"]
    )
    net = ActivityNet.build("custom", table, genes)
    weights = net.weights[:, net.sources.index("B")]
    effect = 2.0 * weights + 0.1 * rng.normal(size=60)
    t = net.scores(effect)[0]
    assert net.sources[int(np.argmax(t))] == "B" and t.max() > 10
    # the closed form equals an ordinary least-squares fit with intercept
    x = np.column_stack([np.ones(60), weights])
    coef, res, *_ = np.linalg.lstsq(x, effect, rcond=None)
    se = np.sqrt(res[0] / 58 * np.linalg.inv(x.T @ x)[1, 1])
    assert np.isclose(t[net.sources.index("B")], coef[1] / se)


@pytest.mark.skipif(not priors_available("dorothea", "progeny"), reason="needs ../shared priors")
def test_equals_decoupler_ulm() -> None:
    pytest.importorskip("decoupler")
    from celltwin.explain import activity

    symbols = gene_symbols(["dorothea", "progeny"])
    rng = np.random.default_rng(1)
    genes = list(symbols[rng.choice(len(symbols), 2000, replace=False)])
    effect = rng.normal(size=len(genes))
    for name, net in activity_nets(genes).items():
        ours = pd.Series(net.scores(effect)[0], index=net.sources)
        theirs = activity(pd.Series(effect, index=genes), net=name).scores.iloc[0]
        assert sorted(ours.index) == sorted(theirs.index)
        np.testing.assert_allclose(ours[theirs.index], theirs, rtol=1e-8, atol=1e-10)
