"""Figures of an explanation (issue 19): activity scores and regulatory-path networks.

Tables in, matplotlib Figures out (no pyplot state), as in :mod:`celltwin.pl._figures`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

__all__ = ["activity_figure", "path_network"]

_UP, _DOWN, _STRING = "#b42318", "#1f5fa8", "#8a8a8a"


def activity_figure(scores: pd.DataFrame, *, top: int = 20, title: str = "") -> Figure:
    """Activity scores: bars of the ``top`` sources for one condition, a heatmap for several.

    Parameters
    ----------
    scores
        Conditions x sources (e.g. :attr:`celltwin.explain.Activity.scores`).
    top
        Sources shown: the largest absolute scores (over conditions, the largest maximum).
    title
        Figure title.
    """
    if scores.empty:
        raise ValueError("scores is empty: nothing to draw")
    order = scores.abs().max(axis=0).sort_values(ascending=False).index[:top]
    if len(scores) == 1:
        values = scores.iloc[0][order][::-1]
        fig = Figure(figsize=(5.6, 0.8 + 0.24 * len(values)), layout="constrained")
        ax = fig.subplots()
        colors = [_UP if v > 0 else _DOWN for v in values]
        ax.barh(np.arange(len(values)), values.to_numpy(), color=colors)
        ax.set_yticks(np.arange(len(values)), [str(s) for s in values.index], fontsize=8)
        ax.axvline(0, color="#444", lw=0.8)
        ax.set_xlabel("activity score")
        ax.set_title(title or str(scores.index[0]), fontsize=10)
        return fig
    shown = scores[order].iloc[:40]
    width = max(5.0, 1.6 + 0.28 * shown.shape[1])
    height = 1.6 + 0.26 * shown.shape[0] + 0.05 * max(len(str(s)) for s in order)
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    limit = float(np.nanmax(np.abs(shown.to_numpy()))) or 1.0
    image = ax.imshow(shown.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(np.arange(shown.shape[1]), [str(s) for s in shown.columns], rotation=60,
                  ha="right", fontsize=8)  # fmt: skip
    ax.set_yticks(np.arange(shown.shape[0]), [str(c) for c in shown.index], fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.8, label="activity score")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _layers(paths: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Node positions: x = steps from the source, y spread within each step."""
    depth: dict[str, int] = {}
    for path in paths["path"]:
        for step, gene in enumerate(str(path).split(" > ")):
            depth[gene] = min(depth.get(gene, step), step)
    positions = {}
    for step in sorted(set(depth.values())):
        genes = sorted(g for g, d in depth.items() if d == step)
        for i, gene in enumerate(genes):
            positions[gene] = (float(step), (len(genes) - 1) / 2.0 - i)
    return positions


def path_network(paths: pd.DataFrame, *, condition: str | None = None, top: int = 12) -> Figure:
    """The regulatory paths of one condition as a small layered network.

    Parameters
    ----------
    paths
        :func:`celltwin.explain.regulatory_paths`' table; only found paths are drawn.
    condition
        Condition drawn; default the first with a found path.
    top
        At most this many paths (the most affected genes first).

    Returns
    -------
    Figure
        Sources on the left, each step one column; arrows red for activation, blue with a bar
        for repression, grey dashed for STRING links; the affected genes coloured by the sign
        of their response (red up, blue down).
    """
    found = paths[paths["found"]]
    if found.empty:
        raise ValueError("no found path to draw")
    condition = str(found["condition"].iloc[0]) if condition is None else condition
    rows = found[found["condition"].astype(str) == condition].head(top)
    if rows.empty:
        raise ValueError(f"no found path for condition {condition!r}")
    pos = _layers(rows)
    n_cols = 1 + max(int(x) for x, _ in pos.values())
    n_rows = max(sum(1 for x, _ in pos.values() if x == c) for c in range(n_cols))
    fig = Figure(figsize=(1.5 + 2.1 * n_cols, 1.2 + 0.45 * n_rows), layout="constrained")
    ax = fig.subplots()
    effect = dict(zip(rows["gene"].astype(str), rows["effect"], strict=True))
    drawn = set()
    for edges in rows["edges"]:
        for step in str(edges).split("; "):
            unsigned = step.endswith(" (string)")
            text = step.removesuffix(" (string)")
            repress = "-|" in text
            a, b = text.split("-|" if repress else "->")
            if (a, b) in drawn:
                continue
            drawn.add((a, b))
            color = _STRING if unsigned else (_DOWN if repress else _UP)
            ax.add_patch(
                FancyArrowPatch(pos[a], pos[b], arrowstyle="|-|,widthA=0,widthB=4" if repress
                                else "-|>,head_length=6,head_width=3", color=color, lw=1.2,
                                ls="--" if unsigned else "-", shrinkA=22, shrinkB=22)
            )  # fmt: skip
    for gene, (x, y) in pos.items():
        face = "#f2f2f2"
        if gene in effect:
            face = "#f6c9c4" if effect[gene] > 0 else "#c9d9f2"
        ax.text(x, y, gene, ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round,pad=0.3", "fc": face, "ec": "#666", "lw": 0.6})  # fmt: skip
    ax.set_xlim(-0.6, n_cols - 0.4)
    ax.set_ylim(-n_rows / 2.0 - 0.2, n_rows / 2.0 + 0.2)
    ax.axis("off")
    ax.set_title(f"{condition}: paths to the most affected genes", fontsize=10)
    return fig
