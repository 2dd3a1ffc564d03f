"""The query's control cells, summarised per context for the classical estimates."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from ._cells import evenly, latent_summary
from ._estimate import FOLD_CELLS, control_profile
from ._states import POOL_CELLS


class _Encoder(Protocol):
    """What :class:`_QueryContexts` needs of the model: its latent space and contexts."""

    n_latent_: int
    contexts_: list[str]

    def _encode(self, x: np.ndarray) -> np.ndarray: ...


class _QueryContexts:
    """Control cells of the query, summarised per context (latent mean and sd)."""

    def __init__(self, model: _Encoder, controls: np.ndarray, contexts: np.ndarray) -> None:
        self.model = model
        self._controls = controls
        self._contexts = contexts
        self._summaries: dict[str, np.ndarray] = {}
        self._means: dict[str, np.ndarray] = {}
        for c in pd.unique(contexts):
            cells = controls[contexts == c]
            self._summaries[str(c)] = latent_summary(model._encode(cells))
            self._means[str(c)] = cells.mean(axis=0)

    def controls(self, context: str) -> np.ndarray:
        return self._controls[self._contexts == context]

    def summary(self, context: str) -> np.ndarray:
        return self._summaries[context]

    def control_mean(self, context: str) -> np.ndarray:
        """Mean expression of all the context's control cells in the query."""
        return self._means[context]

    def latent(self, context: str) -> np.ndarray:
        return self._summaries[context][: self.model.n_latent_]

    def fold_controls(self) -> dict[str, np.ndarray]:
        """Each query context's control profile for the fold-change transfer (from at most
        ``FOLD_CELLS`` cells, an evenly spaced subset: deterministic, no seed needed)."""
        return {c: control_profile(evenly(self.controls(c), FOLD_CELLS)) for c in self._summaries}

    def cell_latents(self) -> dict[str, np.ndarray]:
        """Latent control cells of each query context that is not a training context (an
        evenly spaced subset beyond the cell-state pool's size), for the cell-state transfer."""
        known = set(self.model.contexts_)
        return {
            c: self.model._encode(evenly(self.controls(c), POOL_CELLS))
            for c in self._summaries
            if c not in known
        }

    def latents(self) -> dict[str, np.ndarray]:
        """Query contexts' latent means; training contexts keep their training summary."""
        known = set(self.model.contexts_)
        return {c: s[: self.model.n_latent_] for c, s in self._summaries.items() if c not in known}
