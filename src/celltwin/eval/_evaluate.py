"""Evaluate a prediction against real cells: the registered metrics, two floors and a ceiling.

:func:`evaluate` scores a prediction (cells, or pseudobulk profiles) against the true cells of every
(context, perturbation), with the metrics of :data:`~celltwin.eval.METRICS`; DE tests and PDS are
computed per context against that context's control cells. Next to the model it scores two floors
with exactly the same metrics -- the *control* baseline (the truth's control cells predicted for
every perturbation) and, given training data, the *mean* baseline (cell-eval's VCC baseline: every
perturbation predicted as the equal-weight mean of the training centroids) -- and, as a ceiling,
real data predicting itself (:func:`~celltwin.eval.split_half_ceiling`). :func:`evaluate_files`
is the same from files, writing the result (tables, JSON and an HTML report).

Everything the truth contributes (group means, its DE test, top DE genes, a PCA space) is computed
once per context and shared by the model and both baselines, which is why this is faster than
scoring three predictions separately. Constant predictions (the mean baseline: ``n`` identical
cells per perturbation, as cell-eval builds it) get their rank-sum DE test in closed form, exactly
what the test gives on materialised copies, without materialising them.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from numpy.typing import NDArray
from tqdm.auto import tqdm

from .._keys import CONTEXT, CONTROL, DOSE, PERTURBATION, TEST, UNS_KEY
from ..io import Problem, ValidationError, matrix_stats
from ._ceiling import split_half_ceiling
from ._de import (
    DEResult,
    _code_sums,
    _mwu_pvalue,
    benjamini_hochberg,
    log2_fold_change,
    rank_sum_test,
    top_de_genes,
    welch_t_test,
)
from ._metrics import fit_pca, mean_of_centroids, vcc_score
from ._registry import (
    CELL_KINDS,
    METRICS,
    NEEDS_PRED_CELLS,
    SCGEN_METRICS,
    VCC_METRICS,
    Metric,
    MetricInputs,
    get_metric,
    target_gene_mask,
)
from ._result import Evaluation, summary_dict

__all__ = ["DEFAULT_METRICS", "evaluate", "evaluate_files"]

#: Metrics computed when none are named: every registered metric computable from cells except
#: the distributional ones (``energy_distance``, ``mmd``), which need a PCA of the cells, and
#: scGen's (:data:`~celltwin.eval.SCGEN_METRICS`); name them to get them.
DEFAULT_METRICS: tuple[str, ...] = tuple(
    name
    for name, metric in METRICS.items()
    if metric.kinds <= CELL_KINDS and "cells" not in metric.kinds and name not in SCGEN_METRICS
)
_TRUE_DE = frozenset({"true_de", "true_lfc", "true_fdr"})
_PRED_DE = frozenset({"pred_de", "pred_lfc", "pred_fdr"})
_CELLS = frozenset({"pred_cells", "true_cells"})

#: Genes per perturbation kept in ``Evaluation.deltas`` (the report's scatter plots).
N_REPORT_GENES = 20
#: GEARS' number of top DE genes (``pearson_delta_top20_de``, ``mse_top20_de``).
N_TOP_DE = 20
#: Joins perturbation and dose into one group label inside this module (never shown).
_DOSE_JOIN = "\x1f"
#: Columns of aggregate-level metric rows (one value per context).
_AGG_COLUMNS = [CONTEXT, "metric", "value"]
#: Genes per block when the constant-prediction DE densifies control cells.
_GENE_BLOCK = 1024


# --- public API -----------------------------------------------------------------------------------


def evaluate(
    truth: AnnData,
    pred: AnnData,
    *,
    train: AnnData | None = None,
    metrics: Sequence[str] | None = None,
    ceiling: bool = True,
    n_repeats: int = 3,
    n_boot: int = 1000,
    seed: int = 0,
    allow_missing: bool = False,
    progress: bool = False,
) -> Evaluation:
    """Score a prediction against the truth, next to two baselines and a noise ceiling.

    Metrics are computed per (context, perturbation) -- per (context, perturbation, dose) when
    obs has doses -- and DE tests and PDS per context, against that context's control cells.
    Every input is checked before anything is computed; all problems are reported at once.

    Parameters
    ----------
    truth
        Canonical AnnData of real cells (log1p(CP10k) in X), control cells included, in one or
        several contexts.
    pred
        Canonical AnnData of predicted cells, or of predicted pseudobulk profiles (one row per
        condition, ``uns['celltwin']['prediction']['kind'] == 'pseudobulk'``, as
        :meth:`celltwin.models.Model.predict` writes). Genes are matched to the truth's by name.
        Its control cells serve as the predicted control (as in cell-eval); without any, the
        truth's control cells are used and ``params['pred_control']`` says so. Pseudobulk
        predictions get only the metrics computable from profiles; the others are listed in
        ``skipped`` with the reason.
    train
        Training cells (canonical). Enables the ``mean`` baseline (cell-eval's baseline: the
        equal-weight mean of the training centroids, control included, per context), the VCC
        score (:func:`~celltwin.eval.vcc_score`, when mae, des and pds are computed) and the
        Systema metrics (reference: the mean of the training perturbation centroids).
    metrics
        Registered metric names (see :func:`~celltwin.eval.list_metrics`); default
        :data:`DEFAULT_METRICS` (all but the distributional ones).
    ceiling
        Compute the split-half ceiling (real data predicting itself, at half depth; see
        :func:`~celltwin.eval.split_half_ceiling`). It recomputes the DE test on each half.
    n_repeats
        Random split halves for the ceiling.
    n_boot
        Bootstrap resamples (of perturbations) for the confidence intervals.
    seed
        Seed of the bootstrap, the split halves and cell sampling for distributional metrics.
    allow_missing
        Evaluate on the perturbations both sides have, instead of failing when a perturbation
        (or context) is on one side only; the dropped ones are listed in ``params['dropped']``.
    progress
        Show a progress bar over contexts.

    Returns
    -------
    Evaluation
        Per-perturbation values, summaries with bootstrap CIs, baselines, ceiling, the genes
        skipped metrics and the parameters (see :class:`~celltwin.eval.Evaluation`).

    Raises
    ------
    ValidationError
        Naming every problem found: genes missing from the prediction, NaN or infinite values,
        counts instead of log-normalised values, missing control cells, perturbations on one
        side only, contexts without perturbed cells.

    Examples
    --------
    >>> result = celltwin.eval.evaluate(test_cells, prediction, train=train_cells)  # doctest: +SKIP
    >>> result.summary["pds"]["mean"]  # doctest: +SKIP
    0.93
    >>> result.write("eval/")  # metrics.csv, summary.json, report.html  # doctest: +SKIP
    """
    if n_repeats < 1:
        raise ValueError(f"'n_repeats' must be >= 1 (got {n_repeats})")
    if n_boot < 1:
        raise ValueError(f"'n_boot' must be >= 1 (got {n_boot})")
    plan = _plan(truth, pred, train=train, metrics=metrics, allow_missing=allow_missing, seed=seed)
    # Per source (model, the baselines, ceiling): long per-perturbation frames, aggregate rows.
    frames: dict[str, list[pd.DataFrame]] = defaultdict(list)
    aggregates: dict[str, list[dict[str, Any]]] = defaultdict(list)
    deltas: list[pd.DataFrame] = []
    for context in tqdm(plan.contexts, desc="evaluate", disable=not progress):
        ctx = _ContextData.build(plan, context)
        shared = _truth_inputs(plan, ctx)
        sides = {"model": _model_fields(plan, ctx, shared)}
        if plan.train is not None:
            sides["mean"] = _mean_baseline_fields(plan, ctx, shared)
        sides["control"] = _control_baseline_fields(plan, ctx, shared)
        for name, fields in sides.items():
            inputs = MetricInputs(**shared.fields, **fields)
            frame, agg = _score(plan.metrics, inputs, ctx, has_dose=plan.has_dose)
            frames[name].append(frame)
            aggregates[name] += agg
            if name == "model":
                deltas.append(_delta_table(ctx, shared, inputs, has_dose=plan.has_dose))
        if ceiling and shared.control_rows.size < 2:
            plan.params["notes"].append(
                f"no ceiling for context {context!r}: its control needs 2 cells to be split"
            )
        elif ceiling:
            frame, agg = _ceiling(plan, ctx, shared, n_repeats=n_repeats, seed=seed)
            frames["ceiling"].append(frame)
            aggregates["ceiling"] += agg
    columns = [*frames["model"][0].columns]
    long = {
        name: pd.concat(frames[name], ignore_index=True)
        if frames[name]
        else pd.DataFrame(columns=columns)
        for name in ("model", "mean", "control", "ceiling")
    }
    agg = {name: pd.DataFrame(aggregates[name], columns=_AGG_COLUMNS) for name in long}
    summaries = {
        name: summary_dict(long[name], agg[name], n_boot=n_boot, seed=seed)
        for name in long
        if frames[name]
    }
    baselines = {name: summaries[name] for name in ("mean", "control") if name in summaries}
    params = {
        **plan.params,
        "ceiling": bool(ceiling),
        "n_repeats": int(n_repeats),
        "n_boot": int(n_boot),
        "seed": int(seed),
        "higher_is_better": {m.name: m.higher_is_better for m in plan.metrics},
        "descriptions": {m.name: m.description for m in plan.metrics},
    }
    return Evaluation(
        per_perturbation=long["model"],
        summary=summaries["model"],
        baselines=baselines,
        ceiling=summaries.get("ceiling", {}),
        skipped=dict(plan.skipped),
        params=params,
        aggregate=agg["model"],
        baseline_values=pd.concat(
            [long[name].assign(baseline=name) for name in baselines], ignore_index=True
        ),
        ceiling_values=long["ceiling"],
        deltas=pd.concat(deltas, ignore_index=True),
        scores=_scores(summaries["model"], baselines),
    )


def evaluate_files(
    truth: str | os.PathLike[str],
    pred: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    train: str | os.PathLike[str] | None = None,
    metrics: Sequence[str] | None = None,
    ceiling: bool = True,
    n_repeats: int = 3,
    n_boot: int = 1000,
    seed: int = 0,
    allow_missing: bool = False,
    title: str | None = None,
    progress: bool = False,
    split_key: str | None = None,
    split: str = TEST,
    **read_options: Any,
) -> Evaluation:
    """Read the files (any convention :func:`celltwin.io.read` knows), evaluate, write to ``out``.

    Parameters
    ----------
    truth, pred, train
        ``.h5ad`` files: true cells, the prediction and (optionally) the training cells.
    split_key, split
        For a ``truth`` file that carries a split (``celltwin split``) in ``obs[split_key]``:
        score against its ``split`` cells and their contexts' controls
        (:func:`celltwin.split.held_out_cells`), and take the training cells
        (:func:`celltwin.split.train_cells`) of ``truth`` when ``train`` is not given (a
        ``train`` file is cut the same way when it has that column, else used whole).
        ``None`` (default): the files are used whole.
    out
        Output directory: ``metrics.csv``, ``summary.json``, ``report.html`` and the other tables
        of :meth:`Evaluation.write` (written only when the evaluation succeeds).
    metrics, ceiling, n_repeats, n_boot, seed, allow_missing, progress
        As in :func:`evaluate`.
    title
        Title of the HTML report.
    **read_options
        Passed to :func:`celltwin.io.read` for every file (``convention=``,
        ``perturbation_key=``, ``control_label=``, ``context=``, ...).

    Returns
    -------
    Evaluation
        The result, also written to ``out``.
    """
    from ..io import read

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"'out' must be a directory: {out} is a file. Fix: choose a folder.")
    true_cells = read(truth, **read_options)
    predicted = _read_prediction(pred, read_options)
    train_cells = read(train, **read_options) if train is not None else None
    if split_key is not None:
        from ..split import held_out_cells
        from ..split import train_cells as training_part

        if train_cells is None:
            train_cells = training_part(true_cells, key=split_key)
        elif split_key in train_cells.obs.columns:
            train_cells = training_part(train_cells, key=split_key)
        true_cells = held_out_cells(true_cells, key=split_key, split=split)
    result = evaluate(
        true_cells,
        predicted,
        train=train_cells,
        metrics=metrics,
        ceiling=ceiling,
        n_repeats=n_repeats,
        n_boot=n_boot,
        seed=seed,
        allow_missing=allow_missing,
        progress=progress,
    )
    result.params["files"] = {
        "truth": str(truth),
        "pred": str(pred),
        **({"train": str(train)} if train is not None else {}),
        **({"split_key": split_key, "split": split} if split_key is not None else {}),
    }
    result.write(out, title=title)
    return result


def _read_prediction(path: str | os.PathLike[str], read_options: dict[str, Any]) -> AnnData:
    """A prediction file: celltwin's own (``celltwin predict``) as written, others via ``read``.

    celltwin's predictions are canonical already and hold only the predicted conditions (no
    control cells, which ``read`` would refuse); :func:`evaluate` then takes the truth's
    control cells as the predicted control.
    """
    import anndata
    import h5py

    from ..io import read

    ours = False
    if Path(path).suffix == ".h5ad" and h5py.is_hdf5(path):  # else `read` explains the problem
        with h5py.File(path, "r") as handle:
            ours = f"uns/{UNS_KEY}/prediction" in handle
    if ours and not read_options:
        return anndata.read_h5ad(path)
    return read(path, **read_options)


# --- planning and validation ---------------------------------------------------------------------


@dataclass
class _Plan:
    """Validated, aligned inputs: what to compute, on which rows and genes."""

    genes: NDArray[np.str_]
    truth_X: Any
    truth_units: NDArray[np.str_]
    truth_context: NDArray[np.str_]
    pred_X: Any
    pred_units: NDArray[np.str_]
    pred_context: NDArray[np.str_]
    pred_is_pseudobulk: bool
    train: tuple[Any, NDArray[np.str_], NDArray[np.str_]] | None  # X, units, context
    contexts: list[str]
    perturbations: dict[str, NDArray[np.str_]]  # context -> sorted unit labels evaluated
    metrics: list[Metric]
    skipped: dict[str, str]
    params: dict[str, Any]
    has_dose: bool
    seed: int


def _preview(values: Iterable[object], limit: int = 8) -> str:
    values = list(values)
    shown = ", ".join(repr(str(v)) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _unit_labels(obs: pd.DataFrame) -> NDArray[np.str_]:
    """Perturbation, joined with the dose when there is one: the unit metrics are computed for."""
    pert = obs[PERTURBATION].astype(str).to_numpy()
    if DOSE not in obs.columns:
        return pert.astype(str)
    dose = obs[DOSE].astype(object).where(obs[DOSE].notna(), "").astype(str).to_numpy()
    with_dose = (dose != "") & (pert != CONTROL)
    return np.where(with_dose, np.char.add(np.char.add(pert, _DOSE_JOIN), dose), pert).astype(str)


def _split_unit(label: str) -> tuple[str, str]:
    pert, _, dose = label.partition(_DOSE_JOIN)
    return pert, dose


def _show(label: str) -> str:
    pert, dose = _split_unit(label)
    return f"{pert} ({dose} uM)" if dose else pert


def _x_problems(adata: AnnData, role: str, *, pred: bool) -> list[Problem]:
    if adata.X is None:
        return [Problem("no_x", f"{role}.X is None", f"{role}.X", "store log1p(CP10k) values in X")]
    stats = matrix_stats(adata.X)
    if stats.kind == "non_finite":
        return [
            Problem(
                "non_finite",
                f"{role}.X holds {stats.n_non_finite} NaN or infinite value(s)",
                f"{role}.X",
                "replace them (a model that outputs NaN has failed for those cells) before "
                "evaluating",
            )
        ]
    if stats.kind == "counts":
        return [
            Problem(
                "counts",
                f"{role}.X holds whole numbers up to {stats.max:g}, i.e. counts; metrics compare "
                "log1p(CP10k) expression",
                f"{role}.X",
                f"log-normalise it (celltwin.pp.log_normalize({role})) or read the file with "
                "celltwin.io.read, which does",
            )
        ]
    if stats.kind == "negative" and not pred:
        return [
            Problem(
                "negative",
                f"{role}.X holds {stats.n_negative} negative value(s); real log1p expression is "
                ">= 0",
                f"{role}.X",
                "pass log1p(CP10k) values, not scaled or centred ones",
            )
        ]
    return []


def _obs_problems(adata: AnnData, role: str) -> list[Problem]:
    missing = [k for k in (PERTURBATION, CONTEXT) if k not in adata.obs.columns]
    if not missing:
        return []
    return [
        Problem(
            "not_canonical",
            f"{role} lacks obs column(s) {missing}",
            f"{role}.obs",
            f"make it canonical with celltwin.io.to_canonical({role}) (or read the file with "
            "celltwin.io.read)",
        )
    ]


def _gene_problems(
    truth: AnnData, other: AnnData, role: str
) -> tuple[list[Problem], NDArray[np.intp]]:
    """Columns of ``other`` in the truth's gene order, and problems (missing or duplicate genes)."""
    problems = []
    for adata, name in ((truth, "truth"), (other, role)):
        if not adata.var_names.is_unique:
            dup = adata.var_names[adata.var_names.duplicated()].unique().tolist()
            problems.append(
                Problem(
                    "duplicate_genes",
                    f"{name} has duplicated gene names",
                    f"{name}.var_names: {_preview(dup)}",
                    f"make them unique ({name}.var_names_make_unique()) or read the file with "
                    "celltwin.io.read",
                )
            )
    if problems:
        return problems, np.empty(0, dtype=np.intp)
    positions = other.var_names.get_indexer(truth.var_names)
    missing = truth.var_names[positions < 0].tolist()
    if missing:
        problems.append(
            Problem(
                "missing_genes",
                f"{role} lacks {len(missing)} of the truth's {truth.n_vars} genes",
                f"{role}.var_names: {_preview(missing)}",
                f"predict every gene of the truth, or evaluate on the shared genes: "
                f"truth[:, truth.var_names.isin({role}.var_names)]",
            )
        )
    return problems, positions


