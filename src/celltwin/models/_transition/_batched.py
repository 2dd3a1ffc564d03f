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
from dataclasses import dataclass
from typing import Final

import numpy as np
import torch

from .._conditions import ConditionKey
from ._estimate import VIEWS, Estimate
from ._intervals import half_width
from ._module import TransitionModule
from ._network import LearnedCorrection
from ._query import _QueryContexts
from ._train import Examples, as_tensor

#: Most cell rows (conditions x cells) in one pass through the network (memory: about
#: ``hidden`` x 4 bytes each per layer).
MAX_ROWS: Final = 2**19


@dataclass(frozen=True)
class Settings:
    """How :func:`predicted_effects` predicts: the seed, cells per context (``None``: all)
    and conditions per pass through the network."""

    seed: int
    n_cells: int | None
    batch_size: int


@dataclass(frozen=True)
class Interval:
    """What the intervals need (:func:`ensemble_intervals`): the fitted per-view error
    variance and calibration, the normal quantile, and each condition's widening."""

    error_var: np.ndarray
    calibration: float
    z: float
    widening: np.ndarray


@dataclass(frozen=True)
class EffectArrays:
    """Conditions x genes (float32): ensemble mean, sd, interval, and each member's effect
    (members x conditions x genes) when asked."""

    mean: np.ndarray
    sd: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    members: np.ndarray | None


def draw_cells(cells: np.ndarray, n_cells: int | None, *, seed: int, context: str) -> np.ndarray:
    """``n_cells`` of a context's control ``cells`` without replacement (all when ``None`` or
    when there are no more), the same for the same ``seed`` and context name."""
    if n_cells is None or n_cells >= len(cells):
        return cells
    rng = np.random.default_rng([int(seed), zlib.crc32(context.encode())])
    return cells[np.sort(rng.choice(len(cells), size=n_cells, replace=False))]


