"""Fit and predict as one call each: files or AnnData in, a saved model or predictions out.

These are the convenience layer under ``celltwin fit`` and ``celltwin predict``: thin wrappers
over :func:`get_model`, :meth:`Model.fit`, :func:`load` and :meth:`Model.predict` that read the
data, pass the training settings (seed, time budget, checkpoints, progress bars) to the models
that take them, refuse the ones a model does not take, and save or write what they return.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import SPLIT, TEST, TRAIN, UNS_KEY
from .._output import check_output
from ._cell import CellModel
from ._conditions import as_conditions, conditions_of
from ._libraries import add_drugs, perturbation_inputs
from ._model import Model
from ._params import fit_arguments, init_param_names
from ._refusals import predict_answerable, refusals_path
from ._registry import get_spec, load

logger = logging.getLogger("celltwin")

#: Training settings given as their own arguments of :func:`fit`, never inside ``params``.
_SETTINGS: Final = ("seed", "time_budget", "progress")


def fit(
    adata: AnnData | str | os.PathLike[str],
    *,
    model: str = "transition",
    split_key: str | None = SPLIT,
    params: Mapping[str, Any] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    time_budget: float | None = None,
    seed: int = 0,
    progress: bool = True,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    gene_prior: str | None = None,
    drugs: str | os.PathLike[str] | None = None,
) -> CellModel:
    """Create a registered model, fit it on the training cells and optionally save it.

    Parameters
    ----------
    adata
        Canonical cells x genes, or the path of an ``.h5ad`` file (read with
        :func:`celltwin.io.read`, any convention it knows).
    model
        Registry name (see :func:`available`); ``"transition"`` needs no tuning.
    split_key
        obs column of the split (e.g. written by ``celltwin split``): only cells labelled
        ``"train"`` are read, so validation and test cells never reach the model. Without that
        column (and with the default ``"split"``) or with ``None``, every cell is training data.
    params
        Constructor parameters of the model (e.g. ``{"n_members": 3}``). The training settings
        below are arguments of their own and may not be repeated here.
    checkpoint_dir
        Folder where models that train in steps (``transition``) write each finished part;
        fitting again with the same data, parameters and folder resumes from it.
    time_budget
        Seconds of training for models that take a budget (``transition``); ``None``: no limit.
    seed
        Seed of everything random in the fit (same seed and data: identical model). Models
        without randomness ignore it.
    progress
        Show progress bars (with the loss) for models that train in steps.
    out
        When given, the fitted model is saved to this folder (:meth:`Model.save`); in a
        multi-process run (``torchrun``, see ``transition``'s ``distributed``) only by the
        process of ``RANK`` 0.
    overwrite
        Replace an existing model (any non-empty ``out`` folder); otherwise such an ``out`` is
        refused with :class:`FileExistsError` before fitting.
    gene_prior
        Features of genetic perturbations: a :func:`celltwin.priors.gene_embedding` source
        such as ``"go+string"``. ``transition`` takes it as its parameter (also ``"data"``,
        ``"none"``, ``"auto"``); models that take ``perturbation_features`` instead
        (``linear``, ``nearest_perturbation``) get the embedding of the whole prior. ``None``
        keeps the model's default (``transition``: ``"auto"``, GO+STRING when the prior files
        are here and the targets are real genes).
    drugs
        A drug library, CSV of ``name,SMILES`` (:func:`celltwin.priors.read_smiles`): its
        Morgan fingerprints become the ``perturbation_features`` of models that take them, so
        drugs never measured can be predicted from structure (with their log-dose).

    Returns
    -------
    Model
        The fitted model.

    Examples
    --------
    >>> model = fit("split.h5ad", params={"n_members": 3}, out="model/")  # doctest: +SKIP
    """
    if out is not None:
        check_output(out, overwrite=overwrite, kind="folder", what="model folder")
    given, features = perturbation_inputs(model, params, gene_prior=gene_prior, drugs=drugs)
    estimator = _create(
        model,
        given,
        checkpoint_dir=checkpoint_dir,
        time_budget=time_budget,
        seed=seed,
        progress=progress,
    )
    data = _as_adata(adata)
    _log_training_cells(data, split_key, model)
    fit_kwargs: dict[str, Any] = {"split_key": split_key}
    if checkpoint_dir is not None:
        fit_kwargs["checkpoint_dir"] = checkpoint_dir
    if features is not None:
        fit_kwargs["perturbation_features"] = features
    start = time.monotonic()
    estimator.fit(data, **fit_kwargs)
    logger.info(
        "fitted %s on %d training cells in %.1f s%s",
        model,
        estimator.n_train_cells_,
        time.monotonic() - start,
        _training_note(estimator),
    )
    if out is not None and os.environ.get("RANK", "0") == "0":  # torchrun: rank 0 writes
        estimator.save(out, overwrite=overwrite)
    return estimator


def predict(
    model: CellModel | str | os.PathLike[str],
    adata: AnnData | str | os.PathLike[str],
    *,
    conditions: pd.DataFrame | Sequence[Sequence[str]] | Sequence[str] | None = None,
    split_key: str = SPLIT,
    split: str = TEST,
    n_cells: int | None = None,
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    skip_unpredictable: bool = False,
    drugs: str | os.PathLike[str] | None = None,
) -> AnnData:
    """Predict conditions with a fitted (or saved) model, by default a split's held-out ones.

    Parameters
    ----------
    model
        A fitted model, or the folder it was saved to (:func:`load`).
    adata
        Data holding the control cells of every context to predict (canonical AnnData or an
        ``.h5ad`` path); other cells are only used to list the held-out conditions.
    conditions
        What to predict: as in :meth:`Model.predict` (a DataFrame or ``(context, perturbation[,
        dose])`` tuples), or strings ``"context:perturbation"`` / ``"context:perturbation:dose"``.
        ``None``: the conditions of the cells labelled ``split`` in ``obs[split_key]``, each
        with as many cells as the data has.
    split_key, split
        obs column of the split and the label of the cells whose conditions are predicted when
        ``conditions`` is ``None``.
    n_cells
        Cells to generate per condition (see :meth:`Model.predict`).
    seed
        Seed of the draw of control cells (and of the model's noise).
    out
        When given, the predictions are written to this ``.h5ad`` file.
    overwrite
        Replace an existing ``out`` file; otherwise it is refused with
        :class:`FileExistsError` before predicting.
    skip_unpredictable
        By default one condition the model cannot predict fails the call
        (:class:`UnpredictableConditionsError`, naming every refused condition and why:
        "not a known gene symbol", "did you mean STAT1?", "no prior features for X", "measured,
        but held out in the 'val' split"). ``True`` predicts the others and lists the refused
        ones in ``uns['celltwin']['refusals']`` (columns ``condition``, ``context``,
        ``perturbation``, ``dose``, ``reason``, ``suggestion``), also written beside ``out``
        as ``<stem>.refusals.csv`` when there are any.
    drugs
        A drug library, CSV of ``name,SMILES``: fingerprints of drugs the model was not fitted
        with, so they can be predicted from structure (models fitted with ``drugs=``).

    Returns
    -------
    AnnData
        The predictions (see :meth:`Model.predict`); obs ``prediction_source`` says where each
        condition's answer came from, for models that record it.

    Examples
    --------
    >>> pred = predict("model/", "split.h5ad", out="pred.h5ad")  # doctest: +SKIP
    """
    if out is not None and Path(out).suffix != ".h5ad":
        raise ValueError(f"out must be an .h5ad file (got {str(out)!r}). Fix: e.g. pred.h5ad.")
    if out is not None:
        check_output(out, overwrite=overwrite, kind="file", what="prediction file")
    fitted = _cell_model(model if isinstance(model, CellModel) else load(model))
    if drugs is not None:
        add_drugs(fitted, drugs)
    data = _as_adata(adata)
    if conditions is None:
        table = _held_out_conditions(data, split_key=split_key, split=split)
    elif not isinstance(conditions, pd.DataFrame) and _all_strings(conditions):
        table = pd.DataFrame(
            [_parse_condition(str(text)) for text in conditions],
            columns=["context", "perturbation", "dose"],
        )
    else:
        table = conditions
    pred = predict_answerable(
        fitted, data, as_conditions(table), n_cells=n_cells, seed=seed,
        skip_unpredictable=skip_unpredictable, split_key=split_key,
    )  # fmt: skip
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        pred.write_h5ad(out)
        refusals = pred.uns[UNS_KEY]["refusals"]
        if len(refusals):
            refusals.to_csv(refusals_path(out), index=False)
    return pred


# --- helpers --------------------------------------------------------------------------------


def _create(
    model: str,
    params: Mapping[str, Any] | None,
    *,
    checkpoint_dir: str | os.PathLike[str] | None,
    time_budget: float | None,
    seed: int,
    progress: bool,
) -> CellModel:
    """The registered cell model ``model`` with ``params`` and the training settings it takes;
    settings it does not take are refused, naming the fix."""
    spec = get_spec(model)
    if not issubclass(spec.cls, CellModel):
        raise ValueError(
            f"fit trains models of cells; {model!r} predicts {spec.predicts}. Fix: "
            f"celltwin.models.get_model({model!r}).fit(scores) with the training signatures."
        )
    given = dict(params or {})
    accepted = set(init_param_names(spec.cls))
    repeated = [k for k in _SETTINGS if k in given]
    if repeated:
        raise ValueError(
            f"params holds {repeated[0]!r}, a training setting with an argument of its own. "
            f"Fix: pass {repeated[0]}=... to fit (--{repeated[0].replace('_', '-')} on the "
            "command line) instead."
        )
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise ValueError(
            f"model {model!r} has no parameter {unknown[0]!r}. Fix: use one of "
            f"{sorted(accepted - set(_SETTINGS))}."
        )
    if time_budget is not None and "time_budget" not in accepted:
        raise ValueError(
            f"model {model!r} takes no time budget (its fit is not trained in steps). "
            "Fix: drop time_budget (--time-budget), or use model 'transition'."
        )
    if time_budget is not None and not float(time_budget) > 0:
        raise ValueError(
            f"time_budget must be > 0 seconds or None (got {time_budget!r}). Fix: e.g. 600."
        )
    takes_checkpoints = "checkpoint_dir" in fit_arguments(spec.cls)
    if checkpoint_dir is not None and not takes_checkpoints:
        raise ValueError(
            f"model {model!r} writes no checkpoints (its fit is not trained in steps). "
            "Fix: drop checkpoint_dir (--checkpoint-dir), or use model 'transition'."
        )
    settings = {"seed": int(seed), "time_budget": time_budget, "progress": bool(progress)}
    return spec.cls(**given, **{k: v for k, v in settings.items() if k in accepted})


def _cell_model(model: Model) -> CellModel:
    if not isinstance(model, CellModel):
        raise TypeError(
            f"predict runs models of cells; {model.name!r} predicts {model.predicts}. Fix: "
            "model.predict(conditions=...) for a signature model."
        )
    return model


def _as_adata(adata: AnnData | str | os.PathLike[str]) -> AnnData:
    if isinstance(adata, AnnData):
        return adata
    if isinstance(adata, str | os.PathLike):
        from ..io import read

        return read(Path(adata))
    raise TypeError(
        f"'adata' must be an AnnData or the path of an .h5ad file (got {type(adata).__name__})."
    )


def _log_training_cells(adata: AnnData, split_key: str | None, model: str) -> None:
    if split_key is not None and split_key != SPLIT and split_key not in adata.obs.columns:
        return  # the model refuses a missing split column it was pointed to, naming the fix
    if split_key is None or split_key not in adata.obs.columns:
        logger.info(
            "%s: no split column obs[%r]: training on all %d cells", model, split_key, adata.n_obs
        )
        return
    labels = adata.obs[split_key].astype(str).to_numpy()
    n_train = int(np.sum(labels == TRAIN))
    logger.info(
        "%s: training on the %d cells with obs[%r] == %r; %d held-out cells are not read",
        model,
        n_train,
        split_key,
        TRAIN,
        adata.n_obs - n_train,
    )


def _training_note(model: CellModel) -> str:
    """How each trained part stopped (models that record it, e.g. ``transition``)."""
    records = getattr(model, "training_", None)
    if not isinstance(records, list) or not records:
        return ""
    stopped = Counter(str(r.get("stopped", "")) for r in records if isinstance(r, dict))
    return " (stopped: " + ", ".join(f"{k} x{n}" for k, n in sorted(stopped.items())) + ")"


def _held_out_conditions(adata: AnnData, *, split_key: str, split: str) -> pd.DataFrame:
    if split_key not in adata.obs.columns:
        raise KeyError(
            f"obs has no split column {split_key!r} to take the held-out conditions from "
            f"(obs columns: {list(adata.obs.columns)}). Fix: split the data first (celltwin "
            "split), pass split_key= (--split-key), or list the conditions (--conditions "
            "context:perturbation,...)."
        )
    labels = adata.obs[split_key].astype(str).to_numpy()
    mask = labels == split
    table = conditions_of(adata[mask]) if mask.any() else None
    if table is None or len(table) == 0:
        raise ValueError(
            f"no perturbed cells with obs[{split_key!r}] == {split!r} (labels present: "
            f"{sorted(set(labels))}). Fix: pass the label of the held-out cells (--split) or "
            "list the conditions (--conditions context:perturbation,...)."
        )
    return table


def _all_strings(conditions: object) -> bool:
    return (
        isinstance(conditions, Sequence)
        and not isinstance(conditions, str)
        and len(conditions) > 0
        and all(isinstance(c, str) for c in conditions)
    )


def _parse_condition(text: str) -> tuple[str, str, str]:
    parts = [p.strip() for p in text.split(":")]
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise ValueError(
            f"a condition is written context:perturbation or context:perturbation:dose "
            f"(got {text!r}). Fix: e.g. K562:KLF1 or A:drugX:0.1."
        )
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""
