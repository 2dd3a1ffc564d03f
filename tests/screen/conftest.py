"""Fitted baselines on the shared generated cells and a private objective for the engine tests.

The objective is the screen contract's :class:`~celltwin.screen.Objective` with a cosine to a
query vector (and, optionally, a Gaussian-null p-value), so the engine is tested without the
objective registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
from scipy.stats import norm

from celltwin.models import LinearBaseline, MeanBaseline
from celltwin.screen import Objective
from celltwin.testing._data import CellData, cell_data


def cosine_objective(
    query: np.ndarray,
    query_genes: Sequence[str],
    *,
    direction: str = "higher",
    pvalues: bool = False,
) -> Objective:
    """Cosine of each effect row with ``query`` (aligned by gene name)."""
    q = dict(zip(query_genes, np.asarray(query, dtype=float), strict=True))

    def scorer(x: np.ndarray, genes: Sequence[str], _u: np.ndarray | None) -> np.ndarray:
        v = np.array([q.get(g, 0.0) for g in genes])
        return x @ v / (np.linalg.norm(x, axis=1) * np.linalg.norm(v) + 1e-12)

    def tester(x: np.ndarray, genes: Sequence[str], s: np.ndarray, _u: object) -> np.ndarray:
        z = s * np.sqrt(len(genes))  # cosine of random directions: about N(0, 1/n)
        return norm.sf(z) if direction == "higher" else norm.cdf(z)

    return Objective(
        name="cosine",
        direction=direction,  # type: ignore[arg-type]
        null="random directions" if pvalues else "none",
        description="cosine to a query",
        scorer=scorer,
        tester=tester if pvalues else None,
        params={"n_query_genes": len(query_genes)},
    )


@pytest.fixture(scope="session")
def cosine() -> Callable[..., Objective]:
    """:func:`cosine_objective`, for the tests."""
    return cosine_objective


@pytest.fixture(scope="session")
def data() -> CellData:
    return cell_data()


@pytest.fixture(scope="session")
def linear(data: CellData) -> LinearBaseline:
    return LinearBaseline().fit(data.adata)


@pytest.fixture(scope="session")
def mean(data: CellData) -> MeanBaseline:
    return MeanBaseline().fit(data.adata)
