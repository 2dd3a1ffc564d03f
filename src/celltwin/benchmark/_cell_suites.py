"""Single-cell benchmark suites: data + splits + models + metrics, each registered with a version.

Every suite here is a :class:`CellTask`: it loads canonical cells, writes one split per fold
(:mod:`celltwin.split`), and cuts the fold into the roles a model may and may not see
(:func:`celltwin.benchmark._features.make_fold`). The runner fits and predicts each model on its
own and scores the predictions (see :mod:`celltwin.benchmark._runner`).

Suites
------
``kang2018-heldout-celltype``
    Kang et al. 2018 PBMCs. Fold = a cell type: its IFN-beta-stimulated cells are held out and
    predicted from its control cells, training on everything else (the scGen / CPA / CellFlow
    setting). 2,000 HVGs from the training cells. Metrics of scGen's paper (R² of mean
    expression on all genes and on the top-100 DE genes) and of the field.
``papalexi2021-heldout-ko``
    Papalexi et al. 2021, THP-1 CRISPR knockouts. Five folds over the 25 knockouts (held-out
    perturbations, one context); all 299 genes. Virtual Cell Challenge metrics.
``sim-combinations``
    Simulated knockouts and pairs with true interactions (:func:`celltwin.simulate.simulate`);
    GEARS-style splits (:func:`celltwin.split.split_combinations`), one seed per fold. Adds
    interaction recovery, reported per category (``unseen_single``, ``combo_seen0/1/2``).
``sim-doses``
    Simulated drugs at five doses in two contexts; unseen doses (:func:`celltwin.split.split_doses`):
    the highest, the lowest, and one random dose per drug (one fold each).

Every suite takes ``smoke=True`` (a tiny subset that runs in seconds, for tests), ``n_top_genes``
and its own options (see each suite's ``options``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from numpy.typing import ArrayLike, NDArray

from .._keys import CONTEXT, CONTROL, DOSE, PERTURBATION, UNS_KEY, split_combination
from ..eval import Metric
from ..models import Model, get_model
from ..models._base import ConditionKey, dose_components
from ..models._effects import EffectModel, describe
from ..models._registry import MODELS
from ._features import N_TOP_GENES, FoldData, make_fold, poison_held_out
from ._suite import Suite, register_suite

# --- metrics the registry does not have (yet) ----------------------------------------------------


def _rowwise_r2(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    num = np.einsum("ij,ij->i", a, b)
    den = np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b)
    out = np.full(a.shape[0], np.nan)
    ok = den > 0
    out[ok] = num[ok] ** 2 / den[ok]
    return out


def r2_mean(pred_means: ArrayLike, true_means: ArrayLike) -> NDArray[np.float64]:
    """scGen's R²: squared Pearson r of predicted and true mean expression over all genes.

    scGen (Lotfollahi et al. 2019) reports ``scipy.stats.linregress(x, y).rvalue ** 2`` of the
    mean profiles, which is this.
    """
    p = np.asarray(pred_means, dtype=np.float64)
    t = np.asarray(true_means, dtype=np.float64)
    return _rowwise_r2(p, t)


def r2_mean_top_de(
    pred_means: ArrayLike, true_means: ArrayLike, *, true_de: Any, k: int = 100
) -> NDArray[np.float64]:
    """scGen's R² of mean expression on each perturbation's top-``k`` DE genes.

    scGen takes the top ``k`` genes of ``scanpy.tl.rank_genes_groups(method="wilcoxon")`` for
    the stimulated group: the most *up*-regulated by Wilcoxon score. Here: the ``k`` genes of
    largest signed score ``sign(lfc) * -log10(p)`` of :func:`celltwin.eval.rank_sum_test` (the same
    order as the Wilcoxon z for one group against the control).
    """
    p = np.asarray(pred_means, dtype=np.float64)
    t = np.asarray(true_means, dtype=np.float64)
    with np.errstate(divide="ignore"):
        score = np.sign(true_de.log2_fold_change) * -np.log10(np.maximum(true_de.pvalue, 1e-300))
    score = np.nan_to_num(score, nan=-np.inf)
    top = np.argsort(-score, axis=1, kind="stable")[:, : min(k, p.shape[1])]
    return _rowwise_r2(np.take_along_axis(p, top, axis=1), np.take_along_axis(t, top, axis=1))


#: Metrics defined here until they join :data:`celltwin.eval.METRICS` (same :class:`Metric` type).
SUITE_METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric(
            "r2_mean_all",
            r2_mean,
            True,
            "perturbation",
            ("pred_means", "true_means"),
            best=1.0,
            description="R² (squared Pearson) of mean expression, all genes (scGen)",
        ),
        Metric(
            "r2_mean_top100_de",
            r2_mean_top_de,
            True,
            "perturbation",
            ("pred_means", "true_means", "true_de"),
            best=1.0,
            description="R² of mean expression on the top-100 up DE genes (scGen)",
        ),
    )
}

#: Extra per-unit scores a suite computes itself (name -> higher is better).
INTERACTION_METRIC = "interaction_pearson"


# --- a baseline for unseen doses ------------------------------------------------------------------


def _log_dose(dose: str) -> NDArray[np.float64]:
    values = np.array([float(d) if d else 0.0 for d in dose.split("+")], dtype=np.float64)
    return np.log10(np.maximum(values, 1e-12))


class NearestDoseBaseline(EffectModel):
    """Shift control cells by the drug's training effect at the nearest dose (in log dose).

    For condition ``(c, p, dose)`` the candidates are the training conditions of ``p`` in
    context ``c``; the one whose dose is closest in ``log10`` (summed over the components of a
    combination) gives the effect (ties: the lower dose). Perturbations without training cells
    in ``c`` are refused. A suite-local baseline of ``sim-doses``.
    """

    name = "nearest_dose"
    predicts = "cells"

    def __init__(self) -> None:
        pass

    def _effects(self, keys: list[ConditionKey]) -> np.ndarray:
        table = self.conditions_
        out = np.zeros((len(keys), len(self.genes_)))
        problems = []
        for i, key in enumerate(keys):
            context, perturbation, dose = key
            rows = np.flatnonzero(
                (table[CONTEXT].to_numpy() == context)
                & (table[PERTURBATION].to_numpy() == perturbation)
            )
            if rows.size == 0:
                problems.append(f"{describe(key)} (no training dose of it in that context)")
                continue
            target = _log_dose(dose) if dose else np.zeros(len(dose_components(perturbation, "")))
            candidates = [
                (float(np.abs(_log_dose(str(table[DOSE].iloc[r])) - target).sum()), r) for r in rows
            ]
            best = min(candidates, key=lambda c: (c[0], _log_dose(str(table[DOSE].iloc[c[1]]))[0]))
            out[i] = self.delta_[best[1]]
        self._refuse(problems, fix="nearest_dose needs the drug measured in the same context.")
        return out


# --- the task of a cell suite ------------------------------------------------------------------

Options = Mapping[str, Any]


@dataclass(frozen=True)
class CellTask:
    """Everything the runner needs to run one cell suite, fold by fold.

    Attributes
    ----------
    name
        Suite name.
    load
        ``load(options) -> AnnData``: the canonical cells of the suite (cached; never mutated).
    fold_names
        ``fold_names(adata, options) -> list[str]``.
    assign
        ``assign(adata, fold, options)``: writes the fold's split to ``obs['split']``.
    unseen
        What the held-out conditions are new in (``"context"``, ``"perturbation"``,
        ``"combination"``); a registered model that handles none of them is skipped with the
        reason. Empty: every model is tried and its refusals recorded per condition.
    models
        Models run by default. Models needing a pip extra (the peers) are never among them:
        ask for them by name (``models=[..., "state", "scgen"]``).
    metrics
        Metrics reported, the primary first (registry names, :data:`SUITE_METRICS`,
        ``vcc_score``, :data:`INTERACTION_METRIC`).
    defaults
        Options and their defaults; always ``smoke``, ``n_top_genes`` and ``model_params``
        (``{model: {parameter: value}}``, passed to the models' constructors).
    smoke
        Options of a tiny run.
    fit_kwargs
        ``fit_kwargs(model, fold, options) -> dict``: extra keyword arguments of ``fit`` (e.g. a
        prior-knowledge ``perturbation_features``), built without the truth.
    local_models
        Models of this suite only (name -> factory).
    model_defaults
        Constructor parameters of models on this suite (``{model: {parameter: value}}``), e.g.
        the peers' training budget; the ``model_params`` option overrides them per parameter.
    smoke_model_defaults
        The same for ``smoke=True`` runs (applied over :attr:`model_defaults`).
    include_genes
        ``include_genes(adata, options) -> genes`` kept besides the HVGs (e.g. knockout targets).
    truth_extra
        ``truth_extra(options) -> object`` handed to :attr:`extra_scores` (ground truth of a
        simulation); ``None`` when the suite has none.
    extra_scores
        ``extra_scores(fold, predictions, truth_extra) -> DataFrame`` with columns ``model``,
        ``context``, ``perturbation``, ``metric``, ``value``: suite-specific per-unit scores.
    """

    name: str
    load: Callable[[Options], AnnData]
    fold_names: Callable[[AnnData, Options], list[str]]
    assign: Callable[[AnnData, str, Options], None]
    unseen: frozenset[str]
    models: tuple[str, ...]
    metrics: tuple[str, ...]
    defaults: dict[str, Any]
    smoke: dict[str, Any]
    fit_kwargs: Callable[[str, FoldData, Options], dict[str, Any]] | None = None
    local_models: Mapping[str, Callable[[], Model]] = field(default_factory=dict)
    model_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    smoke_model_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    include_genes: Callable[[AnnData, Options], list[str]] | None = None
    truth_extra: Callable[[Options], Any] | None = None
    extra_scores: Callable[[FoldData, Mapping[str, AnnData], Any], pd.DataFrame] | None = None

    # --- options and data -------------------------------------------------------------------

    def options(self, options: Options) -> dict[str, Any]:
        """Defaults overridden by ``options``; unknown names raise, naming the known ones."""
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise TypeError(
                f"unknown option(s) {unknown} for suite {self.name!r}; it takes "
                f"{sorted(self.defaults)}"
            )
        opts = {**self.defaults, **options}
        if _truthy(opts.get("smoke")):
            opts = {**opts, **{k: v for k, v in self.smoke.items() if k not in options}}
        return opts

    def data(self, options: Options) -> AnnData:
        """The suite's cells for these options (shared, cached: do not modify)."""
        return self.load(self.options(options))

    def folds(self, **options: Any) -> list[str]:
        """Fold names."""
        opts = self.options(options)
        return self.fold_names(self.load(opts), opts)

    def fold_data(self, fold: str, *, poison: bool = False, **options: Any) -> FoldData:
        """The fold's train / query / truth (see :class:`FoldData`).

        ``poison=True`` corrupts every held-out cell before the fold is cut (leakage tests).
        """
        opts = self.options(options)
        source = self.load(opts)
        names = self.fold_names(source, opts)
        if fold not in names:
            raise KeyError(f"unknown fold {fold!r} of suite {self.name!r}; folds: {names}")
        # A private obs/uns over the shared matrix: the split writes into obs and uns only.
        uns = {UNS_KEY: {k: v for k, v in source.uns.get(UNS_KEY, {}).items() if k != "splits"}}
        work = AnnData(X=source.X, obs=source.obs.copy(), var=source.var.copy(), uns=uns)
        self.assign(work, fold, opts)
        if poison:
            work = poison_held_out(work)
        include = self.include_genes(source, opts) if self.include_genes else []
        return make_fold(work, name=fold, n_top_genes=opts["n_top_genes"], include=include)

    # --- models ------------------------------------------------------------------------------

    def skip_reason(self, model: str) -> str:
        """Why ``model`` is not run on this suite (``""``: it is run)."""
        if model in self.local_models:
            return ""
        if model not in MODELS:
            return f"no model named {model!r} (celltwin.models.available())"
        spec = MODELS[model]
        missing = spec.missing_modules()
        if missing:
            return (
                f"{model} needs the package(s) {missing} of celltwin's {spec.extra!r} extra, "
                f"which are not installed. Fix: {spec.install_hint}"
            )
        handles = spec.handles_unseen
        if self.unseen and not (self.unseen & handles):
            return (
                f"{model} does not predict unseen {' or '.join(sorted(self.unseen))} conditions "
                f"(handles_unseen: {sorted(handles) or 'none'})"
            )
        return ""

    def make_model(
        self, model: str, *, seed: int, params: Mapping[str, Any] | None = None
    ) -> Model:
        """A fresh, unfitted model: seeded when it takes a seed, with ``params`` passed on."""
        if model in self.local_models:
            return self.local_models[model](**dict(params or {}))
        cls = MODELS[model].cls
        seeded = {"seed": seed} if "seed" in inspect.signature(cls.__init__).parameters else {}
        return get_model(model, **{**seeded, **dict(params or {})})

    def model_params(self, model: str, options: Options) -> dict[str, Any]:
        """Parameters of ``model``: the suite's :attr:`model_defaults` (and, for a smoke run,
        :attr:`smoke_model_defaults`), overridden by the ``model_params`` option
        (``{model: {name: value}}``)."""
        opts = self.options(options)
        given = opts.get("model_params") or {}
        if not isinstance(given, Mapping):
            raise ValueError(
                f"option 'model_params' must map model names to parameter dicts (got {given!r}), "
                'e.g. {"transition": {"max_steps": 200}}'
            )
        smoke = self.smoke_model_defaults.get(model, {}) if _truthy(opts.get("smoke")) else {}
        return {**self.model_defaults.get(model, {}), **smoke, **dict(given.get(model) or {})}

    def model_fit_kwargs(self, model: str, fold: FoldData, options: Options) -> dict[str, Any]:
        """Extra ``fit`` keyword arguments for ``model`` on ``fold``."""
        if self.fit_kwargs is None:
            return {}
        return self.fit_kwargs(model, fold, self.options(options))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _accepts(model: str, argument: str, local: Mapping[str, Callable[[], Model]]) -> bool:
    cls = type(local[model]()) if model in local else MODELS[model].cls
    return argument in inspect.signature(cls.fit).parameters


def _plus_registered(base: Sequence[str], *, unseen: str | None, extra: Sequence[str]) -> tuple:
    """``base`` models, then registered models handling ``unseen`` and ``extra`` ones if present.

    Models needing a pip extra (the peers) are left out: they run only when asked for by name.
    """
    names = list(base)
    for name, spec in MODELS.items():
        if name in names or spec.extra is not None:
            continue
        if (unseen is not None and unseen in spec.handles_unseen) or name in extra:
            names.append(name)
    return tuple(names)


def _subsample(adata: AnnData, *, per_group: int, keys: Sequence[str], seed: int) -> AnnData:
    """At most ``per_group`` cells of each group of ``keys`` (seeded), in the original order."""
    rng = np.random.default_rng(seed)
    groups = adata.obs.groupby(list(keys), observed=True, sort=True).indices
    keep = []
    for _, idx in sorted(groups.items(), key=lambda kv: tuple(map(str, np.atleast_1d(kv[0])))):
        keep.append(idx if idx.size <= per_group else rng.choice(idx, per_group, replace=False))
    rows = np.sort(np.concatenate(keep))
    return adata[rows].copy()


def _int_option(opts: Options, key: str) -> int:
    value = opts[key]
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"option {key!r} must be a whole number (got {value!r})") from None


