"""The simple baselines every learned model must beat: control, mean, additive, context shift.

Ahlmann-Eltze, Huber & Anders (Nat Methods 2025) and Systema (Viñas Torné et al., Nat Biotechnol
2025) showed that such baselines tie with or beat most published deep models; celltwin reports
them next to every model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, split_combination
from ._conditions import ConditionKey, as_conditions, condition_keys, dose_components
from ._conditions import condition_label as describe
from ._effects import EffectModel
from ._errors import UnseenConditionError
from ._sources import Source, source_table


class ControlBaseline(EffectModel):
    """Predict the control cells of the requested context, unchanged.

    The "no effect" prediction: every condition of a context is predicted as that context's
    control cells (the ones drawn for it). Any perturbation, context or combination can be asked
    for. It has no parameters and stores no arrays.

    References
    ----------
    The lower bound used throughout perturbation benchmarks, e.g. Wu et al. 2024 (PerturBench,
    arXiv:2408.10609) and Ahlmann-Eltze, Huber & Anders, Nat Methods 2025.
    """

    name = "control"
    predicts = "cells"

    def __init__(self) -> None:
        pass

    def _fit(self, train: AnnData, **fit_params: Any) -> None:
        pass  # nothing to learn; fit only records the genes, contexts and conditions

    def _array_names(self) -> tuple[str, ...]:
        return ()

    def _effects(self, keys: list[ConditionKey]) -> np.ndarray:
        return np.zeros((len(keys), len(self.genes_)))


class MeanBaseline(EffectModel):
    """Shift control cells by the mean effect of the training perturbations.

    The effect of a training condition is its pseudobulk mean minus its context's control mean
    (in log1p(CP10k)). The prediction for *any* condition of context ``c`` is the equal-weight
    mean of those effects over the training conditions of ``c`` (each perturbation, or each
    (perturbation, dose), counts once, whatever its number of cells), added to each control
    cell of ``c`` and clipped at 0. For a context without perturbed training cells (an unseen
    context) the mean over all training conditions of all contexts is used.

    This is cell-eval's ``as_delta`` baseline and Systema's perturbed-mean baseline, except that
    here each control cell is shifted (keeping the control cells' spread) instead of every
    predicted cell being the same profile.

    References
    ----------
    Ahlmann-Eltze, Huber & Anders, "Deep-learning-based gene perturbation effect prediction does
    not yet outperform simple linear baselines", Nat Methods 2025; Viñas Torné et al., "Systema",
    Nat Biotechnol 2025; cell-eval (Arc Institute), ``build_base_mean_adata(as_delta=True)``.
    """

    name = "mean"
    predicts = "cells"

    def __init__(self) -> None:
        pass

    def _fit(self, train: AnnData, **fit_params: Any) -> None:
        if len(self.conditions_) == 0:
            raise ValueError(
                "mean.fit: no perturbed training cells, so there is no effect to average. "
                "Fix: include perturbed cells in the training split."
            )
        super()._fit(train)

    def mean_effect(self, context: str) -> np.ndarray:
        """The effect the model adds for every condition of ``context`` (genes,)."""
        self._check_fitted()
        in_context = self.conditions_[CONTEXT].to_numpy() == context
        rows = self.delta_[in_context] if in_context.any() else self.delta_
        return rows.mean(axis=0)

    def _effects(self, keys: list[ConditionKey]) -> np.ndarray:
        by_context = {c: self.mean_effect(c) for c in {k[0] for k in keys}}
        return np.vstack([by_context[k[0]] for k in keys])


class AdditiveBaseline(EffectModel):
    """Predict a combination as control + the sum of its single-perturbation effects.

    For condition ``A+B`` in context ``c`` the effect is ``delta(c, A) + delta(c, B)``, each the
    training effect of the single perturbation in the same context (with its own dose when
    doses are given: dose ``"1+10"`` uses ``A`` at ``"1"`` and ``B`` at ``"10"``). A single
    perturbation is predicted by its own training effect. Conditions whose singles were not
    measured in that context are refused (:class:`UnseenConditionError`): unseen combinations
    of seen singles are the only unseen conditions this model predicts.

    References
    ----------
    Norman et al., "Exploring genetic interaction manifolds constructed from rich single-cell
    phenotypes", Science 2019; Ahlmann-Eltze, Huber & Anders, Nat Methods 2025 (the "additive"
    model, ``run_additive_model.py``).
    """

    name = "additive"
    predicts = "cells"

    def __init__(self) -> None:
        pass

    def _effects(self, keys: list[ConditionKey]) -> np.ndarray:
        row = self._row_of()
        out = np.zeros((len(keys), len(self.genes_)))
        problems = []
        for i, key in enumerate(keys):
            context, perturbation, dose = key
            singles = [
                (context, component, d)
                for component, d in zip(
                    split_combination(perturbation),
                    dose_components(perturbation, dose),
                    strict=True,
                )
            ]
            missing = [s for s in singles if s not in row]
            if missing:
                names = ", ".join(
                    f"{s[1]!r}" + (f" at dose {s[2]!r}" if s[2] else "") for s in missing
                )
                problems.append(f"{describe(key)} (single(s) {names} not measured in that context)")
                continue
            out[i] = self.delta_[[row[s] for s in singles]].sum(axis=0)
        self._refuse(
            problems,
            fix="the additive model needs each component measured alone in the same context; "
            "use 'linear' for unseen perturbations or 'context_shift' for unseen contexts.",
        )
        return out


class ContextShiftBaseline(EffectModel):
    """Shift the target context's control cells by the perturbation's effect elsewhere.

    For condition ``(c, p, dose)`` the effect is the equal-weight mean of the training effects of
    ``(p, dose)`` in every context *other than* ``c``, added to each control cell of ``c``
    (clipped at 0). The target context's own effect is never used, even when it was seen: the
    model answers "what do the other contexts say". Conditions never measured in another context
    are refused (:class:`UnseenConditionError`).

    References
    ----------
    Lotfollahi, Wolf & Theis, "scGen predicts single-cell perturbation responses", Nat Methods
    2019: the same transfer of a perturbation's shift to a new cell type, without the VAE latent
    space.
    """

    name = "context_shift"
    predicts = "cells"

    def __init__(self) -> None:
        pass

    def sources(
        self,
        adata: AnnData | None = None,
        *,
        conditions: pd.DataFrame | Sequence[Sequence[str]],
        top: int | None = None,
    ) -> pd.DataFrame:
        """What each condition's prediction borrowed from: the treatment in the other contexts.

        Kind ``context``, equal weights summing to 1 per condition. ``adata`` is not needed
        (the common signature of ``sources``, see :meth:`TransitionModel.sources`); ``top``
        keeps that many sources per condition. Columns as
        :data:`celltwin._keys.SOURCE_COLUMNS`.
        """
        self._check_fitted()
        keys = [k for k in condition_keys(as_conditions(conditions)) if k[1] != CONTROL]
        seen = self._seen()
        found = []
        for key in keys:
            others = [c for c, _ in seen[(key[1], key[2])] if c != key[0]]
            if not others:
                raise UnseenConditionError(
                    f"{self.name} cannot predict {describe(key)}: it was measured in no other "
                    "context during training, so it has no sources."
                )
            found.append([Source("context", c, key[1], key[2], 1 / len(others)) for c in others])
        return source_table(keys, found, top=top)

    def _seen(self) -> defaultdict[tuple[str, str], list[tuple[str, int]]]:
        """Training contexts and rows of each (perturbation, dose)."""
        seen: defaultdict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
        for i, (context, perturbation, dose) in enumerate(condition_keys(self.conditions_)):
            seen[(perturbation, dose)].append((context, i))
        return seen

    def _effects(self, keys: list[ConditionKey]) -> np.ndarray:
        seen = self._seen()
        out = np.zeros((len(keys), len(self.genes_)))
        problems = []
        for i, key in enumerate(keys):
            context, perturbation, dose = key
            others = [r for c, r in seen[(perturbation, dose)] if c != context]
            if not others:
                where = "only in that context" if seen[(perturbation, dose)] else "in no context"
                problems.append(f"{describe(key)} (measured {where} during training)")
                continue
            out[i] = self.delta_[others].mean(axis=0)
        self._refuse(
            problems,
            fix="context_shift transfers effects measured in other contexts; use 'linear' or "
            "'mean' for perturbations never measured.",
        )
        return out
