from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from matplotlib.image import imread

from celltwin import pl
from celltwin._keys import CONTEXT, CONTROL, PERTURBATION


def _is_drawn(path) -> bool:
    img = imread(path)
    return img.shape[0] > 50 and float(img[..., :3].std()) > 0.05


def test_composition_draws_every_context(tmp_path) -> None:
    table = pd.DataFrame(
        {"control": [0.5, 0.3, 0.2], "IFNB": [0.45, 0.35, 0.2]}, index=["B", "T", "NK"]
    )
    fig = pl.composition(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["B", "T", "NK"]
    assert len(ax.patches) == 6
    assert np.allclose(sorted(p.get_height() for p in ax.patches), sorted(table.to_numpy().ravel()))
    fig.savefig(tmp_path / "c.png")
    assert _is_drawn(tmp_path / "c.png")


def test_effect_heatmap_picks_largest_effects(tmp_path) -> None:
    rng = np.random.default_rng(0)
    delta = rng.normal(scale=0.01, size=(3, 50))
    delta[1:, 7] = 3.0  # the gene with the largest effect must come first
    obs = pd.DataFrame(
        {CONTEXT: ["A", "A", "A"], PERTURBATION: [CONTROL, "G1", "G2"]}, index=["0", "1", "2"]
    )
    pb = ad.AnnData(np.zeros_like(delta), obs=obs, layers={"delta": delta})
    pb.var_names = [f"g{i}" for i in range(50)]
    fig = pl.effect_heatmap(pb, n_genes=10)
    ax = fig.axes[0]
    assert ax.get_xticklabels()[0].get_text() == "g7"
    assert len(ax.get_yticklabels()) == 2  # control row dropped
    fig.savefig(tmp_path / "h.png")
    assert _is_drawn(tmp_path / "h.png")
