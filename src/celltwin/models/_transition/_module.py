"""The learned half of ``transition``: plain torch, tensors in and tensors out.

A control cell's latent state ``z`` (PCA of the training cells, scaled), its context's control
population summary ``s`` (latent mean and standard deviation), the classical estimate of the
condition's effect ``b`` (projected into the latent space), the perturbation's embedding ``e``,
the kind of estimate (one-hot ``view``) and optional noise ``eps`` go through a small MLP that
outputs a latent correction ``r``. The generated cell is ``z + b + r``. The last layer starts at
zero, so an untrained module returns the classical estimate exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def mlp(n_in: int, hidden: int, n_out: int, n_layers: int) -> nn.Sequential:
    """``n_layers`` hidden layers of width ``hidden`` with SiLU, then a linear output layer."""
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class PerturbationEncoder(nn.Module):
    """Embed a (possibly combined) perturbation from its components.

    Each component is a learned vector (seen components; index 0 is "unknown" and stays zero)
    plus a linear map of its prior features plus a learned dose direction times ``log10(dose)``.
    A combination is ``compose(sum of parts) + interact(sum over pairs of a ⊙ b)``, so it is
    built from its parts and an interaction term that vanishes for singles.

    The learned vectors start at zero and move only through examples that use them (examples
    of the ``features`` view use index 0), so a component that no training example used stays
    "unknown". A random start would hand the network, at prediction time, vectors it never saw
    in training (observed on simulated pairs: corrections seven times the size of the effect).
    """

    def __init__(self, n_components: int, feature_dim: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_components + 1, dim, padding_idx=0)
        nn.init.zeros_(self.embedding.weight)  # unused components stay "unknown" (see above)
        self.features = nn.Linear(feature_dim, dim, bias=False) if feature_dim else None
        self.dose = nn.Parameter(torch.zeros(dim))
        self.compose = mlp(dim, hidden, dim, 1)
        self.interact = mlp(dim, hidden, dim, 1)

    def forward(self, index: Tensor, mask: Tensor, features: Tensor, log_dose: Tensor) -> Tensor:
        """``index``, ``mask``, ``log_dose``: (B, C); ``features``: (B, C, F) -> (B, dim)."""
        parts = self.embedding(index) + self.dose * log_dose.unsqueeze(-1)
        if self.features is not None:
            parts = parts + self.features(features)
        parts = parts * mask.unsqueeze(-1)
        total = parts.sum(dim=1)
        pairs = 0.5 * (total**2 - (parts**2).sum(dim=1))
        return self.compose(total) + self.interact(pairs)


class TransitionModule(nn.Module):
    """Per-cell latent correction of a classical effect estimate.

    Parameters
    ----------
    n_latent
        Latent dimensions ``k``.
    n_components, feature_dim
        Learned component embeddings (seen components) and prior feature width (0 for none).
    n_views
        Kinds of classical estimate (one-hot input).
    n_noise
        Noise inputs per cell (0 for a deterministic map).
    hidden, n_layers, pert_dim
        Width and depth of the MLP, width of the perturbation embedding.
    """

    def __init__(
        self,
        *,
        n_latent: int,
        n_components: int,
        feature_dim: int,
        n_views: int,
        n_noise: int,
        hidden: int,
        n_layers: int,
        pert_dim: int,
    ) -> None:
        super().__init__()
        self.n_noise = n_noise
        self.n_views = n_views
        self.perturbation = PerturbationEncoder(n_components, feature_dim, pert_dim, hidden)
        n_condition = 2 * n_latent + n_latent + pert_dim + n_views
        self.condition = mlp(n_condition, hidden, hidden, 1)
        self.cell = mlp(n_latent + n_noise + hidden, hidden, n_latent, n_layers)
        last = self.cell[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(
        self,
        z: Tensor,
        summary: Tensor,
        base: Tensor,
        perturbation: tuple[Tensor, Tensor, Tensor, Tensor],
        view: Tensor,
        noise: Tensor,
    ) -> Tensor:
        """Latent correction ``r`` for cells ``z`` of shape (B, m, k) -> (B, m, k).

        ``summary`` (B, 2k), ``base`` (B, k), ``view`` (B, V) are per condition;
        ``perturbation`` is the encoder's inputs; ``noise`` is (B, m, n_noise).
        """
        e = self.perturbation(*perturbation)
        h = self.condition(torch.cat([summary, base, e, view], dim=-1))
        h = h.unsqueeze(1).expand(-1, z.shape[1], -1)
        inputs = [z, h] if self.n_noise == 0 else [z, noise, h]
        return self.cell(torch.cat(inputs, dim=-1))

    def mean_correction(
        self,
        z: Tensor,
        summary: Tensor,
        base: Tensor,
        perturbation: tuple[Tensor, Tensor, Tensor, Tensor],
        view: Tensor,
        noise: Tensor,
    ) -> Tensor:
        """:meth:`forward` averaged over cells, for cells ``z`` (m, k) shared by every row.

        Equal to ``forward(z.expand(B, m, k), ...).mean(dim=1)`` (B, k), up to rounding, but
        the first layer's cell part is computed once for all rows, its row part once per row,
        and the output layer (linear) is applied to the mean instead of to every cell.
        ``noise`` is (1, m, n_noise) when the rows share it, else (B, m, n_noise).
        """
        e = self.perturbation(*perturbation)
        h = self.condition(torch.cat([summary, base, e, view], dim=-1))
        first = self.cell[0]
        assert isinstance(first, nn.Linear)
        k = z.shape[-1]
        w = first.weight
        cells = z @ w[:, :k].T
        if self.n_noise:
            cells = cells + noise @ w[:, k : k + self.n_noise].T  # (1 or B, m, hidden)
        rows = h @ w[:, k + self.n_noise :].T + first.bias
        x = cells + rows.unsqueeze(1)  # (B, m, hidden): the one pass over every cell row
        if len(self.cell) == 1:  # no hidden layer: the first layer is the output layer
            return x.mean(dim=1)
        for layer in list(self.cell)[1:-1]:
            x = nn.functional.silu(x, inplace=True) if isinstance(layer, nn.SiLU) else layer(x)
        return self.cell[-1](x.mean(dim=1))


def pairwise_distance(x: Tensor, y: Tensor) -> Tensor:
    """Euclidean distances (B, m, n) with a gradient that stays finite at zero distance."""
    sq = (x * x).sum(-1).unsqueeze(-1) + (y * y).sum(-1).unsqueeze(-2) - 2.0 * x @ y.transpose(1, 2)
    return torch.sqrt(sq.clamp_min(0.0) + 1e-8)


def energy_distance(x: Tensor, y: Tensor) -> Tensor:
    """Energy distance between the cell sets of each batch row: (B, m, k), (B, n, k) -> (B,)."""
    dxy = pairwise_distance(x, y).mean(dim=(1, 2))
    dxx = pairwise_distance(x, x).mean(dim=(1, 2))
    dyy = pairwise_distance(y, y).mean(dim=(1, 2))
    return 2.0 * dxy - dxx - dyy
