"""Small generated data the conformance checks fit and predict on (seconds, not minutes).

Built once per process and shared by the checks, which never modify it (they copy first).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT, TEST, TRAIN, split_combination
from ..simulate import simulate


@dataclass(frozen=True)
class CellData:
    """Canonical cells with ``obs['split']`` and the roles of their conditions.

    ``adata`` holds three contexts (``A``, ``B``, ``C``), single perturbations and pairs. Test
    cells: one single perturbation and one pair never trained on, every perturbed cell of
    ``C`` (so ``C`` is an unseen context: control cells only in training) and a few control
    cells of ``A`` (which fit must not read either).
    """

    adata: AnnData
    seen_single: str  # a single trained in contexts A and B
    seen_combo: str  # a combination trained in A and B
    held_single: str  # a single perturbation never trained on (test everywhere)
    held_combo: str  # a combination never trained on, both singles trained
    unseen_context: str  # a context with control cells only in training

    @property
    def seen(self) -> list[tuple[str, str]]:
        """Two trained conditions a model of any kind must predict."""
        return [("A", self.seen_single), ("B", self.seen_combo)]


@cache
def cell_data() -> CellData:
    """The shared :class:`CellData` (a :func:`celltwin.simulate.simulate` run; never modify)."""
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
    test[np.flatnonzero((context == "A") & (pert == CONTROL))[:4]] = True
    obs[SPLIT] = pd.Categorical(np.where(test, TEST, TRAIN))
    return CellData(adata, seen_single, seen_combo, held_single, held_combo, "C")


@dataclass(frozen=True)
class SignatureData:
    """Training signatures (``scores``) and pairs to predict, by what is new in them.

    ``scores``: three contexts ``c0``-``c2``, gene scores ``mu[c] + U[p] W[c] + noise`` of 20
    perturbations; a fifth of them have no signature in ``c0``. ``seen``: pairs measured in
    other contexts (what every signature model predicts); ``unseen_context``: those hidden
    pairs (the perturbation measured elsewhere only); ``unseen_perturbation``: a perturbation
    without any signature, in a training context.
    """

    scores: AnnData
    seen: list[tuple[str, str]]
    unseen_context: list[tuple[str, str]]
    unseen_perturbation: list[tuple[str, str]]


@cache
def signature_data() -> SignatureData:
    """The shared :class:`SignatureData` (planted low-rank scores; never modify)."""
    rng = np.random.default_rng(1)
    n_ctx, n_pert, n_genes, rank = 3, 20, 30, 3
    u = rng.normal(size=(n_pert, rank))
    w = rng.normal(size=(n_ctx, rank, n_genes))
    mu = 0.5 * rng.normal(size=(n_ctx, n_genes))
    tensor = mu[:, None, :] + np.einsum("pr,crg->cpg", u, w) + 0.3 * rng.normal(size=(n_ctx, 1, 1))
    tensor += 0.3 * rng.normal(size=tensor.shape)
    hidden = set(rng.choice(n_pert, n_pert // 5, replace=False).tolist())
    keys = [
        (f"c{c}", f"p{p}")
        for c in range(n_ctx)
        for p in range(n_pert)
        if not (c == 0 and p in hidden)
    ]
    x = np.array([tensor[int(c[1:]), int(p[1:])] for c, p in keys], dtype=np.float32)
    obs = pd.DataFrame(keys, columns=[CONTEXT, PERTURBATION])
    obs.index = pd.Index([f"{c}/{p}" for c, p in keys])
    scores = AnnData(X=x, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]))
    hidden_pairs = [("c0", f"p{p}") for p in sorted(hidden)]
    return SignatureData(
        scores=scores,
        seen=hidden_pairs[:2],
        unseen_context=hidden_pairs,
        unseen_perturbation=[("c1", "never_measured")],
    )
