"""The query's control cells, summarised per context for the classical estimates."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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

    def fold_controls(self) -> Mapping[str, np.ndarray]:
        """Each query context's control profile for the fold-change transfer (from at most
        ``FOLD_CELLS`` cells, an evenly spaced subset: deterministic, no seed needed),
        computed when first asked for (only a context transfer needs it)."""
        return _Profiles(self)

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


class _Profiles(Mapping[str, np.ndarray]):
    """The query contexts' fold-change control profiles, each computed on first access."""

    def __init__(self, query: _QueryContexts) -> None:
        self._query = query
        self._done: dict[str, np.ndarray] = {}

    def __getitem__(self, context: str) -> np.ndarray:
        if context not in self:
            raise KeyError(context)
        if context not in self._done:
            cells = evenly(self._query.controls(context), FOLD_CELLS)
            self._done[context] = control_profile(cells)
        return self._done[context]

    def __iter__(self) -> Iterator[str]:
        return iter(self._query._summaries)

    def __len__(self) -> int:
        return len(self._query._summaries)

    def __contains__(self, context: object) -> bool:
        return context in self._query._summaries
