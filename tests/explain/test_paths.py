"""celltwin.explain.regulatory_paths: shortest signed prior-network paths (issue 19, point 3)."""

from __future__ import annotations

import networkx as nx
import pandas as pd
import pytest

from celltwin._settings import shared_dir
from celltwin.explain import prior_network, regulatory_paths

# T activates A and C, A represses B, T binds D (STRING, unsigned), D activates E; F is isolated.
EDGES = pd.DataFrame(
    [("T", "A", 1), ("A", "B", -1), ("T", "C", 1), ("T", "D", 0), ("D", "E", 1), ("F", "G", 1)],
    columns=["source", "target", "sign"],
)


def _paths(effect: dict[str, float], **kwargs) -> pd.DataFrame:
    series = pd.Series(effect, name="T_ko")
    return regulatory_paths(series, "T", network=EDGES, **kwargs).set_index("gene")


def test_knockout_paths_agree_in_sign_with_the_response() -> None:
    # T knocked out: A (activated by T) falls, B (repressed by A) rises, C rises (disagrees).
    table = _paths({"T": -3.0, "A": -2.0, "B": 1.5, "C": 1.0, "E": -0.5, "G": 0.4})
    assert list(table.index) == ["A", "B", "C", "E", "G"]  # by |effect|, target excluded
    assert table.loc["A", "path"] == "T > A" and table.loc["A", "sign"] == 1
    assert table.loc["B", "path"] == "T > A > B" and table.loc["B", "sign"] == -1
    assert table.loc["B", "edges"] == "T->A; A-|B"
    assert not table.loc["C", "found"]
    assert table.loc["C", "reason"].startswith("no path of at most max_length=3 steps")
    assert table.loc["E", "path"] == "T > D > E" and table.loc["E", "unsigned_steps"] == 1
    assert "(string)" in table.loc["E", "edges"]
    assert not table.loc["G", "found"]  # no path from T at all


def test_gain_of_function_flips_the_required_sign() -> None:
    table = _paths({"A": -2.0, "C": 1.0}, direction=1)
    assert not table.loc["A", "found"] and table.loc["C", "found"]


def test_max_length_and_unknown_genes_give_reasons() -> None:
    table = _paths({"B": 1.5, "ZZZ": 5.0}, max_length=1)
    assert table.loc["B", "reason"].startswith("no path of at most max_length=1 steps")
    assert table.loc["ZZZ", "reason"] == "ZZZ is not in the prior network"


def test_signed_edges_win_over_string_links_and_per_condition_targets() -> None:
    graph = prior_network(
        pd.DataFrame([("X", "Y", 0), ("X", "Y", -1)], columns=["source", "target", "sign"])
    )
    assert graph.edges["X", "Y"]["sign"] == -1 and graph.edges["Y", "X"]["kind"] == "string"
    effects = pd.DataFrame({"A": [-1.0, 0.0], "E": [0.0, -1.0]}, index=["c1", "c2"])
    table = regulatory_paths(effects, {"c1": ["T"], "c2": ["D"]}, network=EDGES)
    assert list(table["path"]) == ["T > A", "D > E"]
    with pytest.raises(KeyError, match="no entry for condition"):
        regulatory_paths(effects, {"c1": ["T"]}, network=EDGES)
    with pytest.raises(ValueError, match="direction must be -1"):
        regulatory_paths(effects, "T", network=EDGES, direction=0)
    flipped = regulatory_paths(effects, {"c1": ["T"], "c2": ["D"]}, network=EDGES,
                               direction={"c1": 1, "c2": -1})  # fmt: skip
    assert list(flipped["found"]) == [False, True]


@pytest.mark.skipif(
    not (shared_dir() / "priors" / "dorothea_human.tsv.gz").is_file(), reason="needs ../shared"
)
def test_stat1_knockout_reaches_irf1_through_dorothea() -> None:
    graph = prior_network(["dorothea"])
    assert isinstance(graph, nx.DiGraph)
    assert graph.edges["STAT1", "IRF1"]["sign"] == 1
    table = regulatory_paths(pd.Series({"IRF1": -1.0}), "STAT1", network=graph)
    assert table.loc[0, "path"] == "STAT1 > IRF1"


def test_equally_short_paths_prefer_signed_steps() -> None:
    # T-M (STRING) then M->Y, or T->N->Y: both two steps and activating; the signed one wins,
    # whichever order the edges come in
    rows = [("T", "M", 0), ("M", "Y", 1), ("T", "N", 1), ("N", "Y", 1)]
    for order in (rows, rows[::-1]):
        net = pd.DataFrame(order, columns=["source", "target", "sign"])
        table = regulatory_paths(pd.Series({"Y": -1.0}), "T", network=net)
        assert table.loc[0, "path"] == "T > N > Y" and table.loc[0, "unsigned_steps"] == 0
