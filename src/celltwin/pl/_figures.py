"""Figures that consume result tables (never raw cells), returned as matplotlib Figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

# Figures are built without pyplot so they never touch the user's backend or global state and
# work headless on servers and in CI.
from matplotlib.figure import Figure

from .._keys import CONTEXT, CONTROL, PERTURBATION


def composition(
    table: pd.DataFrame, *, title: str = "Cell-type composition by condition"
) -> Figure:
    """Grouped bars of each context's share of cells, one bar per condition.

    Parameters
    ----------
    table
        Contexts as rows, conditions as columns, shares (fractions summing to 1 per column) as
        values; e.g. ``pd.crosstab(obs.context, obs.perturbation, normalize="columns")``.
    title
        Figure title.
    """
    # At least as wide as the title (about 0.1 inch a character at 12 pt).
    legend = 0.4 + 0.08 * max((len(str(c)) for c in table.columns), default=0)
    fig_w = max(1.2 + 0.9 * len(table), 0.5 + 0.1 * len(title)) + legend
    fig = Figure(figsize=(fig_w, 3.6), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(table.shape[1], 1)
    x = np.arange(len(table))
    for i, cond in enumerate(table.columns):
        ax.bar(x + i * width - 0.4 + width / 2, table[cond].to_numpy(), width, label=str(cond))
    ax.set_xticks(x, [str(i) for i in table.index], rotation=30, ha="right")
    ax.set_ylabel("share of cells")
    ax.set_title(title)
    # Beside the panel, not over the bars.
    fig.legend(loc="outside right upper", frameon=False)
    return fig


def effect_heatmap(
    pseudobulk: AnnData,
    *,
    n_genes: int = 30,
    layer: str = "delta",
    title: str = "Mean effect vs matched control (log1p CP10k)",
) -> Figure:
    """Heatmap of pseudobulk deltas: groups x the genes with the largest absolute effect.

    Parameters
    ----------
    pseudobulk
        Output of :func:`celltwin.pp.pseudobulk` (obs: group keys; ``layers[layer]``: deltas).
    n_genes
        Number of genes shown: half the most up-regulated and half the most down-regulated
        (by the mean delta over non-control groups), ordered by it; where one direction has too few
        genes, the largest mean absolute deltas fill the rest. The colour scale is symmetric.
    layer
        Layer with the deltas.
    title
        Figure title.
    """
    obs = pseudobulk.obs
    keep = (obs[PERTURBATION].astype(str) != CONTROL).to_numpy()
    delta = np.asarray(pseudobulk.layers[layer])[keep]
    labels = [
        f"{c} | {p}"
        for c, p in zip(
            obs[CONTEXT].astype(str)[keep], obs[PERTURBATION].astype(str)[keep], strict=True
        )
    ]
    order = _up_and_down(delta, n_genes)
    values = delta[:, order]
    lim = float(np.abs(values).max()) or 1.0
    fig = Figure(figsize=(2.5 + 0.22 * len(order), 1.2 + 0.3 * len(labels)), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(values, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(order)), pseudobulk.var_names[order], rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8, label="delta")
    return fig


def _up_and_down(delta: np.ndarray, n_genes: int) -> np.ndarray:
    """Columns of the ``n_genes`` genes shown: the most up-, then the most down-regulated."""
    mean = delta.mean(axis=0)
    n_genes = min(n_genes, mean.size)
    up = [int(j) for j in np.argsort(-mean, kind="stable") if mean[j] > 0][: (n_genes + 1) // 2]
    down = [int(j) for j in np.argsort(mean, kind="stable") if mean[j] < 0][: n_genes // 2]
    chosen = set(up) | set(down)
    rest = [int(j) for j in np.argsort(-np.abs(mean), kind="stable") if int(j) not in chosen]
    shown = [*chosen, *rest[: n_genes - len(chosen)]]
    # Decreasing mean: the most up-regulated first, the most down-regulated last.
    return np.asarray(sorted(shown, key=lambda j: -mean[j]), dtype=int)
