"""What a screen ranks by: :class:`Objective` (the screen contract's shape).

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


@dataclass(frozen=True)
class Objective:
    """A screen objective: one score per candidate, which end is best, and its null.

    Attributes
    ----------
    name
        Registry name.
    direction
        ``"higher"`` or ``"lower"``: which end of :meth:`score` is best.
    null
        One line: what :meth:`pvalues` tests against (``"none"`` when it gives none).
    description
        One line for tables and pages.
    params
        The parameters it was built with (for ``meta.json``).
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
        x = np.asarray(effects, dtype=np.float64)
        return np.asarray(self.scorer(x, list(genes), uncertainty), dtype=np.float64)

    def pvalues(
        self,
        effects: np.ndarray,
        genes: Sequence[str],
        scores: np.ndarray,
        *,
        uncertainty: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """One-sided p-value of each row's score at the objective's best end, or ``None``."""
        if self.tester is None:
            return None
        x = np.asarray(effects, dtype=np.float64)
        s = np.asarray(scores, dtype=np.float64)
        return np.asarray(self.tester(x, list(genes), s, uncertainty), dtype=np.float64)
