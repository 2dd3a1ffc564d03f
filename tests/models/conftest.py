"""Small generated data for the model tests.

``experiment``: a :func:`celltwin.simulate.simulate` run (three contexts, singles, combinations)
with a split that holds out one single perturbation, one combination and every perturbed cell of
context ``C``. ``make_cells``: a factory of log-space cells with exactly planted effects, for
value tests that need full control over the effects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

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
    TEST,
    TRAIN,
    split_combination,
)
from celltwin.simulate import simulate


@dataclass(frozen=True)
class Experiment:
    adata: AnnData  # canonical cells with obs['split']; never modify (session-scoped)
    seen_single: str  # a single trained in contexts A and B
    seen_combo: str  # a combination trained in A and B
    held_single: str  # a single perturbation never trained on (test everywhere)
    held_combo: str  # a combination never trained on, both singles trained
    unseen_context: str  # a context with control cells only in training


@pytest.fixture(scope="session")
def experiment() -> Experiment:
    sim = simulate(
        n_genes=40,
        n_tfs=6,
        contexts=("A", "B", "C"),
        n_perturbations=5,
        combinations=2,
        cells_per_condition=12,
        seed=3,
    )
    adata = sim.adata
    labels = sorted(set(adata.obs[PERTURBATION].astype(str)) - {CONTROL})
    combos = [p for p in labels if len(split_combination(p)) > 1]
    singles = [p for p in labels if len(split_combination(p)) == 1]
    in_combos = {c for p in combos for c in split_combination(p)}
    held_combo, seen_combo = combos[0], combos[1]
    held_single = next(p for p in singles if p not in in_combos)
    seen_single = next(p for p in singles if p in in_combos)

    obs = adata.obs
    pert = obs[PERTURBATION].astype(str).to_numpy()
    context = obs[CONTEXT].astype(str).to_numpy()
    test = np.isin(pert, [held_single, held_combo]) | ((context == "C") & (pert != CONTROL))
    # A few control cells of A are test cells too: fit must not read them either.
    test[np.flatnonzero((context == "A") & (pert == CONTROL))[:4]] = True
    obs[SPLIT] = pd.Categorical(np.where(test, TEST, TRAIN))
    return Experiment(adata, seen_single, seen_combo, held_single, held_combo, "C")


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