# --- kang2018-heldout-celltype --------------------------------------------------------------------

_KANG_MIN_CELLS = 20


@cache
def _kang(dataset: str, smoke: bool, max_cells: int) -> AnnData:
    from ..data import load

    adata = load(dataset, progress=False)
    keep = adata.obs[PERTURBATION].astype(str).isin([CONTROL, _kang_stimulus(adata)])
    adata = adata[keep.to_numpy()].copy()
    for layer in list(adata.layers):  # models and metrics use X only
        del adata.layers[layer]
    if smoke or max_cells:
        adata = _subsample(adata, per_group=max_cells or 60, keys=[CONTEXT, PERTURBATION], seed=0)
    return adata


#: The peers' training on Kang (the ``model_params`` option overrides any of it). One torch
#: thread each: these small networks train several times faster on one thread than on two busy
#: cores. State: the adapter's network (4 layers of width 128, sets of 64 cells, 8 sets a step)
#: for 400 steps, about 18 passes over the ~11,000 training cells and ~6 CPU minutes a fold
#: (800 steps on the CD4_T fold: top-20-DE PearsonΔ 0.951 vs 0.956, energy distance 0.352 vs
#: 0.359, for 1.6x the CPU time); scGen: its tutorial's recipe (the adapter's defaults: 100
#: epochs, early stopping with patience 25 on 10 % validation cells).
_KANG_PEERS: dict[str, dict[str, Any]] = {
    "state": {"max_steps": 400, "n_threads": 1},
    "scgen": {"n_threads": 1},
}
#: Tiny peers for smoke runs (seconds, not minutes).
_SMOKE_PEERS: dict[str, dict[str, Any]] = {
    "state": {
        "max_steps": 20,
        "hidden_dim": 32,
        "n_heads": 2,
        "n_layers": 1,
        "cell_set_len": 16,
        "batch_size": 4,
        "n_threads": 1,
    },
    "scgen": {"n_hidden": 64, "n_latent": 10, "max_epochs": 3, "n_threads": 1},
}


