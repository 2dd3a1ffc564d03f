"""Building blocks of the classical estimates (:mod:`._features`): the :class:`Estimate`
record, the kernels over contexts and doses, the fold-change and component-feature inputs, and
the interaction features of combinations. Everything here is numpy and closed form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from ..._keys import split_combination
from .._conditions import dose_components

#: Kinds of classical estimate the network learns to correct, in the order of its one-hot input.
VIEWS: tuple[str, ...] = ("context", "dose", "combination", "features")
#: Candidate kernel bandwidths, as multiples of the median squared distance between contexts
#: (``inf`` = equal weights).
TAU_GRID: tuple[float, ...] = (np.inf, 4.0, 1.0, 0.25, 0.0625, 0.015625)
#: Candidate bandwidths of the dose kernel, in decades of dose (``inf``: the mean over the
#: measured doses; 0: the nearest dose).
DOSE_BANDWIDTHS: tuple[float, ...] = (np.inf, 1.0, 0.5, 0.25, 0.0)


def log_dose(dose: str) -> float:
    """``log10`` of a dose in µM (0 when there is none), the dose input of the features."""
    if dose == "":
        return 0.0
    value = float(dose)
    return float(np.log10(value)) if value > 0 else -3.0


def dose_weights(distance: np.ndarray, bandwidth: float) -> np.ndarray:
    """Normalised weights of measured doses at ``distance`` decades from the asked one.

    A Gaussian kernel of ``bandwidth`` decades; ``inf`` weighs all equally and ``0`` keeps the
    nearest (ties shared).
    """
    if np.isinf(bandwidth):
        w = np.ones_like(distance, dtype=np.float64)
    elif bandwidth <= 0:
        w = (distance <= distance.min() + 1e-12).astype(np.float64)
    else:
        # Relative to the nearest dose, so far doses cannot underflow every weight to zero.
        w = np.exp(-0.5 * (np.square(distance) - distance.min() ** 2) / bandwidth**2)
    return w / w.sum()


@dataclass(frozen=True)
class Estimate:
    """A classical effect estimate: the genes-wide delta and the source it came from."""

    delta: np.ndarray
    source: str  # "own" or one of VIEWS
    #: Built only from measurements of its own context: a combination whose every part was
    #: measured alone there (sum plus the interaction law). The network leaves such estimates
    #: alone, as it leaves measured conditions (see ``TransitionModel``).
    measured: bool = False
    #: For a context transfer with a fold-change half: the per-gene ratio and its share. A
    #: generated cell then changes in proportion to its own expression (the mean is ``delta``).
    fold: tuple[np.ndarray, np.ndarray] | None = None


#: Pseudocount (CP10k) of the fold-change ratio: a gene absent from the sources' controls gets
#: a finite ratio, and one absent from both sides a ratio of 1.
FOLD_PSEUDO: Final = 1e-3


@dataclass(frozen=True)
class FoldChange:
    """What the multiplicative half of the context transfer needs (see :class:`Transfer`).

    Attributes
    ----------
    pert_linear, control_linear
        Per training condition (rows as the transfer's keys): the mean of ``expm1(x)`` over its
        cells and over its context's control cells.
    controls
        Per context an estimate may be asked for: its log1p control cells, or their per-gene
        quantile profile (:func:`control_profile`).
    share
        Per gene, the weight of the multiplicative estimate (``None``: log-space only).
    """

    pert_linear: np.ndarray
    control_linear: np.ndarray
    controls: Mapping[str, np.ndarray]
    share: np.ndarray | None = None


#: Quantile levels of a context's control profile for the fold-change mean.
FOLD_LEVELS: Final = 100
#: Control cells per context from which its quantile profile is taken (fold-change transfer).
FOLD_CELLS: Final = 20_000


def control_profile(cells: np.ndarray, *, levels: int = FOLD_LEVELS) -> np.ndarray:
    """Per gene, the cells' quantiles at ``(i + 0.5) / levels``: a ``levels`` x genes stand-in.

    The mean over cells of a per-gene monotone function of expression (here the log1p change
    of a fold change) is the mean of that function over the gene's quantiles, up to the grid;
    so the fold-change estimate costs ``levels`` rows instead of every control cell (a training
    fit asks for it once per condition and ensemble member). Up to ``levels`` cells are
    returned as they are.
    """
    if len(cells) <= levels:
        return np.asarray(cells, dtype=np.float64)
    grid = (np.arange(levels) + 0.5) / levels
    return np.quantile(np.asarray(cells, dtype=np.float64), grid, axis=0)


def fold_change_effect(cells: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Per cell, the log1p change of scaling its linear expression by ``ratio`` (per gene)."""
    return np.log1p(ratio * np.expm1(cells)) - cells


class ComponentFeatures:
    """Prior-knowledge feature vectors of single perturbations (components), dose-aware.

    The vector of ``(component, dose)`` is ``[f, f * log10(dose)]`` where ``f`` is the
    component's row; a combination is the sum of its parts. Components without a row have no
    features.
    """

    def __init__(self, names: Sequence[str], matrix: np.ndarray) -> None:
        self.rows = {n: i for i, n in enumerate(names)}
        self.matrix = np.asarray(matrix, dtype=np.float64)

    @property
    def dim(self) -> int:
        return 2 * self.matrix.shape[1]

    def vector(self, perturbation: str, dose: str) -> np.ndarray | None:
        parts = split_combination(perturbation)
        doses = dose_components(perturbation, dose)
        if not parts or any(p not in self.rows for p in parts):
            return None
        out = np.zeros(self.dim)
        k = self.matrix.shape[1]
        for part, d in zip(parts, doses, strict=True):
            f = self.matrix[self.rows[part]]
            out[:k] += f
            out[k:] += f * log_dose(d)
        return out


def kernel_weights(
    target: np.ndarray, sources: np.ndarray, *, tau: float, scale: float
) -> np.ndarray:
    """Normalised weights of source contexts for a target context (latent control means)."""
    if not np.isfinite(tau) or len(sources) == 1:
        return np.full(len(sources), 1.0 / len(sources))
    d = ((sources - target[None, :]) ** 2).sum(axis=1)
    w = np.exp(-(d - d.min()) / (tau * scale))
    return w / w.sum()


PAIR_RIDGE = 1.0


#: Interaction features of a pair of part effects ``a``, ``b`` (per gene). Generic forms of
#: the non-additivity of regulatory networks: a product (multiplicative / cooperative
#: effects), the smaller and the larger of two same-direction effects (saturation: the second
#: push adds less, or the larger one dominates, as in epistasis), and the signed square of the
#: sum (large combined effects saturate). One coefficient each, shared by all genes.
PAIR_FEATURES: Final = ("product", "abs_product", "same_min", "same_max", "signed_square")


def pair_features(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Genes x :data:`PAIR_FEATURES` interaction features, summed over pairs of part effects."""
    out = np.zeros((len(parts[0]), len(PAIR_FEATURES)))
    for i in range(len(parts)):
        for j in range(i + 1, len(parts)):
            a, b = parts[i], parts[j]
            same = np.sign(a) == np.sign(b)
            total = a + b
            out += np.column_stack(
                [
                    a * b,
                    np.abs(a * b),
                    np.minimum(a, b) * same,
                    np.maximum(a, b) * same,
                    total * np.abs(total),
                ]
            )
    return out


def solve_pairs(stats: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Ridge coefficients of the interaction regression (zeros without training combinations)."""
    n = len(PAIR_FEATURES)
    if not stats:
        return np.zeros(n)
    xtx = np.sum([s[0] for s in stats], axis=0)
    xty = np.sum([s[1] for s in stats], axis=0)
    return np.linalg.solve(xtx + PAIR_RIDGE * np.eye(n), xty)


def median_scale(latents: Sequence[np.ndarray]) -> float:
    """Median squared distance between distinct context latents (1 when undefined)."""
    unique = np.unique(np.vstack(latents), axis=0) if latents else np.zeros((0, 1))
    if len(unique) < 2:
        return 1.0
    d = ((unique[:, None, :] - unique[None, :, :]) ** 2).sum(axis=2)
    off = d[np.triu_indices(len(unique), k=1)]
    med = float(np.median(off))
    return med if med > 0 else 1.0


def log_doses(perturbation: str, dose: str) -> np.ndarray:
    """Per component of ``perturbation``, ``log10`` of its dose (:func:`log_dose`)."""
    return np.array([log_dose(d) for d in dose_components(perturbation, dose)])
