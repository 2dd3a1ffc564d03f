"""The metric registry: each metric with its function, direction, level and inputs.

A :class:`Metric` names a metric function (:mod:`celltwin.eval._metrics` and its siblings), which
way is better, its level (one value per perturbation, or one aggregate value), and which
:class:`~celltwin.eval.MetricInputs` fields it takes (``needs``, passed as keyword arguments of
the same names). Each field belongs to one kind of input (:data:`~celltwin.eval.INPUT_KINDS`), so a
caller computes only what the chosen metrics need. :func:`compute_metrics` evaluates registered
metrics on :class:`~celltwin.eval.MetricInputs` (see :func:`~celltwin.eval.build_inputs`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from . import _metrics as m
from ._inputs import CELL_KINDS, INPUT_KINDS, MetricInputs
from ._metrics_cells import energy_distance, mmd
from ._metrics_interaction import interaction_pearson
from ._metrics_r2 import r2_mean, r2_mean_top_de

__all__ = [
    "METRICS",
    "SCGEN_METRICS",
    "VCC_METRICS",
    "Metric",
    "compute_metrics",
    "get_metric",
    "list_metrics",
]

Level = Literal["perturbation", "aggregate"]


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes
    ----------
    name
        Unique name (a column of result tables).
    func
        Function called with each of ``needs`` as a keyword argument of that name (plus
        ``kwargs``).
    higher_is_better
        Direction; comparisons and baseline scaling use it.
    level
        ``"perturbation"``: ``func`` returns ``(P,)``; ``"aggregate"``: a single value.
    needs
        :class:`MetricInputs` names (see :data:`INPUT_KINDS`) that ``func`` takes.
    best
        Value of a perfect prediction when bounded (0 for errors, 1 for scores), else None.
    kwargs
        Extra keyword arguments for ``func``.
    description
        One line for reports.
    """

    name: str
    func: Callable[..., Any]
    higher_is_better: bool
    level: Level
    needs: tuple[str, ...]
    best: float | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def kinds(self) -> frozenset[str]:
        """Kinds of input this metric needs (``pseudobulk``, ``de``, ``cells``, ...)."""
        return frozenset(INPUT_KINDS[n] for n in self.needs)

    def compute(self, inputs: MetricInputs) -> NDArray[np.float64]:
        """Evaluate on ``inputs``: shape ``(P,)`` for perturbation level, ``()`` for aggregate."""
        arguments = {name: inputs.get(name) for name in self.needs}
        value = np.asarray(self.func(**arguments, **self.kwargs), dtype=np.float64)
        expected = (len(inputs.perturbations),) if self.level == "perturbation" else ()
        if value.shape != expected:
            raise RuntimeError(
                f"metric {self.name!r} returned shape {value.shape}, expected {expected}"
            )
        return value


_PB = ("pred_means", "true_means")
_DELTA = ("pred_delta", "true_delta")
_DE = ("pred_lfc", "true_lfc", "pred_fdr", "true_fdr")
_CELLS = ("pred_cells", "true_cells")
_RANKS = ("pred_scores", "true_scores")


def _rank_metrics() -> list[Metric]:
    out = []
    for k in (50, 100):
        for direction in ("up", "down"):
            out.append(
                Metric(
                    f"top{k}_{direction}_overlap",
                    partial(m.topk_overlap, k=k, direction=direction),
                    True,
                    "perturbation",
                    _RANKS,
                    best=1.0,
                    description=f"share of the true top-{k} {direction} genes in the predicted top-{k}",
                )
            )
            out.append(
                Metric(
                    f"top{k}_{direction}_auroc",
                    partial(m.topk_auroc, k=k, direction=direction),
                    True,
                    "perturbation",
                    _RANKS,
                    best=1.0,
                    description=f"AUROC of predicted scores for the true top-{k} {direction} genes",
                )
            )
    return out