def _kang_stimulus(adata: AnnData) -> str:
    labels = sorted(set(adata.obs[PERTURBATION].astype(str)) - {CONTROL})
    if len(labels) != 1:
        raise ValueError(
            f"kang2018-heldout-celltype expects one stimulus besides {CONTROL!r} in "
            f"obs[{PERTURBATION!r}] (got {labels})"
        )
    return labels[0]


def _kang_load(opts: Options) -> AnnData:
    return _kang(str(opts["dataset"]), _truthy(opts["smoke"]), _int_option(opts, "max_cells"))


def _kang_folds(adata: AnnData, opts: Options) -> list[str]:
    counts = pd.crosstab(adata.obs[CONTEXT].astype(str), adata.obs[PERTURBATION].astype(str))
    ok = sorted(c for c in counts.index if (counts.loc[c] >= _KANG_MIN_CELLS).all())
    return ok[: _int_option(opts, "max_folds")] if opts["max_folds"] else ok


def _kang_assign(adata: AnnData, fold: str, opts: Options) -> None:
    from ..split import split_contexts

    split_contexts(adata, test=fold, seed=0)


KANG = CellTask(
    name="kang2018-heldout-celltype",
    load=_kang_load,
    fold_names=_kang_folds,
    assign=_kang_assign,
    unseen=frozenset({"context"}),
    models=_plus_registered(
        ("control", "mean", "context_shift", "linear"), unseen="context", extra=()
    ),
    metrics=(
        "pearson_delta_top20_de",
        "energy_distance",
        "des",
        "mae",
        "pearson_delta",
        "r2_mean_all",
        "r2_mean_top100_de",
    ),
    defaults={
        "smoke": False,
        "model_params": {},
        "n_top_genes": N_TOP_GENES,
        "dataset": "kang2018",
        "max_cells": 0,
        "max_folds": 0,
    },
    smoke={"n_top_genes": 300, "max_cells": 60, "max_folds": 2},
    model_defaults=_KANG_PEERS,
    smoke_model_defaults=_SMOKE_PEERS,
)