def predicted_effects(
    model: LearnedCorrection,
    query: _QueryContexts,
    keys: Sequence[ConditionKey],
    estimates: Sequence[Estimate | None],
    interval: Interval,
    settings: Settings,
    *,
    members: bool = False,
) -> EffectArrays:
    """Every condition's predicted mean effect, interval and (``members``) member effects,
    in blocks of at most ``settings.batch_size`` conditions of one context (memory: a block's
    member effects, not every condition's); controls (``estimates[i] is None``) are zeros."""
    n_members = model.member_weights_.shape[0]
    shape = (len(keys), len(model.genes_))
    mean, sd, lower, upper = (np.zeros(shape, dtype=np.float32) for _ in range(4))
    each = np.zeros((n_members, *shape), dtype=np.float32) if members else None
    out = EffectArrays(mean, sd, lower, upper, each)
    modules: dict[int, TransitionModule] = {}
    for context in dict.fromkeys(k[0] for k in keys):
        rows = [i for i, k in enumerate(keys) if k[0] == context and estimates[i] is not None]
        if not rows:
            continue
        cells = draw_cells(
            query.controls(context), settings.n_cells, seed=settings.seed, context=context
        )
        latent = (as_tensor(model._encode(cells)), as_tensor(query.summary(context)))
        step = max(1, min(settings.batch_size, MAX_ROWS // max(len(cells), 1)))
        for start in range(0, len(rows), step):
            block = rows[start : start + step]
            found = [e for e in (estimates[i] for i in block) if e is not None]
            each = _block_effects(
                model, modules, latent, query.control_mean(context), (block, found), keys,
                settings,
            )  # fmt: skip
            sources = [e.source for e in found]
            parts = ensemble_intervals(each, sources, interval, rows=np.asarray(block))
            for target, part in zip((out.mean, out.sd, out.lower, out.upper), parts, strict=True):
                target[block] = part
            if out.members is not None:
                out.members[:, block] = each
    return out


def _block_effects(
    model: LearnedCorrection,
    modules: dict[int, TransitionModule],
    latent: tuple[torch.Tensor, torch.Tensor],
    control_mean: np.ndarray,
    block: tuple[list[int], list[Estimate]],
    keys: Sequence[ConditionKey],
    settings: Settings,
) -> np.ndarray:
    """Each member's mean effect (members, conditions, genes) of a block of conditions of one
    context (their positions in ``keys`` and estimates) from its cells ``latent[0]``."""
    rows, found = block
    n_members = model.member_weights_.shape[0]
    corrects = np.array([[model._corrects(m, e) for e in found] for m in range(n_members)])
    mean_r = np.zeros((n_members, len(found), model.n_latent_))
    todo = np.flatnonzero(corrects.any(axis=0))
    if len(todo):
        ex = model._examples([(rows[j], found[j].source, found[j].delta) for j in todo], list(keys))
        ex = Examples(*(getattr(ex, f).cpu() for f in Examples.__dataclass_fields__))
        for m in range(n_members):
            sel = np.flatnonzero(corrects[m, todo])
            if len(sel) == 0:
                continue
            if m not in modules:
                modules[m] = model._member_module(m)
            positions = [rows[todo[j]] for j in sel]
            mean_r[m, todo[sel]] = _mean_correction(
                modules[m], latent, ex.take(torch.as_tensor(sel)), positions, m, settings
            )
    delta = np.vstack([e.delta for e in found])
    correction = (mean_r * model.latent_scale_) @ model.pca_components_
    return np.maximum(control_mean + delta + correction, 0.0) - control_mean


def _mean_correction(
    module: TransitionModule,
    latent: tuple[torch.Tensor, torch.Tensor],
    ex: Examples,
    positions: list[int],
    member: int,
    settings: Settings,
) -> np.ndarray:
    """One member's latent correction averaged over the cells ``latent[0]`` for the
    conditions of ``ex`` (at ``positions`` of the call: the seeds of their own noise when
    the cells are all the context's controls; else the noise is shared)."""
    z, summary = latent
    seed, n = settings.seed, len(z)
    if settings.n_cells is None:  # as one condition at a time: noise seeded by its position
        noise = torch.cat(
            [_noise((seed + i) * 1009 + member, n, module.n_noise) for i in positions]
        )
    else:
        noise = _noise(seed * 1009 + member, n, module.n_noise)
    with torch.no_grad():
        r = module.mean_correction(
            z,
            summary.unsqueeze(0).expand(len(ex), -1),
            ex.base,
            (ex.index, ex.mask, ex.features, ex.log_dose),
            ex.view,
            noise,
        )
    return r.numpy().astype(np.float64)


def _noise(seed: int, n_cells: int, n_noise: int) -> torch.Tensor:
    """The noise inputs (1, n_cells, n_noise) of one member and condition (or of all)."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randn((1, n_cells, n_noise), generator=generator)


def ensemble_intervals(
    effects: np.ndarray, sources: Sequence[str], interval: Interval, *, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, sd, lower and upper bound of conditions from their members' ``effects``
    (members, conditions, genes), as :mod:`._intervals` defines them: measured conditions
    (``own``) keep their effect with no interval (NaN bounds, sd 0), and every other
    interval's classical part is widened by ``interval.widening[rows]`` (``rows``: the
    conditions' positions in the call, :func:`._domain.widen`)."""
    mean = effects.mean(axis=0)
    sd = effects.std(axis=0)
    lower = np.full_like(mean, np.nan)
    upper = np.full_like(mean, np.nan)
    source = np.asarray(sources, dtype=object)
    sd[source == "own"] = 0.0
    for j, view in enumerate(VIEWS):
        picked = np.flatnonzero(source == view)
        if len(picked) == 0:
            continue
        scale = (interval.calibration * interval.widening[rows[picked]])[:, None]
        half = half_width(
            interval.error_var[j][None, :], sd[picked], calibration=scale, z=interval.z
        )
        lower[picked] = mean[picked] - half
        upper[picked] = mean[picked] + half
    return mean, sd, lower, upper
