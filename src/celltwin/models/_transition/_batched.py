"""Predicted mean effects of many conditions at once (:meth:`TransitionModel.predict_effects`).

A member's predicted effect of a condition is the mean of the cells it generates minus the
mean of the context's control cells. Generated cells are ``x + estimate + fold detail +
correction`` floored at zero keeping each gene's mean (:func:`._cells.floor_at_zero`; a gene
whose mean is not positive becomes zeros), and :func:`._cells.sparse_gain` and the fold detail
keep each gene's mean too. So the mean effect is

    ``max(control mean + estimate + mean correction, 0) - control mean``

and no cell has to be generated: only the network's latent correction averaged over the
control cells (:meth:`._module.TransitionModule.mean_correction`), for a batch of conditions
as one tensor (conditions x cells), the cells' share of the first layer computed once per
member. The classical estimate alone (measured conditions, kinds a member does not correct)
needs no network at all.

Cells: all the context's controls (``n_cells=None``), each condition with its own noise
inputs seeded by its position in the call, as :meth:`TransitionModel.predict_effects` always
did; or ``n_cells`` of them drawn once per context (seeded by ``seed`` and the context's name)
with noise drawn once per member, both shared by every condition, so that a condition's
effect does not depend on which other conditions are asked with it, nor in which order, and
differences between conditions carry no sampling noise of their own (common random numbers).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Final

import numpy as np
import torch

from .._conditions import ConditionKey
from ._estimate import VIEWS, Estimate
from ._intervals import half_width
from ._network import LearnedCorrection
from ._query import _QueryContexts
from ._train import as_tensor

#: Most cell rows (conditions x cells) in one pass through the network (memory: about
#: ``hidden`` x 4 bytes each per layer).
MAX_ROWS: Final = 2**19


def draw_cells(cells: np.ndarray, n_cells: int | None, *, seed: int, context: str) -> np.ndarray:
    """``n_cells`` of a context's control ``cells`` without replacement (all when ``None`` or
    when there are no more), the same for the same ``seed`` and context name."""
    if n_cells is None or n_cells >= len(cells):
        return cells
    rng = np.random.default_rng([int(seed), zlib.crc32(context.encode())])
    return cells[np.sort(rng.choice(len(cells), size=n_cells, replace=False))]


def member_effects(
    model: LearnedCorrection,
    query: _QueryContexts,
    keys: Sequence[ConditionKey],
    estimates: Sequence[Estimate | None],
    *,
    seed: int,
    n_cells: int | None,
    batch_size: int,
) -> np.ndarray:
    """Each member's predicted mean effect of each condition: (members, conditions, genes);
    zeros for controls (``estimates[i] is None``)."""
    n_members = model.member_weights_.shape[0]
    out = np.zeros((n_members, len(keys), len(model.genes_)))
    contexts = np.array([k[0] for k in keys], dtype=object)
    for context in dict.fromkeys(contexts.tolist()):
        rows = [int(i) for i in np.flatnonzero(contexts == context) if estimates[i] is not None]
        if not rows:
            continue
        cells = draw_cells(query.controls(context), n_cells, seed=seed, context=context)
        control_mean = query.control_mean(context)
        delta = np.vstack([_estimate(estimates, i).delta for i in rows])
        latent = (as_tensor(model._encode(cells)), as_tensor(query.summary(context)))
        for member in range(n_members):
            corrected = [j for j, i in enumerate(rows) if model._corrects(member, estimates[i])]
            correction = np.zeros_like(delta)
            if corrected:
                shared = n_cells is not None
                correction[corrected] = _corrections(
                    model, member, latent, [rows[j] for j in corrected], keys, estimates,
                    seed=seed, shared_noise=shared, batch_size=batch_size,
                )  # fmt: skip
            out[member, rows] = np.maximum(control_mean + delta + correction, 0.0) - control_mean
    return out


def _estimate(estimates: Sequence[Estimate | None], i: int) -> Estimate:
    est = estimates[i]
    assert est is not None
    return est


def _corrections(
    model: LearnedCorrection,
    member: int,
    latent: tuple[torch.Tensor, torch.Tensor],
    rows: list[int],
    keys: Sequence[ConditionKey],
    estimates: Sequence[Estimate | None],
    *,
    seed: int,
    shared_noise: bool,
    batch_size: int,
) -> np.ndarray:
    """Member ``member``'s correction (gene space) averaged over the cells ``latent[0]``, for
    each condition of ``rows``, in batches of at most ``batch_size`` conditions."""
    z, summary = latent
    module = model._member_module(member)
    n_noise = module.n_noise
    noise = _noise(seed * 1009 + member, len(z), n_noise) if shared_noise else None
    step = max(1, min(batch_size, MAX_ROWS // max(len(z), 1)))
    key_list = list(keys)
    out = []
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        items = [(i, _estimate(estimates, i).source, _estimate(estimates, i).delta) for i in chunk]
        ex = model._examples(items, key_list)
        if noise is None:
            # As one condition at a time: noise seeded by the condition's position.
            batch_noise = torch.cat(
                [_noise((seed + i) * 1009 + member, len(z), n_noise) for i in chunk]
            )
        else:
            batch_noise = noise
        with torch.no_grad():
            r = module.mean_correction(
                z,
                summary.unsqueeze(0).expand(len(chunk), -1),
                ex.base.cpu(),
                (ex.index.cpu(), ex.mask.cpu(), ex.features.cpu(), ex.log_dose.cpu()),
                ex.view.cpu(),
                batch_noise,
            )
        out.append(r.numpy())
    mean_r = np.vstack(out).astype(np.float64)
    return (mean_r * model.latent_scale_) @ model.pca_components_


def _noise(seed: int, n_cells: int, n_noise: int) -> torch.Tensor:
    """The noise inputs (1, n_cells, n_noise) of one member and condition (or of all)."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randn((1, n_cells, n_noise), generator=generator)


def ensemble_intervals(
    effects: np.ndarray,
    sources: Sequence[str],
    widening: np.ndarray,
    *,
    error_var: np.ndarray,
    calibration: float,
    z: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, sd, lower and upper bound of each condition from its members' ``effects``
    (members, conditions, genes), as :mod:`._intervals` defines them: measured conditions
    (``own``) keep their effect with no interval (NaN bounds, sd 0), controls are 0 with a
    zero-width interval, and every other interval's classical part is widened by
    ``widening`` (per condition, :func:`._domain.widen`)."""
    mean = effects.mean(axis=0)
    sd = effects.std(axis=0)
    lower = np.full_like(mean, np.nan)
    upper = np.full_like(mean, np.nan)
    source = np.asarray(sources, dtype=object)
    control = source == "control"
    lower[control] = upper[control] = 0.0
    sd[control | (source == "own")] = 0.0
    for j, view in enumerate(VIEWS):
        rows = np.flatnonzero(source == view)
        if len(rows) == 0:
            continue
        scale = (calibration * widening[rows])[:, None]
        half = half_width(error_var[j][None, :], sd[rows], calibration=scale, z=z)
        lower[rows] = mean[rows] - half
        upper[rows] = mean[rows] + half
    return mean, sd, lower, upper