# --- papalexi2021-heldout-ko ---------------------------------------------------------------------


@cache
def _papalexi(smoke: bool) -> AnnData:
    from ..data import load

    adata = load("papalexi2021_subset", progress=False)
    for layer in list(adata.layers):
        del adata.layers[layer]
    adata.obsm.clear()
    if smoke:
        perts = sorted(set(adata.obs[PERTURBATION].astype(str)) - {CONTROL})[:10]
        adata = adata[adata.obs[PERTURBATION].astype(str).isin([CONTROL, *perts]).to_numpy()]
        adata = _subsample(adata.copy(), per_group=40, keys=[PERTURBATION], seed=0)
    return adata


def _ko_chunks(adata: AnnData, opts: Options) -> dict[str, list[str]]:
    perts = np.array(sorted(set(adata.obs[PERTURBATION].astype(str)) - {CONTROL}), dtype=object)
    k = _int_option(opts, "n_folds")
    if not 2 <= k <= perts.size:
        raise ValueError(f"option 'n_folds' must be in [2, {perts.size}] (got {k})")
    order = perts[np.random.default_rng(_int_option(opts, "split_seed")).permutation(perts.size)]
    return {f"fold{i}": sorted(map(str, chunk)) for i, chunk in enumerate(np.array_split(order, k))}


