"""Kernel bandwidths of the classical estimates, chosen on the training effects: the context
kernel by leave-one-context-out (:func:`choose_tau`), the dose kernel by leave-one-dose-out
(:func:`choose_dose_bandwidth`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .._conditions import ConditionKey
from ._estimate import DOSE_BANDWIDTHS, TAU_GRID
from ._features import Transfer


def choose_tau(
    keys: Sequence[ConditionKey], delta: np.ndarray, context_latent: Mapping[str, np.ndarray]
) -> tuple[float, dict[str, float]]:
    """Kernel bandwidth with the lowest leave-one-context-out error on the training effects.

    Each training condition measured in at least two contexts is predicted from its other
    contexts; the mean squared error over genes and conditions is compared across
    :data:`TAU_GRID`. Ties and the case with nothing to compare keep ``inf`` (equal weights).
    """
    losses: dict[str, float] = {}
    best, best_loss = np.inf, np.inf
    for tau in TAU_GRID:
        transfer = Transfer(keys, delta, context_latent, tau=tau, features=None, ridge=1.0)
        errors = []
        for i, key in enumerate(transfer.keys):
            est = transfer.context(key, context_latent[key[0]])
            if est is not None:
                errors.append(float(np.mean((est - delta[i]) ** 2)))
        if not errors:
            return np.inf, {}
        loss = float(np.mean(errors))
        losses[str(tau)] = loss
        if loss < best_loss - 1e-12:
            best, best_loss = tau, loss
    return best, losses


def choose_dose_bandwidth(
    keys: Sequence[ConditionKey], delta: np.ndarray, context_latent: Mapping[str, np.ndarray]
) -> tuple[float, dict[str, float]]:
    """Dose-kernel bandwidth with the lowest leave-one-dose-out error on the training effects.

    Each training condition whose treatment was measured at other doses in its context is
    predicted from them; the mean squared error over genes and conditions is compared across
    :data:`DOSE_BANDWIDTHS`. Ties and the case with nothing to compare keep ``inf`` (the mean
    over the measured doses).
    """
    transfer = Transfer(keys, delta, context_latent, tau=np.inf, features=None, ridge=1.0)
    losses: dict[str, float] = {}
    best, best_loss = np.inf, np.inf
    for h in DOSE_BANDWIDTHS:
        errors = []
        for i, key in enumerate(transfer.keys):
            est = transfer.dose(key, bandwidth=h)
            if est is not None:
                errors.append(float(np.mean((est - delta[i]) ** 2)))
        if not errors:
            return np.inf, {}
        losses[str(h)] = float(np.mean(errors))
        if losses[str(h)] < best_loss - 1e-12:
            best, best_loss = h, losses[str(h)]
    return best, losses
