"""What a screen ranks by: :class:`Objective` and the :class:`ObjectiveSpec` of its registry.

An objective turns a batch of effects (candidates x genes, mean effects in log1p space) into one
score per candidate, says which end is best (``direction``) and, where it can, gives p-values
against a documented null (``null``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Direction = Literal["higher", "lower"]
DIRECTIONS: tuple[str, ...] = ("higher", "lower")

#: ``scorer(effects, genes, uncertainty)`` -> one float per row.
Scorer = Callable[[np.ndarray, Sequence[str], np.ndarray | None], np.ndarray]
#: ``tester(effects, genes, scores, uncertainty)`` -> one p-value per row.
Tester = Callable[[np.ndarray, Sequence[str], np.ndarray, np.ndarray | None], np.ndarray]


def check_effects(
    effects: np.ndarray, genes: Sequence[str], uncertainty: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``effects`` as a finite float64 matrix matching ``genes``; ``uncertainty`` likewise."""
    x = np.asarray(effects, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"'effects' must be candidates x genes (got shape {x.shape})")
    if x.shape[1] != len(genes):
        raise ValueError(
            f"'effects' has {x.shape[1]} columns but {len(genes)} gene names were given"
        )
    if not np.isfinite(x).all():
        raise ValueError("'effects' holds NaN or infinite values; drop or fill them first")
    if uncertainty is None:
        return x, None
    u = np.asarray(uncertainty, dtype=np.float64)
    if u.shape != x.shape:
        raise ValueError(
            f"'uncertainty' must have the shape of 'effects' {x.shape} (got {u.shape})"
        )
    return x, u


@dataclass(frozen=True)
class Objective:
    """A screen objective: one score per candidate, which end is best, and its null.

    Attributes
    ----------
    name
        Registry name (``reverse``, ``mimic``, ``move``, ``specific``, ...).
    direction
        ``"higher"`` or ``"lower"``: which end of :meth:`score` is best.
    null
        One line: what :meth:`pvalues` tests against (``"none"`` when it gives none).
    description
        One line for tables and pages, with the objective's parameters.
    params
        The parameters it was built with (for ``meta.json``).

    Notes
    -----
    ``uncertainty`` (keyword of :meth:`score` and :meth:`pvalues`): the standard deviation of each
    effect, same shape as ``effects``, or ``None``. A screen engine with intervals
    ``[lower, upper]`` at level ``1 - alpha`` passes ``(upper - lower) / (2 z)`` with
    ``z = Phi^-1(1 - alpha / 2)`` (1.96 at 95%). Only objectives about uncertainty use it
    (``specific``); the others ignore it.
    """

    name: str
    direction: Direction
    null: str
    description: str
    scorer: Scorer = field(repr=False)
    tester: Tester | None = field(default=None, repr=False)
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"'direction' must be one of {DIRECTIONS} (got {self.direction!r})")

    def score(
        self,
        effects: np.ndarray,
        genes: Sequence[str],
        *,
        uncertainty: np.ndarray | None = None,
    ) -> np.ndarray:
        """One score per row of ``effects`` (candidates x ``genes``); best at ``direction``."""
        x, u = check_effects(effects, genes, uncertainty)
        return np.asarray(self.scorer(x, list(genes), u), dtype=np.float64)

    def pvalues(
        self,
        effects: np.ndarray,
        genes: Sequence[str],
        scores: np.ndarray,
        *,
        uncertainty: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """One-sided p-value of each row's score at the objective's best end, or ``None``.

        ``scores`` are this objective's :meth:`score` of the same rows (not recomputed).
        """
        if self.tester is None:
            return None
        x, u = check_effects(effects, genes, uncertainty)
        s = np.asarray(scores, dtype=np.float64)
        if s.shape != (x.shape[0],):
            raise ValueError(f"'scores' must hold one value per row ({x.shape[0]}; got {s.shape})")
        return np.asarray(self.tester(x, list(genes), s, u), dtype=np.float64)

    def best_first(self, scores: np.ndarray) -> np.ndarray:
        """Row order from the best score to the worst (stable; NaN last)."""
        s = np.asarray(scores, dtype=np.float64)
        key = -s if self.direction == "higher" else s
        return np.argsort(np.where(np.isnan(key), np.inf, key), kind="stable")


@dataclass(frozen=True)
class ObjectiveSpec:
    """A registered objective builder: ``build(**params) -> Objective`` and what it promises."""

    name: str
    build: Callable[..., Objective]
    direction: Direction
    null: str
    description: str