def _papalexi_assign(adata: AnnData, fold: str, opts: Options) -> None:
    from ..split import split_perturbations

    split_perturbations(adata, test=_ko_chunks(adata, opts)[fold], val=[], seed=0)


@cache
def _prior_embedding(source: str, genes: tuple[str, ...]) -> pd.DataFrame:
    from ..priors import gene_embedding

    return gene_embedding(source, genes=list(genes))


#: Models of papalexi2021-heldout-ko given the prior-knowledge perturbation embedding.
_EMBEDDING_MODELS = ("linear", "nearest_perturbation", "transition")


def _papalexi_fit_kwargs(model: str, fold: FoldData, opts: Options) -> dict[str, Any]:
    """Prior-knowledge embeddings of every knockout target for the embedding-based models.

    The embedding comes from GO and STRING (prior knowledge, not the cells), so it may cover the
    held-out targets: that is how an unseen perturbation is predicted at all. ``linear`` gets it
    too (its ``P``): its default ``G[target]`` exists only for targets among the 299 measured
    genes, which leaves most knockouts of this subset unpredictable. ``transition`` takes the
    same table (its own data-derived default, like ``linear``'s,
    covers only the targets among the measured genes).
    """
    if model not in _EMBEDDING_MODELS or model not in MODELS:
        return {}
    if not _accepts(model, "perturbation_features", {}):
        return {}
    targets = sorted(
        set(fold.train.obs[PERTURBATION].astype(str)) | set(fold.conditions[PERTURBATION])
    )
    targets = [t for t in targets if t != CONTROL]
    embedding = _prior_embedding(str(opts["prior"]), tuple(targets))
    return {"perturbation_features": embedding}


