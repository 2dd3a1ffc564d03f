"""Small generated data for the model tests.

``experiment``: a :func:`celltwin.simulate.simulate` run (three contexts, singles, combinations)
with a split that holds out one single perturbation, one combination and every perturbed cell of
context ``C`` (the data of :mod:`celltwin.testing`'s checks). ``make_cells``: a factory of log-space cells with exactly planted effects, for
value tests that need full control over the effects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import (
    CONTEXT,
    CONTROL,
    DOSE,
    PERTURBATION,
    PERTURBATION_TYPE,
    SPLIT,
    TRAIN,
)
from celltwin.testing._data import CellData, cell_data


@pytest.fixture(scope="session")
def experiment() -> CellData:
    """The generated cells of the conformance checks (:func:`celltwin.testing._data.cell_data`)."""
    return cell_data()


Key = tuple[str, str, str]  # (context, perturbation, dose)


@pytest.fixture(scope="session")
def make_cells() -> Callable[..., AnnData]:
    """Factory: ``make_cells(effects, *, n_genes, ...)`` -> canonical AnnData in log space.

    ``effects`` maps (context, perturbation, dose) to a genes-wide effect vector; each group
    gets ``n_cells`` cells ``baseline[context] + effect + noise`` (clipped at 0, which the
    baseline of 3 makes rare), plus ``n_control`` control cells per context.
    """

    def factory(
        effects: Mapping[Key, np.ndarray],
        *,
        n_genes: int,
        n_cells: int = 10,
        n_control: int = 30,
        noise: float = 0.2,
        perturbation_type: str = "crispr_ko",
        splits: Mapping[Key, str] | None = None,
        gene_names: list[str] | None = None,
        seed: int = 0,
    ) -> AnnData:
        rng = np.random.default_rng(seed)
        contexts = sorted({k[0] for k in effects})
        baseline = {c: 3.0 + rng.uniform(0.0, 2.0, n_genes) for c in contexts}
        blocks, rows = [], []
        groups: list[tuple[Key, np.ndarray, int]] = [
            ((c, CONTROL, ""), np.zeros(n_genes), n_control) for c in contexts
        ]
        groups += [(k, np.asarray(v, dtype=np.float64), n_cells) for k, v in effects.items()]
        for key, effect, n in groups:
            x = baseline[key[0]] + effect + noise * rng.standard_normal((n, n_genes))
            blocks.append(np.maximum(x, 0.0))
            split = (splits or {}).get(key, TRAIN)
            rows += [(*key, split)] * n
        obs = pd.DataFrame(rows, columns=[CONTEXT, PERTURBATION, DOSE, SPLIT])
        obs[PERTURBATION_TYPE] = np.where(
            obs[PERTURBATION] == CONTROL, "control", perturbation_type
        )
        obs.index = [f"cell{i}" for i in range(len(obs))]
        names = gene_names or [f"g{i:03d}" for i in range(n_genes)]
        return AnnData(
            X=np.vstack(blocks).astype(np.float32), obs=obs, var=pd.DataFrame(index=names)
        )

    return factory
