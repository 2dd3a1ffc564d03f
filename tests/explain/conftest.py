"""Generated inputs of the explain tests: a random signed net and random effects over its genes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

World = tuple[pd.DataFrame, pd.DataFrame]


def _signed_world(seed: int, n_genes: int, n_sources: int, size: int) -> World:
    """Effects of conditions ``a``, ``b``, ``c`` (standard normal) and a net of sources
    ``S0..`` with ``size`` random targets each, weights of random sign in [0.2, 1]."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    rows = []
    for s in range(n_sources):
        targets = rng.choice(n_genes, size=size, replace=False)
        weights = rng.uniform(0.2, 1.0, size=size) * rng.choice([-1.0, 1.0], size=size)
        rows += [(f"S{s}", genes[t], w) for t, w in zip(targets, weights, strict=True)]
    net = pd.DataFrame(rows, columns=["source", "target", "weight"])
    effects = pd.DataFrame(rng.normal(size=(3, n_genes)), index=["a", "b", "c"], columns=genes)
    return net, effects


@pytest.fixture(scope="session")
def signed_world() -> Callable[..., World]:
    """Factory ``signed_world(seed, n_genes, n_sources, size) -> (net, effects)``."""
    return _signed_world