PAPALEXI = CellTask(
    name="papalexi2021-heldout-ko",
    load=lambda opts: _papalexi(_truthy(opts["smoke"])),
    fold_names=lambda adata, opts: list(_ko_chunks(adata, opts)),
    assign=_papalexi_assign,
    unseen=frozenset({"perturbation"}),
    models=_plus_registered(
        ("control", "mean", "linear", "nearest_perturbation"), unseen=None, extra=("transition",)
    ),
    metrics=("vcc_score", "mae", "des", "pds", "pearson_delta"),
    defaults={
        "smoke": False,
        "model_params": {},
        "n_top_genes": None,
        "n_folds": 5,
        "split_seed": 0,
        "prior": "go+string",
    },
    # DoRothEA's embedding takes seconds, GO + STRING's tens of seconds: the smoke run's prior.
    smoke={"n_folds": 2, "prior": "dorothea"},
    fit_kwargs=_papalexi_fit_kwargs,
)


# --- simulated suites --------------------------------------------------------------------------


@cache
def _simulation(kind: str, smoke: bool, data_seed: int, cells: int | None = None) -> Any:
    from ..simulate import simulate

    if kind == "combinations":
        return simulate(
            n_genes=60 if smoke else 200,
            n_tfs=10 if smoke else 20,
            contexts=("A",),
            n_perturbations=8 if smoke else 16,
            combinations=8 if smoke else 24,
            cells_per_condition=cells or (25 if smoke else 100),
            seed=data_seed,
        )
    return simulate(
        n_genes=40 if smoke else 200,
        n_tfs=6 if smoke else 20,
        contexts=("A", "B"),
        n_perturbations=0,
        combinations=0,
        drugs=3 if smoke else 10,
        doses=(0.01, 0.1, 1.0, 10.0, 100.0),
        cells_per_condition=25 if smoke else 80,
        seed=data_seed,
    )


def _sim_load(kind: str) -> Callable[[Options], AnnData]:
    def load(opts: Options) -> AnnData:
        sim = _simulation(
            kind, _truthy(opts["smoke"]), _int_option(opts, "data_seed"), _cells_option(opts)
        )
        adata = sim.adata.copy()
        for layer in list(adata.layers):
            del adata.layers[layer]
        return adata

    return load


def _cells_option(opts: Options) -> int | None:
    return _int_option(opts, "cells_per_condition") if "cells_per_condition" in opts else None


def _combo_folds(adata: AnnData, opts: Options) -> list[str]:
    return [f"split{i}" for i in range(_int_option(opts, "n_folds"))]


def _combo_assign(adata: AnnData, fold: str, opts: Options) -> None:
    from ..split import split_combinations

    seed = int(fold.removeprefix("split"))
    split_combinations(
        adata, test_single_fraction=0.25, test_seen2_fraction=0.25, val_fraction=0.0, seed=seed
    )


def _pearson_rows(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, np.einsum("ij,ij->i", a, b) / den, np.nan)


def _partial_pearson(
    x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64]
) -> float:
    """Pearson r of ``x`` and ``y`` over genes after removing from both their fit on ``[1, z]``.

    0 when nothing of ``x`` is left (a prediction with no interaction beyond the additive one
    recovers none).
    """
    design = np.column_stack([np.ones_like(z), z])

    def residual(v: NDArray[np.float64]) -> NDArray[np.float64]:
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    rx, ry = residual(x), residual(y)
    # Below this, what is left is float32 rounding of the predicted cells, not an interaction.
    scale = max(float(np.linalg.norm(x)), float(np.linalg.norm(z)), 1e-12)
    if float(np.linalg.norm(rx)) <= 1e-5 * scale or not np.any(ry):
        return 0.0
    return float(_pearson_rows(rx[None, :], ry[None, :])[0])


def _group_means(adata: AnnData, keys: Sequence[str]) -> dict[tuple[str, ...], NDArray[np.float64]]:
    """Mean expression (float64) of each group of obs columns ``keys``."""
    x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    x = np.asarray(x, dtype=np.float64)
    obs = adata.obs
    columns = [
        obs[k].astype(str).to_numpy() if k in obs.columns else np.full(adata.n_obs, "")
        for k in keys
    ]
    labels = np.array(["\x1f".join(t) for t in zip(*columns, strict=True)], dtype=object)
    out = {}
    for label in pd.unique(labels):
        out[tuple(str(label).split("\x1f"))] = x[labels == label].mean(axis=0)
    return out


