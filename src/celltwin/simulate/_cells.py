"""Cells: which condition and batch each cell gets, and its counts, drawn block by block.

Every block of :data:`BLOCK` consecutive cells has its own random stream (keyed by the seed and the
block number), so any range of cells can be drawn on its own and the result does not depend on how
the cells are grouped into chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from scipy.special import logsumexp

from .._keys import (
    BATCH,
    CONTEXT,
    CONTROL,
    COUNTS_LAYER,
    DOSE,
    GENE_ID,
    PERTURBATION,
    PERTURBATION_TYPE,
    PERTURBATION_TYPES,
)
from ..pp import log_normalize
from ._model import LIBRARY_LOG_SD, Model

#: Cells per random stream.
BLOCK = 1024
#: A context's control cells count this many times a perturbed condition's (default design).
CONTROL_WEIGHT = 2


@dataclass(frozen=True)
class Design:
    """Condition (row of ``model.conditions``) and batch of every cell, in cell order."""

    condition: np.ndarray  # (n_cells,) int32
    batch: np.ndarray  # (n_cells,) int32

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return self.condition.size


def allocate(weights: np.ndarray, n_cells: int) -> np.ndarray:
    """Split ``n_cells`` over conditions in proportion to ``weights`` (largest remainder).

    When the proportional shares are whole numbers they are returned exactly.
    """
    share = n_cells * weights / weights.sum()
    counts = np.floor(share + 1e-9).astype(np.int64)
    rest = n_cells - counts.sum()
    if rest > 0:  # largest fractional parts first, earlier conditions on ties
        order = np.lexsort((np.arange(weights.size), -(share - counts)))
        counts[order[:rest]] += 1
    return counts


def condition_weights(model: Model, *, per_condition: float, control: float) -> np.ndarray:
    """Cells per condition: ``control`` for each context's control, ``per_condition`` otherwise."""
    is_control = (model.conditions[PERTURBATION] == CONTROL).to_numpy()
    return np.where(is_control, float(control), float(per_condition))


def make_design(model: Model, counts: np.ndarray) -> Design:
    """Shuffle ``counts[i]`` cells of each condition ``i`` and assign batches uniformly."""
    rng = np.random.default_rng([model.params.seed, 1])
    condition = np.repeat(np.arange(counts.size, dtype=np.int32), counts)
    condition = condition[rng.permutation(condition.size)]
    batch = rng.integers(0, model.params.n_batches, size=condition.size).astype(np.int32)
    return Design(condition=condition, batch=batch)


def _block_counts(model: Model, design: Design, block: int) -> np.ndarray:
    start = block * BLOCK
    stop = min(start + BLOCK, design.n_cells)
    cond, batch = design.condition[start:stop], design.batch[start:stop]
    rng = np.random.default_rng([model.params.seed, 2, block])
    z = rng.standard_normal((stop - start, model.loadings.shape[1]))
    # Cell state: log-normal multipliers with mean 1, so the population mean is the noise-free one.
    shift = z @ model.loadings.T - 0.5 * np.square(model.loadings).sum(axis=1)
    log_mu = model.log_expr[cond] + shift + model.batch_log[batch]
    log_mu -= logsumexp(log_mu, axis=1, keepdims=True)
    log_lib = rng.normal(
        np.log(model.params.library_size) + model.batch_library[batch], LIBRARY_LOG_SD
    )
    mu = np.exp(log_mu + log_lib[:, None])
    r = model.dispersion
    # Negative binomial as a gamma-Poisson mixture: mean mu, variance mu + mu^2 / r.
    return rng.poisson(rng.gamma(r, mu / r)).astype(np.int32)


def sample_counts(model: Model, design: Design, start: int, stop: int) -> sp.csr_matrix:
    """Raw counts of cells ``start:stop`` (CSR, int32)."""
    parts = []
    for block in range(start // BLOCK, (stop - 1) // BLOCK + 1):
        b0 = block * BLOCK
        dense = _block_counts(model, design, block)
        lo, hi = max(start - b0, 0), min(stop - b0, dense.shape[0])
        parts.append(sp.csr_matrix(dense[lo:hi]))
    out = sp.vstack(parts, format="csr") if len(parts) > 1 else parts[0]
    return sp.csr_matrix(out, dtype=np.int32)


def var_frame(model: Model) -> pd.DataFrame:
    """Genes: unique symbols as index; ``gene_id`` unknown (""), ``is_tf``."""
    net = model.network
    var = pd.DataFrame(
        {GENE_ID: [""] * net.n_genes, "is_tf": np.arange(net.n_genes) < net.n_tfs},
        index=pd.Index(net.genes, name=None),
    )
    return var


def obs_frame(model: Model, design: Design, start: int, stop: int) -> pd.DataFrame:
    """Canonical obs of cells ``start:stop``; categories are the same for any range."""
    cond = model.conditions
    rows = design.condition[start:stop]
    obs = {}
    for key in (PERTURBATION, PERTURBATION_TYPE, CONTEXT, DOSE):
        values = cond[key].to_numpy()
        if key == PERTURBATION_TYPE:  # canonical order, only the types present
            categories = [t for t in PERTURBATION_TYPES if t in set(values)]
        elif key == CONTEXT:
            categories = list(model.params.contexts)
        else:
            categories = sorted(set(values))
        obs[key] = pd.Categorical(values[rows], categories=categories)
    batches = [f"batch{b + 1}" for b in range(model.params.n_batches)]
    obs[BATCH] = pd.Categorical.from_codes(design.batch[start:stop], categories=batches)
    width = len(str(design.n_cells))
    index = pd.Index([f"cell{i:0{width}d}" for i in range(start, stop)])
    return pd.DataFrame(obs, index=index)


def cells(model: Model, design: Design, start: int, stop: int) -> AnnData:
    """Cells ``start:stop`` as canonical AnnData: counts in a layer, X = log1p CP10k."""
    counts = sample_counts(model, design, start, stop)
    adata = AnnData(
        X=counts.astype(np.float32), obs=obs_frame(model, design, start, stop), var=var_frame(model)
    )
    adata.layers[COUNTS_LAYER] = counts
    log_normalize(adata)
    return adata