#: Every registered metric, by name.
METRICS: Mapping[str, Metric] = {
    metric.name: metric
    for metric in [
        Metric("mae", m.mae, False, "perturbation", _PB, best=0.0,
               description="mean absolute error of pseudobulk profiles (VCC)"),
        Metric("mse", m.mse, False, "perturbation", _PB, best=0.0,
               description="mean squared error of pseudobulk profiles"),
        Metric("des", m.des, True, "perturbation", _DE, best=1.0,
               description="overlap of DE genes at N = number truly significant (VCC)"),
        Metric("pds", m.pds, True, "perturbation", (*_DELTA, "target_mask"), best=1.0,
               description="perturbation discrimination score, L1, target excluded (VCC)"),
        Metric("pearson_delta", m.pearson_delta, True, "perturbation", _DELTA, best=1.0,
               description="Pearson r of changes from control, all genes"),
        Metric("pearson_delta_top20_de", m.pearson_delta_top_de, True, "perturbation",
               (*_PB, "true_control", "top_de"), best=1.0,
               description="Pearson r of changes from control on the top-20 DE genes (GEARS)"),
        Metric("mse_top20_de", m.mse_top_de, False, "perturbation", (*_PB, "top_de"), best=0.0,
               description="mean squared error on the top-20 DE genes (GEARS)"),
        Metric("systema_pearson_delta", m.systema_pearson_delta, True, "perturbation",
               (*_PB, "reference"), best=1.0,
               description="Pearson r of changes from the perturbed reference (Systema)"),
        Metric("centroid_accuracy", m.centroid_accuracy, True, "perturbation", _PB, best=1.0,
               description="share of other true centroids farther than the own (Systema)"),
        Metric("energy_distance", energy_distance, False, "perturbation", _CELLS, best=0.0,
               description="energy distance of cells in the shared PCA space"),
        Metric("mmd", mmd, False, "perturbation", _CELLS, best=0.0,
               description="MMD^2 of cells in the shared PCA space, multi-scale RBF"),
        Metric("spearman", m.spearman, True, "perturbation", _RANKS, best=1.0,
               description="Spearman r of predicted and true gene scores"),
        *_rank_metrics(),
        Metric("n_sig_spearman", m.n_sig_spearman, True, "aggregate", ("pred_fdr", "true_fdr"),
               best=1.0,
               description="Spearman r across perturbations of the number of significant genes"),
        Metric("r2_mean_all", r2_mean, True, "perturbation", _PB, best=1.0,
               description="R² (squared Pearson) of mean expression, all genes (scGen)"),
        Metric("r2_mean_top100_de", r2_mean_top_de, True, "perturbation", (*_PB, "true_de"),
               best=1.0, description="R² of mean expression on the top-100 up DE genes (scGen)"),
        Metric("interaction_pearson", interaction_pearson, True, "perturbation",
               ("pred_interaction", "true_interaction", "additive"), best=1.0,
               description="partial Pearson r of predicted and true interactions of a "
               "combination, given the additive expectation"),
    ]
}  # fmt: skip

#: The three metrics of the Virtual Cell Challenge score.
VCC_METRICS: tuple[str, ...] = ("mae", "des", "pds")

#: scGen's metrics (R² of mean expression), computed when named.
SCGEN_METRICS: tuple[str, ...] = ("r2_mean_all", "r2_mean_top100_de")


def get_metric(name: str) -> Metric:
    """Return the registered metric ``name``."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; registered: {sorted(METRICS)}") from None


def list_metrics(*, level: Level | None = None, kinds: Collection[str] | None = None) -> list[str]:
    """Names of registered metrics, optionally only those of ``level`` computable from ``kinds``."""
    return [
        name
        for name, metric in METRICS.items()
        if (level is None or metric.level == level)
        and (kinds is None or metric.kinds <= set(kinds))
    ]


def compute_metrics(
    inputs: MetricInputs, *, metrics: Iterable[str | Metric] | None = None
) -> dict[str, NDArray[np.float64]]:
    """Evaluate metrics on ``inputs``.

    ``metrics`` default: every registered metric computable from cells (inputs of
    :data:`CELL_KINDS`; not ``interaction_pearson``).

    Returns
    -------
    ``{name: values}``, ``(P,)`` arrays in ``inputs.perturbations`` order for perturbation-level
    metrics and 0-d arrays for aggregate ones.
    """
    return {metric.name: metric.compute(inputs) for metric in _resolve_metrics(metrics)}


def _resolve_metrics(metrics: Iterable[str | Metric] | None) -> list[Metric]:
    """Metrics by name (or as given); ``None``: every metric computable from :data:`CELL_KINDS`."""
    names = list_metrics(kinds=CELL_KINDS) if metrics is None else metrics
    return [get_metric(x) if isinstance(x, str) else x for x in names]