def interaction_scores(
    fold: FoldData, predictions: Mapping[str, AnnData], simulation: Any
) -> pd.DataFrame:
    """Interaction recovery of each held-out combination, per model.

    A model's predicted interaction is its predicted effect of the combination minus its own
    additive expectation, the sum of its parts' effects as the model has them: a part held out
    in this fold contributes the model's prediction of it (combinations whose held-out parts
    the model did not predict get no row); a part trained on contributes its effect in the
    training cells (the data every model was given). Effects are mean predicted (or training)
    cells minus the mean of the context's query control cells. The true interaction is
    :attr:`Simulation.interactions` (the combination's true effect minus its singles' true
    effects).

    The score is their *partial* Pearson r over the fold's genes given the model's additive
    expectation ``s``: both interactions are first freed of their least-squares fit on
    ``[1, s]``. Without that, any prediction that merely shrinks the sum of its parts (the
    ``control`` model, which "predicts" a combination cancels its parts) correlates with the
    true interactions, which lean sub-additive in the simulator. A prediction with no
    interaction beyond ``s`` scores 0.

    Why not the *true* single effects as the reference (the earlier definition): then the
    predicted interaction carries the sampling noise of the measured singles a model builds on
    (about ten times the size of the simulator's interactions at 100 cells per condition), and
    any shrinkage of the additive prediction scores like a recovered interaction: a model that
    knew every true interaction exactly scored 0.09 and ``control`` 0.16.
    """
    truth = simulation.interactions
    genes = list(fold.genes)
    inter = np.asarray(truth.X, dtype=np.float64)[:, truth.var_names.get_indexer(genes)]
    inter_row = {
        (str(c), str(p), str(d)): i
        for i, (c, p, d) in enumerate(truth.obs[[CONTEXT, PERTURBATION, DOSE]].to_numpy())
    }
    control_mean = {k[0]: v for k, v in _group_means(fold.query, [CONTEXT]).items()}
    trained = {
        key: mean - control_mean[key[0]]
        for key, mean in _group_means(fold.train, [CONTEXT, PERTURBATION, DOSE]).items()
        if key[1] != CONTROL and key[0] in control_mean
    }
    combos = [
        (str(c), str(p), str(d))
        for c, p, d in fold.conditions[[CONTEXT, PERTURBATION, DOSE]].to_numpy()
        if len(split_combination(str(p))) > 1 and (str(c), str(p), str(d)) in inter_row
    ]
    rows = []
    for model, pred in predictions.items():
        pred = pred[:, pred.var_names.get_indexer(genes)]
        predicted = {
            key: mean - control_mean[key[0]]
            for key, mean in _group_means(pred, [CONTEXT, PERTURBATION, DOSE]).items()
            if key[0] in control_mean
        }
        for key in combos:
            if key not in predicted:
                continue
            context, combo, d = key
            parts = [
                (context, part, pd_)
                for part, pd_ in zip(
                    split_combination(combo), dose_components(combo, d), strict=True
                )
            ]
            reference = [trained.get(s, predicted.get(s)) for s in parts]
            if any(r is None for r in reference):
                continue
            additive = np.sum(reference, axis=0)
            value = _partial_pearson(predicted[key] - additive, inter[inter_row[key]], additive)
            rows.append((model, context, combo, INTERACTION_METRIC, value))
    return pd.DataFrame(rows, columns=["model", CONTEXT, PERTURBATION, "metric", "value"])


COMBINATIONS = CellTask(
    name="sim-combinations",
    load=_sim_load("combinations"),
    fold_names=_combo_folds,
    assign=_combo_assign,
    unseen=frozenset({"perturbation", "combination"}),
    models=_plus_registered(
        ("control", "mean", "additive", "linear"), unseen=None, extra=("transition",)
    ),
    metrics=("pearson_delta", INTERACTION_METRIC, "mae", "pearson_delta_top20_de"),
    defaults={
        "smoke": False,
        "model_params": {},
        "n_top_genes": None,
        "n_folds": 5,
        "data_seed": 0,
        # v3: 500 cells per condition. At 100 the simulated interactions (about 7% of the
        # effects' size) drown in sampling noise: the measured combination itself recovered
        # only 0.07 of them (partial r), so no model could be told apart from `additive`.
        "cells_per_condition": 500,
    },
    smoke={"n_folds": 2, "cells_per_condition": 25},
    truth_extra=lambda opts: _simulation(
        "combinations", _truthy(opts["smoke"]), _int_option(opts, "data_seed"), _cells_option(opts)
    ),
    extra_scores=interaction_scores,
)


