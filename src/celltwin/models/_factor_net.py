"""The torch part of :class:`~celltwin.models.SignatureFactor`: tensors in, tensors out."""

from __future__ import annotations

from typing import Final

import numpy as np
import torch
from torch import nn

# float32: the module works in gene space (rows x thousands of genes); half the memory traffic.
_DTYPE: Final = torch.float32


class ResidualFactorNet(nn.Module):
    """Correction, in gene space, of a base prediction for (context, perturbation) pairs.

    ``delta = a[c] * base + (e[p] + g(z[p])) @ W[c] + b[c]``: a per-context rescaling of the
    (context-centred) base prediction, a perturbation factor (a learned embedding ``e`` plus a
    network ``g`` of the perturbation's prior features ``z``) mapped to genes by the context
    factor ``W[c]`` (``rank x genes``), and a per-context gene bias. ``a``, ``e``, ``W`` and
    ``b`` start at zero, so the untrained module returns no correction (the base prediction).

    Parameters
    ----------
    n_contexts, n_perturbations
        Sizes of the context and perturbation tables.
    n_features
        Width of the prior features (0: no prior network).
    n_genes
        Width of the base input and the correction.
    rank
        Width of the perturbation and context factors.
    hidden
        Hidden width of ``g``.
    """

    def __init__(
        self,
        n_contexts: int,
        n_perturbations: int,
        n_features: int,
        n_genes: int,
        rank: int,
        hidden: int,
    ) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(n_contexts, 1, dtype=_DTYPE))
        self.bias = nn.Parameter(torch.zeros(n_contexts, n_genes, dtype=_DTYPE))
        self.embedding = nn.Parameter(torch.zeros(n_perturbations, rank, dtype=_DTYPE))
        self.maps = nn.Parameter(torch.zeros(n_contexts, rank, n_genes, dtype=_DTYPE))
        self.prior = (
            nn.Sequential(
                nn.Linear(n_features, hidden, dtype=_DTYPE),
                nn.Tanh(),
                nn.Linear(hidden, rank, dtype=_DTYPE),
            )
            if n_features > 0
            else None
        )

    def forward(
        self,
        context: torch.Tensor,
        perturbation: torch.Tensor,
        features: torch.Tensor,
        base: torch.Tensor,
    ) -> torch.Tensor:
        """``(rows, n_genes)`` corrections for index tensors ``context`` and ``perturbation``,
        prior ``features`` ``(rows, n_features)`` and centred ``base`` ``(rows, n_genes)``."""
        factor = self.embedding[perturbation]
        if self.prior is not None:
            factor = factor + self.prior(features)
        out = self.scale[context] * base + self.bias[context]
        # One matmul per context: gathering maps[context] would be rows x rank x genes.
        for c in torch.unique(context):
            rows = torch.nonzero(context == c).squeeze(1)
            out = out.index_add(0, rows, factor[rows] @ self.maps[c])
        return out


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=_DTYPE)


def _standardised(x: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit weighted variance over the measured genes."""
    w = measured / np.maximum(measured.sum(axis=1, keepdims=True), 1)
    centred = x - (w * x).sum(axis=1, keepdims=True)
    sd = np.sqrt((w * centred**2).sum(axis=1, keepdims=True))
    return np.where(measured > 0, centred, 0.0) / np.maximum(sd, 1e-12)


class _threads:
    """Run torch with a fixed CPU thread count (deterministic reductions), then restore it."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> None:
        self.before = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.before)
