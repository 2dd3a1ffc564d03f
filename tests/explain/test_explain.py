"""celltwin.explain.explain / explain_file: one explanation of an effect table, a prediction or a
screen (issue 19, point 6). Needs the shared priors (DoRothEA, PROGENy, Hallmark)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("decoupler")

from celltwin._settings import shared_dir
from celltwin.explain import Explanation, explain, explain_file
from celltwin.models import fit, predict
from celltwin.simulate import simulate
from celltwin.split import split_contexts

pytestmark = pytest.mark.skipif(
    not (shared_dir() / "priors" / "dorothea_human.tsv.gz").is_file(), reason="needs ../shared"
)
FAST = {"network": ("dorothea",)}  # STRING takes ~10 s to load; covered by the CLI test


@pytest.fixture(scope="module")
def screen(tmp_path_factory) -> Path:
    sim = simulate(
        n_genes=200, n_tfs=15, n_perturbations=4, combinations=0, contexts=("A", "B"),
        cells_per_condition=60, grn="dorothea", seed=3,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("explain") / "screen.h5ad"
    sim.adata.write_h5ad(path)
    return path


def test_screen_gets_activity_enrichment_paths_and_a_causal_map(screen: Path) -> None:
    result = explain_file(screen, **FAST)
    assert isinstance(result, Explanation) and result.kind == "screen"
    assert set(result.activity) == {"dorothea", "progeny"}
    conditions = list(result.effects.index)
    assert all(c.count("|") == 1 for c in conditions)  # context|perturbation, no empty dose
    # each knocked-out TF with a scored regulon is among its own condition's lowest regulators
    scores = result.activity["dorothea"].scores
    own = [(c, c.split("|")[1]) for c in conditions if c.split("|")[1] in scores.columns]
    assert own
    ranks = [scores.loc[c].rank().loc[tf] / scores.shape[1] for c, tf in own]
    assert np.median(ranks) < 0.25
    assert result.causal is not None and len(result.causal.edges) > 0
    paths = result.paths
    assert set(paths["source"]) <= {c.split("|")[1] for c in conditions}
    assert paths["found"].any() and (paths.loc[paths["found"], "path"] != "").all()
    tables = result.tables()
    assert {"activity_dorothea", "activity_progeny", "enrichment", "paths", "causal_map"} <= set(
        tables
    )
    assert result.notes[0].startswith("input: screen.h5ad read as screen (8 condition(s)")


def test_effect_tables_wide_and_long_read_the_same(screen: Path, tmp_path: Path) -> None:
    import anndata as ad

    from celltwin.pp import pseudobulk

    full = pseudobulk(ad.read_h5ad(screen))
    pb = full[(full.obs["perturbation"] != "control").to_numpy()][:3]
    effects = pd.DataFrame(pb.layers["delta"], index=pb.obs["perturbation"], columns=pb.var_names)
    full.write_h5ad(tmp_path / "pseudobulk.h5ad")
    small = {"gene_sets": {"S": list(effects.columns[:10])}, "nets": ("dorothea",), **FAST}
    c = explain_file(tmp_path / "pseudobulk.h5ad", **small)
    assert c.kind == "effects" and c.causal is None and len(c.effects) == 8
    assert list(c.effects.index[:3]) == [f"A|{p}" for p in effects.index]
    np.testing.assert_allclose(c.effects.iloc[:3].to_numpy(), effects.to_numpy())
    wide = effects.T.rename_axis("gene")
    wide.to_csv(tmp_path / "wide.csv")
    long = wide.reset_index().melt(id_vars="gene", var_name="condition", value_name="effect")
    long.to_csv(tmp_path / "long.tsv", sep="\t", index=False)
    a = explain_file(tmp_path / "wide.csv", **small)
    b = explain_file(tmp_path / "long.tsv", **small)
    assert a.kind == b.kind == "effects" and a.causal is None
    pd.testing.assert_frame_equal(
        a.activity["dorothea"].scores, b.activity["dorothea"].scores.loc[a.effects.index]
    )
    pd.testing.assert_frame_equal(a.paths, b.paths.set_index("condition").loc[
        list(dict.fromkeys(a.paths["condition"]))].reset_index()[a.paths.columns])  # fmt: skip


def test_prediction_effects_are_against_controls(screen: Path, tmp_path: Path) -> None:
    import anndata as ad

    cells = ad.read_h5ad(screen)
    split_contexts(cells, test="B")
    cells.write_h5ad(tmp_path / "split.h5ad")
    model = fit(cells, model="context_shift")
    pred = predict(model, cells, out=tmp_path / "pred.h5ad")
    with pytest.raises(ValueError, match="no control cells"):
        explain_file(tmp_path / "pred.h5ad", **FAST)
    result = explain_file(tmp_path / "pred.h5ad", data=tmp_path / "split.h5ad", **FAST)
    assert result.kind == "prediction" and result.causal is None
    controls = cells[(cells.obs["context"] == "B") & (cells.obs["perturbation"] == "control")]
    x = pred[pred.obs["perturbation"] == pred.obs["perturbation"].iloc[0]]
    name = f"B|{x.obs['perturbation'].iloc[0]}"
    expected = np.asarray(x.X, dtype=float).mean(0) - np.asarray(
        controls.X.toarray() if hasattr(controls.X, "toarray") else controls.X, dtype=float
    ).mean(0)
    np.testing.assert_allclose(result.effects.loc[name].to_numpy(), expected, atol=1e-5)


def test_unknown_genes_and_names_are_refused() -> None:
    effects = pd.DataFrame({"g1": [1.0], "g2": [-1.0]}, index=["x"])
    with pytest.raises(ValueError, match="nothing could be explained"):
        explain(effects, **FAST)
    with pytest.raises(ValueError, match="unknown gene_sets='halmark'"):
        explain(effects, gene_sets="halmark")
    with pytest.raises(ValueError, match="unknown network='dorothee'"):
        explain(effects, network=["dorothee"])