_DOSE_FOLDS = {"highest": ("highest", 0), "lowest": ("lowest", 0), "random": ("random", 0)}


def _dose_assign(adata: AnnData, fold: str, opts: Options) -> None:
    from ..split import split_doses

    which, seed = _DOSE_FOLDS[fold]
    split_doses(adata, which=which, n_test=1, seed=seed)  # type: ignore[arg-type]


def _drug_identity(fold: FoldData) -> pd.DataFrame:
    """One-hot drug identity (a drug's doses share it): the embedding of the dose-free models."""
    drugs = sorted(
        {part for p in fold.train.obs[PERTURBATION].astype(str) for part in split_combination(p)}
        | {part for p in fold.conditions[PERTURBATION] for part in split_combination(p)}
    )
    return pd.DataFrame(np.eye(len(drugs)), index=pd.Index(drugs), columns=drugs)


def _dose_fit_kwargs(model: str, fold: FoldData, opts: Options) -> dict[str, Any]:
    # Simulated drugs have no structures: every embedding model gets the drug's identity (its
    # doses share it; `transition` adds log-dose to features itself).
    if model in _EMBEDDING_MODELS:
        return {"perturbation_features": _drug_identity(fold)}
    return {}


DOSES = CellTask(
    name="sim-doses",
    load=_sim_load("doses"),
    fold_names=lambda adata, opts: list(_DOSE_FOLDS),
    assign=_dose_assign,
    unseen=frozenset(),
    models=_plus_registered(
        ("control", "mean", "linear", "nearest_perturbation", "nearest_dose"),
        unseen=None,
        extra=("transition",),
    ),
    metrics=("pearson_delta", "mae", "pearson_delta_top20_de", "energy_distance"),
    defaults={"smoke": False, "model_params": {}, "n_top_genes": None, "data_seed": 0},
    smoke={},
    fit_kwargs=_dose_fit_kwargs,
    local_models={"nearest_dose": NearestDoseBaseline},
)


# --- registration ----------------------------------------------------------------------------------

_SUITE_INFO: dict[str, tuple[CellTask, str, str, str]] = {
    KANG.name: (
        KANG,
        # 2: kang2018 v2 contexts (reference mapping to scGen's labels; 7 cell types).
        "2",
        "Kang 2018 PBMCs: predict each cell type's IFN-beta response from its control cells, "
        "trained on the other cell types (scGen setting); 2,000 HVGs from training cells.",
        "kang2018",
    ),
    PAPALEXI.name: (
        PAPALEXI,
        "1",
        "Papalexi 2021 THP-1: predict held-out CRISPR knockouts (5 folds over 25 targets); "
        "Virtual Cell Challenge metrics against the mean-of-training baseline.",
        "papalexi2021_subset",
    ),
    COMBINATIONS.name: (
        COMBINATIONS,
        # 2: interaction_pearson against the model's own additive expectation (partial r).
        # 3: 500 cells per condition (was 100), so interactions rise above sampling noise.
        "3",
        "Simulated knockouts and pairs with true interactions: GEARS splits (unseen singles, "
        "combo_seen0/1/2), interaction recovery against the simulator's truth.",
        "celltwin.simulate",
    ),
    DOSES.name: (
        DOSES,
        "1",
        "Simulated drugs at five doses in two contexts: predict unseen doses (highest, lowest, "
        "random per drug).",
        "celltwin.simulate",
    ),
}


def _run_fold_of(task: CellTask) -> Callable[..., pd.DataFrame]:
    def run_fold(
        fold: str,
        *,
        models: Sequence[str] | None = None,
        seed: int = 0,
        progress: bool = False,
        **options: Any,
    ) -> pd.DataFrame:
        """Results of one fold (:data:`RESULT_COLUMNS`), every model fitted in this process."""
        from ._runner import run_cell_fold

        return run_cell_fold(task, fold, models=models, seed=seed, **options)

    return run_fold


for _name, (_task, _version, _description, _data) in _SUITE_INFO.items():
    register_suite(
        Suite(
            name=_name,
            version=_version,
            description=_description,
            kind="cells",
            folds=_task.folds,
            run_fold=_run_fold_of(_task),
            models=_task.models,
            metrics=_task.metrics,
            data=_data,
            options=dict(_task.defaults),
            smoke={"smoke": True},
            task=_task,
        )
    )
