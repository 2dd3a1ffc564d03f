"""The task of a cell suite: what the runner needs to build, fit and score one fold.

A :class:`CellTask` loads the suite's canonical cells, writes one split per fold
(:mod:`celltwin.split`) and cuts the fold into the roles a model may and may not see
(:func:`celltwin.benchmark.make_fold`); it also says which models run, with which parameters
and ``fit`` arguments. The families (``_kang``, ``_papalexi``, ``_simulated``) define one each.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from ..._keys import UNS_KEY
from ...models import MODELS, Model, get_model
from .._features import FoldData, make_fold, poison_held_out

Options = Mapping[str, Any]

#: What the models of a cell suite predict (:attr:`celltwin.models.ModelSpec.predicts`).
CELL_PREDICTIONS = ("cells", "pseudobulk")
#: Models given a perturbation embedding as ``perturbation_features`` where a suite has one
#: (papalexi2021-heldout-ko: prior knowledge; sim-doses: the drug's identity).
EMBEDDING_MODELS = ("linear", "nearest_perturbation", "transition")


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
        Metrics reported, the primary first (names of :data:`celltwin.eval.METRICS`,
        ``vcc_score``, and what :attr:`extra_scores` reports).
    defaults
        Options and their defaults; always ``smoke``, ``n_top_genes`` and ``model_params``
        (``{model: {parameter: value}}``, passed to the models' constructors).
    smoke
        Options of a tiny run.
    fit_kwargs
        ``fit_kwargs(model, fold, options) -> dict``: extra keyword arguments of ``fit`` (e.g. a
        prior-knowledge ``perturbation_features``), built without the truth.
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
        if truthy(opts.get("smoke")):
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
        if model not in MODELS:
            return f"no model named {model!r} (celltwin.models.available())"
        spec = MODELS[model]
        if spec.predicts not in CELL_PREDICTIONS:
            return f"{model} predicts {spec.predicts}, not cells: it runs on signature suites"
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
        smoke = self.smoke_model_defaults.get(model, {}) if truthy(opts.get("smoke")) else {}
        return {**self.model_defaults.get(model, {}), **smoke, **dict(given.get(model) or {})}

    def model_fit_kwargs(self, model: str, fold: FoldData, options: Options) -> dict[str, Any]:
        """Extra ``fit`` keyword arguments for ``model`` on ``fold``."""
        if self.fit_kwargs is None:
            return {}
        return self.fit_kwargs(model, fold, self.options(options))


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def accepts(model: str, argument: str) -> bool:
    """Whether the registered ``model``'s ``fit`` takes ``argument`` (its fit parameters
    included: the base ``fit(*args, **kwargs)`` hands them to ``_fit``)."""
    return argument in MODELS[model].fit_arguments


def plus_registered(base: Sequence[str], *, unseen: str | None, extra: Sequence[str]) -> tuple:
    """``base`` models, then registered cell models handling ``unseen`` and ``extra`` ones if
    present.

    Models needing a pip extra (the peers) are left out: they run only when asked for by name.
    Signature models are never among them (they run on the signature suites).
    """
    names = list(base)
    for name, spec in MODELS.items():
        if name in names or spec.extra is not None or spec.predicts not in CELL_PREDICTIONS:
            continue
        if (unseen is not None and unseen in spec.handles_unseen) or name in extra:
            names.append(name)
    return tuple(names)


def subsample(adata: AnnData, *, per_group: int, keys: Sequence[str], seed: int) -> AnnData:
    """At most ``per_group`` cells of each group of ``keys`` (seeded), in the original order."""
    rng = np.random.default_rng(seed)
    groups = adata.obs.groupby(list(keys), observed=True, sort=True).indices
    keep = []
    for _, idx in sorted(groups.items(), key=lambda kv: tuple(map(str, np.atleast_1d(kv[0])))):
        keep.append(idx if idx.size <= per_group else rng.choice(idx, per_group, replace=False))
    rows = np.sort(np.concatenate(keep))
    return adata[rows].copy()


def int_option(opts: Options, key: str) -> int:
    value = opts[key]
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"option {key!r} must be a whole number (got {value!r})") from None
