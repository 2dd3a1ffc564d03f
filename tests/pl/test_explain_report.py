"""celltwin.pl's explanation page and figures (issue 19, point 6), from hand-made tables."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import FancyArrowPatch

from celltwin.explain import Activity, Explanation, causal_map, enrichment, regulatory_paths
from celltwin.pl import activity_figure, explanation_report, path_network, write_explanation
from celltwin.simulate import simulate

EDGES = pd.DataFrame(
    [("T", "A", 1), ("A", "B", -1), ("T", "D", 0), ("D", "E", 1)],
    columns=["source", "target", "sign"],
)


def _activity(conditions: list[str]) -> Activity:
    rng = np.random.default_rng(0)
    sources = [f"TF{i}" for i in range(8)]
    scores = pd.DataFrame(rng.normal(size=(len(conditions), 8)), index=conditions, columns=sources)
    sizes = pd.Series(10, index=pd.Index(sources, name="source"), name="measured")
    dropped = pd.DataFrame(columns=["measured", "targets", "reason"])
    return Activity(scores, scores.abs() / 10, sizes, dropped, "ulm", "custom")


@pytest.fixture(scope="module")
def result() -> Explanation:
    genes = ["A", "B", "E"] + [f"G{i}" for i in range(40)]
    rng = np.random.default_rng(1)
    effects = pd.DataFrame(rng.normal(scale=0.1, size=(2, len(genes))), columns=genes,
                           index=["K|T", "K|T2"])  # fmt: skip
    effects.loc["K|T", ["A", "E"]] = -2.0
    effects.loc["K|T", "B"] = 1.5
    sets = {"SET_UP": ["B", *genes[3:8]], "SET_DOWN": ["A", "E", *genes[8:12]]}
    found = enrichment(effects, gene_sets=sets, n_top=5, ranked=False)
    paths = regulatory_paths(effects, {"K|T": ["T"], "K|T2": ["T"]}, network=EDGES, n_genes=3)
    sim = simulate(n_genes=30, n_tfs=4, n_perturbations=3, combinations=0, contexts=("K",),
                   cells_per_condition=40, seed=2)  # fmt: skip
    return Explanation(effects, {"dorothea": _activity(list(effects.index))}, found, paths,
                       causal=causal_map(sim.adata), kind="screen", notes=["input: test"])  # fmt: skip


def test_report_has_every_section_with_figures(result: Explanation) -> None:
    page = explanation_report(result, title="why")
    assert page.startswith("<!DOCTYPE html>") and "<title>why</title>" in page
    for heading in ("Regulators (DoRothEA)", "Enrichment (custom)", "Regulatory paths",
                    "Causal map"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in page
    assert page.count("<svg") == 2  # activity heatmap + one path network (K|T2 has none found)
    assert "What each prediction leaned on" not in page  # no sources without a model
    assert 'class="sortable"' in page and "<li>input: test</li>" in page


def test_sources_section_appears_when_sources_are_given(result: Explanation) -> None:
    table = pd.DataFrame({"condition": ["K|T"], "kind": ["perturbation"], "source": ["T0"],
                          "weight": [0.6]})  # fmt: skip
    page = explanation_report(Explanation(result.effects, result.activity, result.enrichment,
                                          result.paths, sources=table))  # fmt: skip
    assert "What each prediction leaned on" in page and 'id="sources"' in page


def test_write_explanation_files_and_refusal(result: Explanation, tmp_path: Path) -> None:
    out = write_explanation(result, tmp_path / "x")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["activity_dorothea.csv", "causal_map.csv", "causal_map.graphml",
                     "enrichment.csv", "paths.csv", "report.html"]  # fmt: skip
    back = pd.read_csv(out / "activity_dorothea.csv")
    assert len(back) == result.activity["dorothea"].scores.size
    assert nx.read_graphml(out / "causal_map.graphml").number_of_edges() == len(
        result.causal.edges  # type: ignore[union-attr]
    )
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_explanation(result, out)
    write_explanation(result, out, overwrite=True)


def test_activity_figure_bars_for_one_condition_heatmap_for_several() -> None:
    one = activity_figure(_activity(["c1"]).scores, top=5)
    assert len(one.axes[0].patches) == 5
    several = activity_figure(_activity(["c1", "c2", "c3"]).scores, top=6)
    assert several.axes[0].images[0].get_array().shape == (3, 6)
    with pytest.raises(ValueError, match="empty"):
        activity_figure(pd.DataFrame())


def test_path_network_draws_each_edge_once(result: Explanation) -> None:
    fig = path_network(result.paths, condition="K|T")
    arrows = [p for p in fig.axes[0].patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 4  # T->A, A-|B, T-D (string), D->E
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"T", "A", "B", "D", "E"} <= texts
    with pytest.raises(ValueError, match="no found path for condition"):
        path_network(result.paths, condition="K|T2")