def _prediction_kind(pred: AnnData) -> str:
    info = pred.uns.get(UNS_KEY, {}).get("prediction", {}) if hasattr(pred, "uns") else {}
    return str(info.get("kind", "cells")) if isinstance(info, Mapping) else "cells"


def _choose_metrics(
    names: Sequence[str] | None, *, pseudobulk: bool, has_train: bool
) -> tuple[list[Metric], dict[str, str]]:
    chosen = [get_metric(n) for n in (DEFAULT_METRICS if names is None else names)]
    if not chosen:
        raise ValueError("'metrics' is empty; name at least one (see celltwin.eval.list_metrics())")
    keep, skipped = [], {}
    for metric in chosen:
        needs = set(metric.needs)
        if pseudobulk and needs & NEEDS_PRED_CELLS:
            skipped[metric.name] = (
                "needs predicted cells (DE test or cell distribution of the prediction); the "
                "prediction holds pseudobulk profiles"
            )
        elif not metric.kinds <= CELL_KINDS:
            skipped[metric.name] = (
                "needs inputs that cells do not give (the true interactions of combinations); "
                "compute it with celltwin.eval.interaction_pearson"
            )
        elif "reference" in needs and not has_train:
            skipped[metric.name] = (
                "needs the Systema reference (mean of the training perturbation centroids): "
                "pass train="
            )
        else:
            keep.append(metric)
    if not keep:
        raise ValueError(
            f"none of the metrics {[m.name for m in chosen]} can be computed here: "
            + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    return keep, skipped


def _plan(
    truth: AnnData,
    pred: AnnData,
    *,
    train: AnnData | None,
    metrics: Sequence[str] | None,
    allow_missing: bool,
    seed: int,
) -> _Plan:
    for obj, role in ((truth, "truth"), (pred, "pred"), (train, "train")):
        if obj is not None and not isinstance(obj, AnnData):
            raise TypeError(f"{role!r} must be an AnnData (got {type(obj).__name__})")
    kind = _prediction_kind(pred)
    if kind not in ("cells", "pseudobulk"):
        raise ValidationError(
            [
                Problem(
                    "prediction_kind",
                    f"the prediction is of kind {kind!r}; evaluate scores expression "
                    "predictions (cells or pseudobulk)",
                    "pred.uns['celltwin']['prediction']['kind']",
                    "score rank signatures with the rank metrics (celltwin.eval.spearman, "
                    "topk_overlap) instead",
                )
            ]
        )
    pseudobulk = kind == "pseudobulk"
    chosen, skipped = _choose_metrics(metrics, pseudobulk=pseudobulk, has_train=train is not None)

    problems = _obs_problems(truth, "truth") + _obs_problems(pred, "pred")
    if train is not None:
        problems += _obs_problems(train, "train")
    gene_problems, pred_cols = _gene_problems(truth, pred, "pred")
    problems += gene_problems
    train_cols = None
    if train is not None:
        train_gene_problems, train_cols = _gene_problems(truth, train, "train")
        problems += train_gene_problems
    if truth.n_vars == 0:
        problems.append(Problem("no_genes", "truth has no genes", "truth.var", "pass expression"))
    problems += _x_problems(truth, "truth", pred=False) + _x_problems(pred, "pred", pred=True)
    if train is not None:
        problems += _x_problems(train, "train", pred=False)
    if problems:
        raise ValidationError(problems)

    truth_units, truth_context = _unit_labels(truth.obs), truth.obs[CONTEXT].astype(str).to_numpy()
    pred_units, pred_context = _unit_labels(pred.obs), pred.obs[CONTEXT].astype(str).to_numpy()
    match = _match(truth_units, truth_context, pred_units, pred_context)
    problems = match.problems
    if (match.missing or match.extra) and not allow_missing:
        for names, side, other in (
            (match.missing, "prediction", "truth"),
            (match.extra, "truth", "prediction"),
        ):
            if names:
                problems.append(
                    Problem(
                        "missing_perturbations",
                        f"{len(names)} perturbation(s) of the {other} are absent from the {side}",
                        _preview(names),
                        "predict exactly the truth's perturbations, or pass "
                        "allow_missing=True to score the shared ones only",
                    )
                )
    if problems:
        raise ValidationError(problems)
    perturbations = {c: p for c, p in match.perturbations.items() if p.size}
    if not perturbations:
        raise ValidationError(
            [
                Problem(
                    "nothing_shared",
                    "the truth and the prediction share no perturbation",
                    f"truth e.g. {_preview(np.unique(truth_units)[:5])}; prediction e.g. "
                    f"{_preview(np.unique(pred_units)[:5])}",
                    "check that both use the same labels and contexts (canonical names)",
                )
            ]
        )
    notes = []
    if pred.n_vars > truth.n_vars:
        notes.append(
            f"{pred.n_vars - truth.n_vars} gene(s) of the prediction absent from the truth ignored"
        )
    if not match.pred_has_control:
        notes.append(
            "the prediction has no control cells: the truth's control cells serve as the "
            "predicted control (deltas, DE of the prediction)"
        )
    dropped_contexts = sorted(set(match.perturbations) - set(perturbations))
    if dropped_contexts:
        notes.append(f"contexts without shared perturbations dropped: {dropped_contexts}")
    info = pred.uns.get(UNS_KEY, {}).get("prediction", {})
    params = {
        "metrics": [m.name for m in chosen],
        "prediction_kind": kind,
        "model": str(info.get("model", "prediction")) if isinstance(info, Mapping) else "",
        "pred_control": "prediction" if match.pred_has_control else "truth",
        "contexts": sorted(perturbations),
        "n_perturbations": int(sum(p.size for p in perturbations.values())),
        "n_genes": int(truth.n_vars),
        "dropped": (
            {"absent_from_prediction": match.missing, "absent_from_truth": match.extra}
            if (match.missing or match.extra)
            else {}
        ),
        "baselines": {
            name: text
            for name, text in _BASELINES.items()
            if name == "control" or train is not None
        },
        "ceiling_note": "split halves of the truth at half depth (no Spearman-Brown correction)",
        "notes": notes,
        "celltwin_version": _version(),
    }
    train_data = None
    if train is not None:
        train_data = (
            _columns(train.X, train_cols),
            _unit_labels(train.obs),
            train.obs[CONTEXT].astype(str).to_numpy(),
        )
    return _Plan(
        genes=truth.var_names.to_numpy().astype(str),
        truth_X=truth.X,
        truth_units=truth_units,
        truth_context=truth_context,
        pred_X=_columns(pred.X, pred_cols),
        pred_units=pred_units,
        pred_context=pred_context,
        pred_is_pseudobulk=pseudobulk,
        train=train_data,
        contexts=sorted(perturbations),
        perturbations=perturbations,
        metrics=chosen,
        skipped=skipped,
        params=params,
        has_dose=any(_DOSE_JOIN in u for u in np.unique(truth_units).tolist()),
        seed=int(seed),
    )


#: What each baseline predicts (recorded in ``params['baselines']``).
_BASELINES = {
    "control": "the truth's control cells predicted for every perturbation",
    "mean": "cell-eval's VCC baseline: every perturbation predicted as n copies of the "
    "equal-weight mean of the training centroids (control included) of its context, n = its "
    "true cell count; controls = the truth's",
}


@dataclass
class _Match:
    """Perturbations per context both sides have, what one side lacks, and problems found."""

    perturbations: dict[str, NDArray[np.str_]]
    missing: list[str]  # in the truth, absent from the prediction ("label (context)")
    extra: list[str]  # in the prediction, absent from the truth
    problems: list[Problem]
    pred_has_control: bool


def _match(
    truth_units: NDArray[np.str_],
    truth_context: NDArray[np.str_],
    pred_units: NDArray[np.str_],
    pred_context: NDArray[np.str_],
) -> _Match:
    pred_contexts = set(pred_context.tolist())
    pred_has_control = bool((pred_units == CONTROL).any())
    contexts = sorted(set(truth_context.tolist()))
    out = _Match({}, [], [], [], pred_has_control)
    for context in contexts:
        t_units = set(truth_units[truth_context == context].tolist())
        if CONTROL not in t_units:
            out.problems.append(
                Problem(
                    "no_controls",
                    f"the truth has no control cells in context {context!r}; DE tests and "
                    "deltas are computed against them",
                    f"truth.obs[{PERTURBATION!r}] == {CONTROL!r} in context {context!r}",
                    "include that context's control cells in the truth",
                )
            )
        t_perts = t_units - {CONTROL}
        if not t_perts:
            out.problems.append(
                Problem(
                    "no_perturbations",
                    f"context {context!r} of the truth holds control cells only: nothing to score",
                    f"truth.obs[{CONTEXT!r}] == {context!r}",
                    "drop that context from the truth, or add its perturbed cells",
                )
            )
            continue
        p_units = set(pred_units[pred_context == context].tolist())
        if pred_has_control and context in pred_contexts and CONTROL not in p_units:
            out.problems.append(
                Problem(
                    "no_pred_controls",
                    f"the prediction has control cells, but none in context {context!r}",
                    f"pred.obs[{PERTURBATION!r}] == {CONTROL!r} in context {context!r}",
                    "add that context's control cells to the prediction (real controls, as the "
                    "VCC asks), or remove every control cell so the truth's are used throughout",
                )
            )
        p_perts = p_units - {CONTROL}
        out.missing += [f"{_show(u)} ({context})" for u in sorted(t_perts - p_perts)]
        out.extra += [f"{_show(u)} ({context})" for u in sorted(p_perts - t_perts)]
        out.perturbations[context] = np.array(sorted(t_perts & p_perts), dtype=str)
    out.extra += [
        f"{_show(u)} ({c})"
        for c in sorted(pred_contexts - set(contexts))
        for u in sorted(set(pred_units[pred_context == c].tolist()) - {CONTROL})
    ]
    return out


def _version() -> str:
    try:
        return version("celltwin")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def _columns(X: Any, cols: NDArray[np.intp]) -> Any:
    """Columns ``cols`` of X; X itself when they are all columns in order (no copy)."""
    if cols.size == X.shape[1] and np.array_equal(cols, np.arange(X.shape[1])):
        return X
    return X[:, cols] if sp.issparse(X) else np.asarray(X)[:, cols]


def _rows(X: Any, rows: NDArray[np.intp]) -> Any:
    """Rows of X; X itself when ``rows`` is every row in order (no copy of a large matrix)."""
    if rows.size == X.shape[0] and np.array_equal(rows, np.arange(X.shape[0])):
        return X
    return X[rows] if sp.issparse(X) else np.asarray(X)[rows]


def _vstack(a: Any, b: Any) -> Any:
    if sp.issparse(a) and sp.issparse(b):
        return sp.vstack([a, b], format="csr")
    dense = [x.toarray() if sp.issparse(x) else np.asarray(x) for x in (a, b)]
    return np.vstack(dense)


# --- per-context data and the truth's shared inputs -----------------------------------------------


@dataclass
class _ContextData:
    """Rows of one context: the truth (evaluated perturbations + control) and the prediction."""

    context: str
    perts: NDArray[np.str_]
    true_X: Any
    true_labels: NDArray[np.str_]
    pred_X: Any  # prediction rows (cells, or profiles), evaluated perturbations (+ its control)
    pred_labels: NDArray[np.str_]

    @classmethod
    def build(cls, plan: _Plan, context: str) -> _ContextData:
        perts = plan.perturbations[context]
        wanted = np.append(perts, CONTROL)
        t_rows = np.flatnonzero((plan.truth_context == context) & np.isin(plan.truth_units, wanted))
        p_rows = np.flatnonzero((plan.pred_context == context) & np.isin(plan.pred_units, wanted))
        return cls(
            context=context,
            perts=perts,
            true_X=_rows(plan.truth_X, t_rows),
            true_labels=plan.truth_units[t_rows],
            pred_X=_rows(plan.pred_X, p_rows),
            pred_labels=plan.pred_units[p_rows],
        )


@dataclass
class _Shared:
    """What the truth contributes to every side's :class:`MetricInputs`, plus helpers."""

    fields: dict[str, Any]
    n_cells: NDArray[np.int64]  # true cells per perturbation
    control_rows: NDArray[np.intp]  # rows of ctx.true_X holding control cells
    basis: Any  # PCA basis for the cells metrics, or None
    true_de: DEResult | None


def _needs(metrics: Sequence[Metric]) -> set[str]:
    return set().union(*(m.needs for m in metrics))


def _group_means(X: Any, labels: NDArray[np.str_], groups: NDArray[np.str_]) -> NDArray[np.float64]:
    """Mean row of each label in ``groups`` (in that order), float64."""
    position = {g: i for i, g in enumerate(groups.tolist())}
    rows = np.array([position.get(label, -1) for label in labels.tolist()], dtype=np.int64)
    keep = np.flatnonzero(rows >= 0)
    if sp.issparse(X):
        # Float64 sums straight from the stored values (compiled, one pass, no float64 copy).
        sums = _code_sums(X, rows, groups.size)
    else:
        indicator = sp.csr_matrix(
            (np.ones(keep.size), (rows[keep], keep)), shape=(groups.size, labels.size)
        )
        sums = np.asarray(indicator @ np.asarray(X, dtype=np.float64))
    counts = np.bincount(rows[keep], minlength=groups.size).astype(np.float64)
    # A group without rows (no predicted controls) is NaN; callers use the truth's instead.
    with np.errstate(divide="ignore", invalid="ignore"):
        return sums / counts[:, None]


def _sample(idx: NDArray[np.intp], i: int, *, max_cells: int | None, seed: int) -> NDArray:
    """At most ``max_cells`` of ``idx`` by the stream ``(seed, i)``, as build_inputs draws them."""
    if max_cells is not None and idx.size > max_cells:
        rng = np.random.default_rng((seed, i))
        idx = np.sort(rng.choice(idx, max_cells, replace=False))
    return idx


def _reference(plan: _Plan, context: str) -> NDArray[np.float64]:
    """Systema reference: mean of the training perturbation centroids of the context (else all)."""
    assert plan.train is not None
    X, units, contexts = plan.train
    rows = np.flatnonzero((contexts == context) & (units != CONTROL))
    if rows.size == 0:
        rows = np.flatnonzero(units != CONTROL)
    if rows.size == 0:
        raise ValueError(
            "train has no perturbed cells, so there is no Systema reference; pass training "
            "data holding perturbed cells"
        )
    return mean_of_centroids(_rows(X, rows), units[rows])


def _truth_inputs(plan: _Plan, ctx: _ContextData) -> _Shared:
    seed = plan.seed
    needs = _needs(plan.metrics)
    perts = ctx.perts
    means = _group_means(ctx.true_X, ctx.true_labels, np.append(perts, CONTROL))
    control_rows = np.flatnonzero(ctx.true_labels == CONTROL)
    n_cells = np.array([np.count_nonzero(ctx.true_labels == p) for p in perts], dtype=np.int64)
    fields: dict[str, Any] = {
        "perturbations": perts,
        "genes": plan.genes,
        "true_means": means[:-1],
        "true_control": means[-1],
        "target_mask": target_gene_mask([_split_unit(p)[0] for p in perts], plan.genes),
    }
    if "reference" in needs:
        fields["reference"] = _reference(plan, ctx.context)
    true_de = None
    if needs & _TRUE_DE:
        true_de = rank_sum_test(ctx.true_X, ctx.true_labels, control=CONTROL).select(perts)
        fields["true_de"] = true_de
    if "top_de" in needs:
        welch = welch_t_test(ctx.true_X, ctx.true_labels, control=CONTROL).select(perts)
        fields["top_de"] = top_de_genes(welch.statistic, k=N_TOP_DE)
    basis = None
    if needs & _CELLS:
        # As build_inputs: PCA on the sampled true cells (perturbed and control), true data only,
        # so every side is compared in the same space.
        groups = [*perts.tolist(), CONTROL]
        sets = [
            _sample(np.flatnonzero(ctx.true_labels == p), i, max_cells=_MAX_CELLS, seed=seed)
            for i, p in enumerate(groups)
        ]
        stacked = _rows(ctx.true_X, np.concatenate(sets))
        basis = fit_pca(stacked, n_components=_N_PCS, seed=seed)
        fields["true_cells"] = tuple(basis.transform(_rows(ctx.true_X, s)) for s in sets[:-1])
    return _Shared(
        fields=fields, n_cells=n_cells, control_rows=control_rows, basis=basis, true_de=true_de
    )


#: PCA components and cells per perturbation for the distributional metrics (as build_inputs).
_N_PCS = 50
_MAX_CELLS = 500


# --- the three sides: model, mean baseline, control baseline --------------------------------------


def _model_fields(plan: _Plan, ctx: _ContextData, shared: _Shared) -> dict[str, Any]:
    needs = _needs(plan.metrics)
    perts = ctx.perts
    has_control = bool((ctx.pred_labels == CONTROL).any())
    means = _group_means(ctx.pred_X, ctx.pred_labels, np.append(perts, CONTROL))
    fields: dict[str, Any] = {
        "pred_means": means[:-1],
        "pred_control": means[-1] if has_control else shared.fields["true_control"],
    }
    if plan.pred_is_pseudobulk:
        return fields
    pert_rows = np.flatnonzero(ctx.pred_labels != CONTROL)
    if needs & _PRED_DE:
        if has_control:
            X, labels = ctx.pred_X, ctx.pred_labels
        else:
            # No predicted controls: test against the truth's, as the VCC's files include them.
            X = _vstack(_rows(ctx.pred_X, pert_rows), _rows(ctx.true_X, shared.control_rows))
            labels = np.append(ctx.pred_labels[pert_rows], ctx.true_labels[shared.control_rows])
        fields["pred_de"] = rank_sum_test(X, labels, control=CONTROL).select(perts)
    if needs & _CELLS:
        fields["pred_cells"] = tuple(
            shared.basis.transform(
                _rows(
                    ctx.pred_X,
                    _sample(
                        np.flatnonzero(ctx.pred_labels == p),
                        i,
                        max_cells=_MAX_CELLS,
                        seed=plan.seed,
                    ),
                )
            )
            for i, p in enumerate(perts.tolist())
        )
    return fields


def _mean_baseline_fields(plan: _Plan, ctx: _ContextData, shared: _Shared) -> dict[str, Any]:
    """cell-eval's baseline: n_p copies of the mean of the training centroids, true controls."""
    assert plan.train is not None
    X, units, contexts = plan.train
    rows = np.flatnonzero(contexts == ctx.context)
    if rows.size == 0:  # unseen context: the training data of every context
        rows = np.arange(X.shape[0])
    profile = mean_of_centroids(_rows(X, rows), units[rows])
    n_perts = ctx.perts.size
    fields: dict[str, Any] = {
        "pred_means": np.repeat(profile[None, :], n_perts, axis=0),
        "pred_control": shared.fields["true_control"],
    }
    needs = _needs(plan.metrics)
    if needs & _PRED_DE:
        control = _rows(ctx.true_X, shared.control_rows)
        fields["pred_de"] = _constant_group_de(
            np.repeat(profile[None, :], n_perts, axis=0),
            control,
            n_cells=shared.n_cells,
            groups=ctx.perts,
        )
    if needs & _CELLS:
        point = shared.basis.transform(profile[None, :])
        fields["pred_cells"] = tuple(
            np.repeat(point, min(int(n), _MAX_CELLS), axis=0) for n in shared.n_cells
        )
    return fields


def _control_baseline_fields(plan: _Plan, ctx: _ContextData, shared: _Shared) -> dict[str, Any]:
    """The truth's control cells predicted for every perturbation (and as the control)."""
    n_perts = ctx.perts.size
    control_mean = shared.fields["true_control"]
    fields: dict[str, Any] = {
        "pred_means": np.repeat(control_mean[None, :], n_perts, axis=0),
        "pred_control": control_mean,
    }
    needs = _needs(plan.metrics)
    if needs & _PRED_DE:
        # Each predicted group *is* the control sample, so the rank-sum test compares identical
        # samples: U = n^2 / 2 exactly, p = 1 (the continuity correction pushes z below 0), and
        # the log fold change is 0. Written out instead of testing 2P copies of the controls.
        n_c = shared.control_rows.size
        shape = (n_perts, plan.genes.size)
        fields["pred_de"] = DEResult(
            groups=ctx.perts,
            n_cells=np.full(n_perts, n_c, dtype=np.int64),
            n_control=int(n_c),
            log2_fold_change=np.zeros(shape),
            pvalue=np.ones(shape),
            fdr=np.ones(shape),
            statistic=np.full(shape, n_c * n_c / 2.0),
            method="wilcoxon",
        )
    if needs & _CELLS:
        idx = _sample(shared.control_rows, 0, max_cells=_MAX_CELLS, seed=plan.seed)
        cells = shared.basis.transform(_rows(ctx.true_X, idx))
        fields["pred_cells"] = tuple(cells for _ in range(n_perts))
    return fields


def _constant_group_de(
    profiles: NDArray[np.float64],
    control: Any,
    *,
    n_cells: NDArray[np.int64],
    groups: NDArray[np.str_],
) -> DEResult:
    """Rank-sum test of groups of identical cells (one profile each) against control cells.

    Exactly :func:`~celltwin.eval.rank_sum_test` on ``n_cells[i]`` copies of ``profiles[i]``
    stacked with ``control``, without building them: per gene, a group value ``v`` outranks the
    control values below it and ties with those equal, so ``U = n (below + equal / 2)``, and its
    ``n`` copies join the tie block of the control values equal to ``v``.

    Parameters
    ----------
    profiles
        ``(P, G)`` one profile per group.
    control
        ``(n_c, G)`` control cells, dense or sparse.
    n_cells
        ``(P,)`` copies of each profile.
    groups
        ``(P,)`` group labels (kept in this order).
    """
    profiles = np.asarray(profiles, dtype=np.float64)
    n_groups, n_genes = profiles.shape
    n_c = control.shape[0]
    n = np.asarray(n_cells, dtype=np.float64)
    u_stat = np.empty((n_groups, n_genes))
    tie = np.empty((n_groups, n_genes))
    control_sum = np.zeros(n_genes)
    csc = sp.csc_matrix(control) if sp.issparse(control) else None
    for start in range(0, n_genes, _GENE_BLOCK):
        stop = min(start + _GENE_BLOCK, n_genes)
        block = (
            csc[:, start:stop].toarray() if csc is not None else np.asarray(control)[:, start:stop]
        )
        # Compared in float64, as when the copies are stacked with float32 controls (cell-eval).
        ordered = np.sort(block, axis=0).astype(np.float64)
        control_sum[start:stop] = ordered.sum(axis=0)
        for j in range(stop - start):
            column = ordered[:, j]
            values = profiles[:, start + j]
            below = np.searchsorted(column, values, side="left")
            equal = np.searchsorted(column, values, side="right") - below
            u_stat[:, start + j] = n * (below + 0.5 * equal)
            # Tie term of the control alone, then each group's copies merged into their block.
            _, run = np.unique(column, return_counts=True)
            run = run.astype(np.float64)
            base = float(np.sum(run**3 - run))
            e = equal.astype(np.float64)
            merged = e + n
            tie[:, start + j] = base - (e**3 - e) + (merged**3 - merged)
    pvalue = _mwu_pvalue(u_stat, n[:, None], float(n_c), tie)
    control_mean = control_sum / n_c
    return DEResult(
        groups=np.asarray(groups, dtype=str),
        n_cells=np.asarray(n_cells, dtype=np.int64),
        n_control=int(n_c),
        log2_fold_change=log2_fold_change(profiles, control_mean[None, :]),
        pvalue=pvalue,
        fdr=benjamini_hochberg(pvalue, axis=1),
        statistic=u_stat,
        method="wilcoxon",
    )


# --- scoring ---------------------------------------------------------------------------------------


def _keys_frame(ctx: _ContextData, has_dose: bool) -> pd.DataFrame:
    split = [_split_unit(p) for p in ctx.perts.tolist()]
    frame = pd.DataFrame(
        {
            PERTURBATION: [s[0] for s in split],
            CONTEXT: ctx.context,
        }
    )
    if has_dose:
        frame[DOSE] = [s[1] for s in split]
    return frame


def _score(
    metrics: Sequence[Metric], inputs: MetricInputs, ctx: _ContextData, *, has_dose: bool
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    values = {metric.name: metric.compute(inputs) for metric in metrics}
    return _assemble(metrics, values, ctx, has_dose=has_dose)


def _assemble(
    metrics: Sequence[Metric],
    values: Mapping[str, Any],
    ctx: _ContextData,
    *,
    has_dose: bool,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Long per-perturbation rows (perturbation-level metrics) and context-level aggregates."""
    keys = _keys_frame(ctx, has_dose)
    frames, aggregates = [], []
    for metric in metrics:
        value = values[metric.name]
        if metric.level == "perturbation":
            frames.append(keys.assign(metric=metric.name, value=value))
        else:
            aggregates.append({CONTEXT: ctx.context, "metric": metric.name, "value": float(value)})
    frame = (
        pd.concat(frames, ignore_index=True)
        if frames
        else keys.iloc[:0].assign(metric=pd.Series(dtype=str), value=pd.Series(dtype=float))
    )
    return frame, aggregates


def _delta_table(
    ctx: _ContextData, shared: _Shared, inputs: MetricInputs, *, has_dose: bool
) -> pd.DataFrame:
    """Predicted and true deltas on each perturbation's top DE genes (for the report)."""
    true_delta = inputs.get("true_delta")
    pred_delta = inputs.get("pred_delta")
    k = min(N_REPORT_GENES, true_delta.shape[1])
    if shared.true_de is not None:
        # Most significant first; |delta| breaks ties (many p-values underflow to 0).
        order = _most_significant(shared.true_de.pvalue, true_delta, k)
    else:
        order = np.argsort(-np.abs(true_delta), axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(ctx.perts.size), k)
    cols = order.ravel()
    split = [_split_unit(p) for p in ctx.perts.tolist()]
    frame = pd.DataFrame(
        {
            PERTURBATION: [split[i][0] for i in rows],
            CONTEXT: ctx.context,
            "gene": inputs.genes[cols],
            "true_delta": true_delta[rows, cols],
            "pred_delta": pred_delta[rows, cols],
        }
    )
    if has_dose:
        frame.insert(2, DOSE, [split[i][1] for i in rows])
    return frame


def _most_significant(
    pvalue: NDArray[np.float64], delta: NDArray[np.float64], k: int
) -> NDArray[np.int64]:
    """Per row, the ``k`` columns of smallest p-value, larger ``|delta|`` first among equal ones.

    The same order as a full ``np.lexsort((-|delta|, pvalue))`` per row (stable, so remaining ties
    keep column order), sorting only the columns whose p-value is within the k smallest.
    """
    kth = np.partition(pvalue, k - 1, axis=1)[:, k - 1]
    order = np.empty((pvalue.shape[0], k), dtype=np.int64)
    for i in range(pvalue.shape[0]):
        cand = np.flatnonzero(pvalue[i] <= kth[i])
        order[i] = cand[np.lexsort((-np.abs(delta[i, cand]), pvalue[i, cand]))[:k]]
    return order


def _ceiling(
    plan: _Plan, ctx: _ContextData, shared: _Shared, *, n_repeats: int, seed: int
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    result = split_half_ceiling(
        ctx.true_X,
        ctx.true_labels,
        genes=plan.genes,
        metrics=plan.metrics,
        n_repeats=n_repeats,
        seed=seed,
        control=CONTROL,
        reference=shared.fields.get("reference"),
        n_pcs=_N_PCS,
        max_cells=_MAX_CELLS,
    )
    mean = result.mean()
    position = {p: i for i, p in enumerate(result.perturbations.tolist())}
    cols = np.array([position.get(p, -1) for p in ctx.perts.tolist()])
    # The ceiling's values in the model's perturbation order; NaN for any it has not scored.
    values = {
        m.name: np.where(cols >= 0, mean[m.name][np.maximum(cols, 0)], np.nan)
        if m.level == "perturbation"
        else mean[m.name]
        for m in plan.metrics
    }
    return _assemble(plan.metrics, values, ctx, has_dose=plan.has_dose)


def _scores(
    summary: Mapping[str, Mapping[str, float]],
    baselines: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> dict[str, float]:
    """The VCC score against the mean baseline, when mae, des and pds were computed."""
    if "mean" not in baselines or not all(m in summary for m in VCC_METRICS):
        return {}
    base = baselines["mean"]
    return {
        "vcc_score": vcc_score(
            mae=summary["mae"]["mean"],
            des=summary["des"]["mean"],
            pds=summary["pds"]["mean"],
            baseline_mae=base["mae"]["mean"],
            baseline_des=base["des"]["mean"],
            baseline_pds=base["pds"]["mean"],
        )
    }
