"""Cell states within contexts: the context transfer resolved to sub-populations of cells.

A cell type is not one state. Its control cells form sub-states (sub-clusters in the latent
space), and a treatment may move them differently; a held-out context's cells may resemble some
sub-states of a training context more than its average cell (a B cell resembles the
plasmacytoid cells among dendritic cells more than the DC mean). :class:`CellStates` keeps, per
training context, a pool of control cells (latent), each labelled with its sub-state, and per
training condition the effect of each sub-state it has enough cells for. A target context's
effect is then the mean, over its control cells and over each cell's nearest pooled control
cells of the source contexts, of the effect of the neighbour's sub-state
(:meth:`CellStates.counts` and :meth:`CellStates.effect`).

Treated cells are assigned to a sub-state by their nearest sub-state centre in the genes the
treatment leaves alone in that context (absolute mean change below :data:`UNCHANGED`), since
the genes it changes would pull every treated cell away from every control centre.

Numpy and scikit-learn only; ``transition``'s classical half (:mod:`._features`) uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

#: Control cells per sub-state when choosing how many a context has (at least 2, at most 8).
STATE_SIZE: Final = 150
MAX_STATES: Final = 8
#: Cells a sub-state needs on each side (control, treated) for an effect of its own; sub-states
#: with fewer keep the condition's context-wide effect.
MIN_CELLS: Final = 15
#: Control cells per context kept in the neighbour pool (a seeded subset beyond that).
POOL_CELLS: Final = 2000
#: Nearest pooled control cells per target cell.
NEIGHBOURS: Final = 30
#: Genes whose mean changes less than this (log1p) under a treatment place its cells.
UNCHANGED: Final = 0.1
#: ...among genes whose control mean exceeds this.
EXPRESSED: Final = 0.02


@dataclass(frozen=True)
class CellStates:
    """Sub-states of the training contexts' control cells and the conditions' effects in them.

    Attributes
    ----------
    names
        The training contexts (the model's ``contexts_``).
    latent
        (N, k) pooled control cells of every training context, in the latent space.
    context
        (N,) index of each pooled cell's context (into ``names``).
    label
        (N,) each pooled cell's sub-state within its context.
    n_states
        (n_contexts,) sub-states per context.
    index
        (M, 2) ``(condition row, sub-state)`` of each sub-state effect of its own.
    effects
        (M, genes) those effects; every other sub-state of a condition has its context-wide
        effect.
    cells
        (M, 2) the control and treated cells behind each of those effects.
    """

    names: tuple[str, ...]
    latent: np.ndarray
    context: np.ndarray
    label: np.ndarray
    n_states: np.ndarray
    index: np.ndarray
    effects: np.ndarray
    cells: np.ndarray

    def counts(
        self, cells: np.ndarray, sources: Sequence[int], *, exclude: int | None = None
    ) -> dict[int, np.ndarray]:
        """Per source context, how many neighbour slots of ``cells`` fall in each sub-state.

        ``cells`` are latent target cells; the pool is restricted to the ``sources`` contexts
        (and never includes ``exclude``, the target's own context when it is a training one).
        """
        pool = np.isin(self.context, [s for s in sources if s != exclude])
        if not pool.any():
            return {}
        k = int(min(NEIGHBOURS, pool.sum()))
        finder = NearestNeighbors(n_neighbors=k).fit(self.latent[pool])
        _, hits = finder.kneighbors(cells)
        ctx = self.context[pool][hits].ravel()
        lab = self.label[pool][hits].ravel()
        return {
            int(c): np.bincount(lab[ctx == c], minlength=int(self.n_states[c])).astype(np.float64)
            for c in np.unique(ctx)
        }

    def effect(
        self, counts: dict[int, np.ndarray], rows: dict[int, tuple[int, np.ndarray]]
    ) -> tuple[np.ndarray, dict[int, float]] | None:
        """The neighbour-weighted effect and each source context's share of the neighbours.

        ``rows`` maps a source context to its condition: the model's row of it (as
        :attr:`index`) and its context-wide effect. ``None`` when no neighbour is a source.
        """
        total = sum(float(v.sum()) for c, v in counts.items() if c in rows)
        if total == 0:
            return None
        out: np.ndarray | float = 0.0
        shares: dict[int, float] = {}
        for c, n in counts.items():
            if c not in rows or n.sum() == 0:
                continue
            row, delta = rows[c]
            per_state = np.tile(delta, (len(n), 1))
            own = np.flatnonzero(self.index[:, 0] == row)
            per_state[self.index[own, 1]] = self.effects[own]
            out = out + n @ per_state
            shares[c] = float(n.sum()) / total
        return np.asarray(out) / total, shares

    def cells_of(self, context: int) -> np.ndarray:
        """The pooled control cells of a training context (latent)."""
        return self.latent[self.context == context]


def fit_states(
    z: np.ndarray,
    x: np.ndarray,
    contexts: np.ndarray,
    is_control: np.ndarray,
    context_names: Sequence[str],
    condition_rows: Sequence[np.ndarray],
    condition_contexts: Sequence[str],
    delta: np.ndarray,
    *,
    seed: int,
) -> CellStates:
    """Sub-states of each context's controls (k-means in the latent space) and per-state effects.

    Parameters
    ----------
    z, x
        Latent and log1p expression of the training cells (rows aligned).
    contexts, is_control
        Per training cell, its context and whether it is a control cell.
    context_names
        The model's contexts (the order of :attr:`CellStates.context`).
    condition_rows, condition_contexts, delta
        Per training condition: its cells' rows, its context and its context-wide effect.
    seed
        Seeds the k-means and the pool subsets.
    """
    controls, pool = _control_states(z, x, contexts, is_control, context_names, seed=seed)
    index: list[tuple[int, int]] = []
    effects: list[np.ndarray] = []
    sizes: list[tuple[int, int]] = []
    for i, (c, cells) in enumerate(zip(condition_contexts, condition_rows, strict=True)):
        for s, n_ctrl, treated in _treated_states(x, cells, delta[i], c, controls):
            index.append((i, s))
            sizes.append((n_ctrl, len(treated)))
            # centres[c][s] is the sub-state's control mean over all genes.
            effects.append(x[treated].mean(axis=0) - controls.centres[c][s])
    n_genes = x.shape[1]
    return CellStates(
        names=tuple(context_names),
        latent=np.vstack(pool.latent) if pool.latent else np.zeros((0, z.shape[1])),
        context=np.concatenate(pool.context) if pool.context else np.zeros(0, np.int64),
        label=np.concatenate(pool.label) if pool.label else np.zeros(0, np.int64),
        n_states=pool.n_states,
        index=np.asarray(index, dtype=np.int64).reshape(-1, 2),
        effects=np.vstack(effects) if effects else np.zeros((0, n_genes)),
        cells=np.asarray(sizes, dtype=np.int64).reshape(-1, 2),
    )


@dataclass(frozen=True)
class _ControlStates:
    """Per training context: its control cells' sub-state labels, the sub-states' mean
    expression (gene space) and the controls' mean."""

    labels: dict[str, np.ndarray]
    centres: dict[str, np.ndarray]
    mean: dict[str, np.ndarray]


@dataclass(frozen=True)
class _Pool:
    """The neighbour pool, per context: latent cells, context index, sub-state label."""

    latent: list[np.ndarray]
    context: list[np.ndarray]
    label: list[np.ndarray]
    n_states: np.ndarray


def _control_states(
    z: np.ndarray,
    x: np.ndarray,
    contexts: np.ndarray,
    is_control: np.ndarray,
    context_names: Sequence[str],
    *,
    seed: int,
) -> tuple[_ControlStates, _Pool]:
    """k-means sub-states of each context's control cells, and the pooled control cells."""
    rng = np.random.default_rng([seed, 29])
    pool = _Pool([], [], [], np.zeros(len(context_names), dtype=np.int64))
    states = _ControlStates({}, {}, {})
    for j, c in enumerate(context_names):
        rows = np.flatnonzero(is_control & (contexts == c))
        if len(rows) == 0:
            continue
        k = (
            int(np.clip(len(rows) // STATE_SIZE, 2, MAX_STATES))
            if len(rows) >= 2 * MIN_CELLS
            else 1
        )
        km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(z[rows])
        labels = km.labels_.astype(np.int64)
        pool.n_states[j] = k
        states.labels[c] = labels
        states.centres[c] = np.vstack([x[rows[labels == s]].mean(axis=0) for s in range(k)])
        states.mean[c] = x[rows].mean(axis=0)
        keep = np.arange(len(rows))
        if len(rows) > POOL_CELLS:
            keep = np.sort(rng.choice(len(rows), POOL_CELLS, replace=False))
        pool.latent.append(z[rows[keep]])
        pool.context.append(np.full(len(keep), j, dtype=np.int64))
        pool.label.append(labels[keep])
    return states, pool


def _treated_states(
    x: np.ndarray, cells: np.ndarray, delta: np.ndarray, context: str, controls: _ControlStates
) -> list[tuple[int, int, np.ndarray]]:
    """``(sub-state, its control cells, its treated cells)`` of one training condition, for
    the sub-states with enough cells on both sides (:data:`MIN_CELLS`).

    Treated cells go to the nearest sub-state centre in the genes the treatment leaves alone.
    """
    centres = controls.centres.get(context)
    if centres is None or len(centres) < 2:
        return []
    genes = (np.abs(delta) < UNCHANGED) & (controls.mean[context] > EXPRESSED)
    if not genes.any():
        return []
    treated = x[cells][:, genes]
    centre = centres[:, genes]
    # Squared distances without a cells x states x genes array.
    dist = (
        (treated**2).sum(axis=1)[:, None]
        - 2.0 * treated @ centre.T
        + (centre**2).sum(axis=1)[None, :]
    )
    labels = dist.argmin(axis=1)
    out = []
    for s in range(len(centres)):
        n_ctrl, n_treated = int((controls.labels[context] == s).sum()), int((labels == s).sum())
        if n_ctrl >= MIN_CELLS and n_treated >= MIN_CELLS:
            out.append((s, n_ctrl, cells[labels == s]))
    return out
