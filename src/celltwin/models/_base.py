"""The estimator contract every celltwin model follows, and the machinery the models share.

A model is built in three steps, after scikit-learn:

``Model(**params)``
    Only stores the parameters (no validation, no data).
``model.fit(adata, *, split_key="split", ...)``
    Validates the data, learns from the *training* cells only (``obs[split_key] == "train"``),
    sets learned attributes whose names end in ``_`` and returns the model.
``model.predict(adata, *, conditions, n_cells=None, seed=0)``
    Generates the requested conditions from the control cells in ``adata`` and returns a
    canonical AnnData (see :meth:`Model.predict`).

Every model works in ``X`` space (``log1p`` of counts per 10k) on the training gene list.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._keys import (
    COMBO_SEP,
    CONTEXT,
    CONTROL,
    DOSE,
    PERTURBATION,
    PERTURBATION_TYPE,
    REQUIRED_OBS,
    SPLIT,
    TRAIN,
    UNS_KEY,
    join_combination,
    split_combination,
)

PredictionKind = Literal["cells", "pseudobulk"]

#: Optional column of a conditions table: how many cells to generate for that condition.
N_CELLS: Final = "n_cells"
#: ``log1p(1e4)`` is about 9.2; values far above that mean ``X`` is not log-normalised.
_MAX_LOG_VALUE: Final = 50.0
_GENETIC_TYPES: Final = frozenset({"crispr_ko", "crispri", "crispra"})

ConditionKey = tuple[str, str, str]  # (context, perturbation, dose)


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before :meth:`Model.fit` (or :func:`load`)."""


class UnseenConditionError(ValueError):
    """Raised when a model is asked for a condition it cannot predict (never a silent guess)."""


class ModelFormatError(ValueError):
    """Raised when a saved model directory is damaged, truncated, tampered with or too new."""


# --- conditions -------------------------------------------------------------------------------


def conditions_of(adata: AnnData, *, split: str | None = None) -> pd.DataFrame:
    """Return the distinct perturbed conditions of ``adata``, ready for :meth:`Model.predict`.

    Parameters
    ----------
    adata
        Canonical cells x genes.
    split
        When given, only cells with ``obs['split'] == split`` are counted (e.g. ``"test"``).

    Returns
    -------
    pandas.DataFrame
        One row per (context, perturbation, dose) of the non-control cells, sorted, with columns
        ``context``, ``perturbation``, ``dose`` (``""`` when obs has none), ``perturbation_type``
        and ``n_cells`` (how many cells the condition has, so predictions can match it).

    Examples
    --------
    >>> import anndata as ad, numpy as np, pandas as pd
    >>> obs = pd.DataFrame({"context": ["K562"] * 3, "perturbation": ["control", "KLF1", "KLF1"],
    ...                     "perturbation_type": ["control", "crispri", "crispri"]},
    ...                    index=["a", "b", "c"])
    >>> conditions_of(ad.AnnData(np.zeros((3, 2)), obs=obs))[["perturbation", "n_cells"]].values.tolist()
    [['KLF1', 2]]
    """
    _require_obs(adata.obs, (PERTURBATION, CONTEXT), role="conditions_of")
    obs = adata.obs
    if split is not None:
        if SPLIT not in obs.columns:
            raise KeyError(
                f"obs has no column {SPLIT!r} to select split={split!r}. "
                "Fix: assign a split first (celltwin.split) or pass split=None."
            )
        obs = obs.loc[obs[SPLIT].astype(str).to_numpy() == split]
    clean = _clean_obs(obs)
    clean = clean.loc[clean[PERTURBATION].to_numpy() != CONTROL]
    keys = [CONTEXT, PERTURBATION, DOSE]
    grouped = clean.groupby(keys, sort=True)
    table = grouped.size().rename(N_CELLS).reset_index()
    types = grouped[PERTURBATION_TYPE].agg(_mode).reset_index(drop=True)
    table.insert(3, PERTURBATION_TYPE, types.to_numpy())
    table[N_CELLS] = table[N_CELLS].astype(np.int64)
    return table


def _mode(values: pd.Series) -> str:
    return str(values.value_counts().index[0])


def as_conditions(conditions: pd.DataFrame | Sequence[Sequence[str]]) -> pd.DataFrame:
    """Normalise a conditions argument into the canonical table predict works from.

    Accepts a DataFrame with columns ``context`` and ``perturbation`` (optionally ``dose``,
    ``perturbation_type``, ``n_cells``) or a sequence of ``(context, perturbation)`` or
    ``(context, perturbation, dose)`` tuples. Returns a new DataFrame with a ``RangeIndex`` and
    at least the columns ``context``, ``perturbation`` and ``dose``.
    """
    if isinstance(conditions, pd.DataFrame):
        missing = [c for c in (CONTEXT, PERTURBATION) if c not in conditions.columns]
        if missing:
            raise KeyError(
                f"conditions has no column {missing[0]!r} (columns: {list(conditions.columns)}). "
                f"Fix: pass a DataFrame with columns {CONTEXT!r}, {PERTURBATION!r}[, {DOSE!r}], "
                "e.g. celltwin.models.conditions_of(test_cells)."
            )
        table = pd.DataFrame(
            {
                CONTEXT: conditions[CONTEXT].astype(str).to_numpy(dtype=object),
                PERTURBATION: conditions[PERTURBATION].astype(str).to_numpy(dtype=object),
                DOSE: _dose_strings(conditions[DOSE])
                if DOSE in conditions.columns
                else np.full(len(conditions), "", dtype=object),
            }
        )
        if PERTURBATION_TYPE in conditions.columns:
            table[PERTURBATION_TYPE] = conditions[PERTURBATION_TYPE].astype(str).to_numpy()
        if N_CELLS in conditions.columns:
            table[N_CELLS] = [
                _positive_int(v, key=f"conditions[{N_CELLS!r}]") for v in conditions[N_CELLS]
            ]
    elif isinstance(conditions, str) or not isinstance(conditions, Sequence):
        raise TypeError(
            "'conditions' must be a DataFrame or a list of (context, perturbation[, dose]) tuples "
            f"(got {type(conditions).__name__}). Fix: conditions=[('K562', 'KLF1')]."
        )
    else:
        rows = []
        for row in conditions:
            if isinstance(row, str) or len(row) not in (2, 3):
                raise ValueError(
                    f"each condition must be (context, perturbation) or (context, perturbation, "
                    f"dose) (got {row!r})."
                )
            rows.append((str(row[0]), str(row[1]), str(row[2]) if len(row) == 3 else ""))
        table = pd.DataFrame(rows, columns=[CONTEXT, PERTURBATION, DOSE], dtype=object)
    if len(table) == 0:
        raise ValueError("'conditions' is empty. Fix: list at least one condition to predict.")
    _check_labels(table[PERTURBATION], where="conditions")
    _check_doses(table, where="conditions")
    return table.reset_index(drop=True)


def _dose_strings(values: pd.Series) -> np.ndarray:
    text = values.astype(object).where(values.notna(), "")
    return np.array([str(v).strip() for v in text], dtype=object)


def _positive_int(value: Any, *, key: str) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or int(value) < 1:
        raise ValueError(f"{key} must be a whole number >= 1 (got {value!r}).")
    return int(value)


def _check_labels(labels: pd.Series, *, where: str) -> None:
    for label in pd.unique(labels):
        canonical = join_combination(split_combination(label))
        if label != canonical:
            raise ValueError(
                f"{where}: perturbation {label!r} is not canonical (expected {canonical!r}: "
                f"components sorted and joined by {COMBO_SEP!r}, control as {CONTROL!r}). "
                "Fix: celltwin._keys.join_combination(components)."
            )


def _check_doses(table: pd.DataFrame, *, where: str) -> None:
    pairs = table[[PERTURBATION, DOSE]].drop_duplicates()
    for perturbation, dose in pairs.itertuples(index=False):
        if dose == "" or perturbation == CONTROL:
            continue
        n = len(split_combination(perturbation))
        if len(dose.split(COMBO_SEP)) != n:
            raise ValueError(
                f"{where}: dose {dose!r} has {len(dose.split(COMBO_SEP))} parts but perturbation "
                f"{perturbation!r} has {n} components. Fix: one dose per sorted component "
                "(celltwin.io.format_dose)."
            )


def dose_components(perturbation: str, dose: str) -> list[str]:
    """Split a dose string into one (possibly empty) dose per component of ``perturbation``."""
    n = len(split_combination(perturbation))
    return dose.split(COMBO_SEP) if dose else [""] * n


# --- obs / X validation -----------------------------------------------------------------------


def _require_obs(obs: pd.DataFrame, keys: Sequence[str], *, role: str) -> None:
    missing = [k for k in keys if k not in obs.columns]
    if missing:
        raise KeyError(
            f"{role}: obs has no column {missing[0]!r} (obs columns: {list(obs.columns)}). "
            "Fix: bring the data into canonical form first (celltwin.io), see celltwin._keys."
        )


def _clean_obs(obs: pd.DataFrame) -> pd.DataFrame:
    """The obs columns the models use, as plain strings; a missing dose column becomes ``""``."""
    clean = pd.DataFrame(
        {
            CONTEXT: obs[CONTEXT].astype(str).to_numpy(dtype=object),
            PERTURBATION: obs[PERTURBATION].astype(str).to_numpy(dtype=object),
            DOSE: _dose_strings(obs[DOSE])
            if DOSE in obs.columns
            else np.full(len(obs), "", dtype=object),
            PERTURBATION_TYPE: obs[PERTURBATION_TYPE].astype(str).to_numpy(dtype=object)
            if PERTURBATION_TYPE in obs.columns
            else np.full(len(obs), "other", dtype=object),
        },
        index=pd.Index([str(i) for i in range(len(obs))]),
    )
    return clean


def _check_log_space(x: np.ndarray | sp.spmatrix, *, where: str) -> None:
    values = x.data if sp.issparse(x) else np.asarray(x)
    if values.size == 0:
        return
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"{where}: X holds NaN or infinite values. Fix: remove or repair those cells."
        )
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > _MAX_LOG_VALUE:
        raise ValueError(
            f"{where}: X ranges over [{low:.3g}, {high:.3g}], which is not log1p(CP10k) "
            f"(expected values in [0, {_MAX_LOG_VALUE:g}]). Fix: celltwin.pp.log_normalize(adata)."
        )


def _unique_genes(adata: AnnData) -> list[str]:
    names = adata.var_names
    if not names.is_unique:
        dup = names[names.duplicated()][:3].tolist()
        raise ValueError(
            f"var_names must be unique gene symbols (duplicated: {dup}). "
            "Fix: adata.var_names_make_unique() or aggregate duplicated genes."
        )
    return [str(g) for g in names]


# --- the contract -----------------------------------------------------------------------------


class Model(ABC):
    """Base class of every celltwin model: the shared fit/predict/save contract.

    Subclasses set the class attributes ``name`` (the registry name) and ``predicts``
    (``"cells"`` or ``"pseudobulk"``), store their parameters in ``__init__`` and implement
    :meth:`_predict_conditions` (and usually :meth:`_fit`).

    Fitted attributes shared by all models: ``genes_`` (training gene list, the order of every
    prediction's ``var_names``), ``contexts_`` (contexts of the training cells, control-only
    ones included), ``conditions_`` (table of the perturbed training conditions: ``context``,
    ``perturbation``, ``dose``, ``n_cells``), ``perturbation_types_`` (perturbation ->
    ``perturbation_type``) and ``n_train_cells_``.
    """

    name: ClassVar[str]
    predicts: ClassVar[PredictionKind]

    # --- parameters -------------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters (what ``__init__`` stored), by name."""
        signature = inspect.signature(type(self).__init__)
        return {
            name: getattr(self, name)
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # --- fit ----------------------------------------------------------------------------------

    def fit(self, adata: AnnData, *, split_key: str | None = SPLIT, **fit_params: Any) -> Self:
        """Learn from the training cells of ``adata`` and return the model.

        Parameters
        ----------
        adata
            Canonical cells x genes, ``X`` in log1p(CP10k).
        split_key
            obs column holding the split: only cells labelled ``"train"`` are used, so
            validation and test cells are never read. When the column is absent (and
            ``split_key`` is the default ``"split"``) or ``split_key=None``, every cell is
            training data.
        **fit_params
            Model-specific inputs of fitting that are data, not parameters (e.g. ``transition``'s
            ``perturbation_features``), as scikit-learn's fit parameters; a model that takes none
            refuses any.

        Returns
        -------
        Model
            ``self``, fitted.
        """
        train = self._start_fit(adata, split_key=split_key)
        self._fit(train, **fit_params)
        return self

    @abstractmethod
    def _fit(self, train: AnnData, **fit_params: Any) -> None:
        """Learn from the validated training cells (a clean AnnData: X, obs, genes)."""

    def _start_fit(self, adata: AnnData, *, split_key: str | None) -> AnnData:
        """Validate, select the training cells, set the shared fitted attributes."""
        if not isinstance(adata, AnnData):
            raise TypeError(f"'adata' must be an AnnData (got {type(adata).__name__}).")
        _require_obs(adata.obs, REQUIRED_OBS, role=f"{self.name}.fit")
        if adata.X is None:
            raise ValueError(f"{self.name}.fit: adata.X is None. Fix: set X to log1p(CP10k).")
        if split_key is not None and split_key in adata.obs.columns:
            mask = adata.obs[split_key].astype(str).to_numpy() == TRAIN
        elif split_key is not None and split_key != SPLIT:
            raise KeyError(
                f"{self.name}.fit: obs has no split column {split_key!r}. "
                f"Fix: pass the column holding {TRAIN!r} labels, or split_key=None to train "
                "on every cell."
            )
        else:
            mask = np.ones(adata.n_obs, dtype=bool)
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            raise ValueError(
                f"{self.name}.fit: no training cells (obs[{split_key!r}] == {TRAIN!r}). "
                "Fix: check the split."
            )
        genes = _unique_genes(adata)
        obs = _clean_obs(adata.obs.iloc[rows])
        _check_labels(obs[PERTURBATION], where=f"{self.name}.fit: obs")
        _check_doses(obs, where=f"{self.name}.fit: obs")
        # Only training rows are ever read from X: test cells may hold anything.
        x = adata.X[rows]
        x = sp.csr_matrix(x) if sp.issparse(x) else np.asarray(x)
        _check_log_space(x, where=f"{self.name}.fit")

        is_control = obs[PERTURBATION].to_numpy() == CONTROL
        without_controls = sorted(
            set(obs.loc[~is_control, CONTEXT]) - set(obs.loc[is_control, CONTEXT])
        )
        if without_controls:
            raise ValueError(
                f"{self.name}.fit: contexts {without_controls} have perturbed training cells but "
                f"no training control cells (obs[{PERTURBATION!r}] == {CONTROL!r}); effects are "
                "measured against them. Fix: put those contexts' control cells in the training "
                "split."
            )

        self._reset_fitted()
        perturbed = obs.loc[~is_control]
        grouped = perturbed.groupby([CONTEXT, PERTURBATION, DOSE], sort=True)
        conditions = grouped.size().rename(N_CELLS).reset_index()
        conditions[N_CELLS] = conditions[N_CELLS].astype(np.int64)
        self.genes_: list[str] = genes
        self.contexts_: list[str] = sorted(set(obs[CONTEXT]))
        self.conditions_: pd.DataFrame = conditions
        self.perturbation_types_: dict[str, str] = {
            str(p): _mode(t) for p, t in perturbed.groupby(PERTURBATION)[PERTURBATION_TYPE]
        }
        self.n_train_cells_: int = int(rows.size)
        return AnnData(X=x, obs=obs, var=pd.DataFrame(index=pd.Index(genes)))

    def _reset_fitted(self) -> None:
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("__")]:
            delattr(self, attr)

    def _check_fitted(self) -> None:
        if not hasattr(self, "genes_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet. Fix: call .fit(adata) or load "
                "a saved model with celltwin.models.load(dir)."
            )

    # --- predict ------------------------------------------------------------------------------

    def predict(
        self,
        adata: AnnData,
        *,
        conditions: pd.DataFrame | Sequence[Sequence[str]],
        n_cells: int | None = None,
        seed: int = 0,
    ) -> AnnData:
        """Predict the requested conditions from the control cells in ``adata``.

        Parameters
        ----------
        adata
            Holds the control cells (``obs['perturbation'] == "control"``) of every context
            asked for; other cells are ignored. Genes are matched by name: extra genes are
            dropped, and every training gene must be present.
        conditions
            What to generate: a DataFrame with columns ``context``, ``perturbation`` and
            optionally ``dose``, ``perturbation_type`` and ``n_cells`` (e.g.
            :func:`conditions_of` on the test cells), or a list of ``(context, perturbation)``
            / ``(context, perturbation, dose)`` tuples. ``"control"`` predicts the controls.
        n_cells
            Cells to generate per condition (``"cells"`` models). ``None`` uses the
            ``n_cells`` column of ``conditions`` when present, else every control cell of the
            context once, in order. Control cells are drawn without replacement when there
            are enough, with replacement otherwise. Ignored by ``"pseudobulk"`` models, which
            use every control cell of the context.
        seed
            Seed of the draw of control cells; the same seed gives the same output.

        Returns
        -------
        AnnData
            Genes = the training genes (``var_names``), ``X`` float32 in log1p(CP10k).
            ``"cells"`` models: one row per generated cell; ``"pseudobulk"`` models: one row per
            condition (a predicted mean profile). obs: ``context``, ``perturbation``,
            ``perturbation_type`` and ``dose`` (when any condition has one).
            ``uns['celltwin']['prediction']`` records ``kind``, ``model``, ``params`` and
            ``seed``; the input's ``uns['celltwin']['normalization']`` is carried over.

        Raises
        ------
        UnseenConditionError
            When the model cannot predict a requested condition (see each model's notes).
        ValueError
            When training genes are missing from ``adata`` or a context has no control cells.
        """
        self._check_fitted()
        table = as_conditions(conditions)
        if n_cells is not None:
            n_cells = _positive_int(n_cells, key="'n_cells'")
        controls, control_contexts = self._query_controls(adata)
        picks = self._pick_controls(table, control_contexts, n_cells=n_cells, seed=seed)
        outputs = self._predict_conditions(table, [controls[p] for p in picks])
        return self._assemble(adata, table, outputs, n_cells=n_cells, seed=seed)

    @abstractmethod
    def _predict_conditions(
        self, conditions: pd.DataFrame, controls: list[np.ndarray]
    ) -> list[np.ndarray]:
        """One array of genes-wide rows per condition, generated from its control cells.

        ``controls[i]`` holds the control cells drawn for condition ``i`` (float64, training
        genes). ``"cells"`` models return one row per control row; ``"pseudobulk"`` models one.
        Raise :class:`UnseenConditionError` for conditions the model cannot predict.
        """

    def _query_controls(self, adata: AnnData) -> tuple[np.ndarray, np.ndarray]:
        """Control cells of ``adata`` on the training genes (dense float64) and their contexts."""
        if not isinstance(adata, AnnData):
            raise TypeError(f"'adata' must be an AnnData (got {type(adata).__name__}).")
        _require_obs(adata.obs, (PERTURBATION, CONTEXT), role=f"{self.name}.predict")
        if adata.X is None:
            raise ValueError(f"{self.name}.predict: adata.X is None. Fix: set X to log1p(CP10k).")
        names = pd.Index(_unique_genes(adata))
        positions = names.get_indexer(pd.Index(self.genes_))
        missing = [g for g, p in zip(self.genes_, positions, strict=True) if p < 0]
        if missing:
            raise ValueError(
                f"{self.name}.predict: adata lacks {len(missing)} of the {len(self.genes_)} "
                f"training genes (e.g. {missing[:5]}). Predictions need every training gene. "
                "Fix: use data measured on the training genes (genes are matched by name)."
            )
        is_control = adata.obs[PERTURBATION].astype(str).to_numpy() == CONTROL
        rows = np.flatnonzero(is_control)
        x = adata.X[rows][:, positions]
        x = x.toarray() if sp.issparse(x) else np.asarray(x)
        x = np.asarray(x, dtype=np.float64)
        _check_log_space(x, where=f"{self.name}.predict (control cells)")
        contexts = adata.obs[CONTEXT].astype(str).to_numpy()[rows]
        return x, contexts

    def _pick_controls(
        self, table: pd.DataFrame, control_contexts: np.ndarray, *, n_cells: int | None, seed: int
    ) -> list[np.ndarray]:
        by_context = {c: np.flatnonzero(control_contexts == c) for c in pd.unique(control_contexts)}
        absent = sorted(set(table[CONTEXT]) - set(by_context))
        if absent:
            raise ValueError(
                f"{self.name}.predict: adata has no control cells of context(s) {absent}; "
                f"predictions start from them. Fix: pass adata holding control cells "
                f"(obs[{PERTURBATION!r}] == {CONTROL!r}) of every requested context."
            )
        rng = np.random.default_rng(seed)
        wanted = table[N_CELLS].to_numpy() if N_CELLS in table.columns else None
        picks = []
        for i, context in enumerate(table[CONTEXT]):
            pool = by_context[context]
            k = n_cells if n_cells is not None else (int(wanted[i]) if wanted is not None else None)
            if self.predicts == "pseudobulk" or k is None:
                picks.append(pool)
            else:
                picks.append(rng.choice(pool, size=k, replace=k > pool.size))
        return picks

    def _assemble(
        self,
        adata: AnnData,
        table: pd.DataFrame,
        outputs: list[np.ndarray],
        *,
        n_cells: int | None,
        seed: int,
    ) -> AnnData:
        sizes = np.array([o.shape[0] for o in outputs], dtype=np.int64)
        x = (
            np.vstack(outputs).astype(np.float32)
            if outputs
            else np.zeros((0, len(self.genes_)), np.float32)
        )
        obs = pd.DataFrame(
            {
                CONTEXT: np.repeat(table[CONTEXT].to_numpy(), sizes),
                PERTURBATION: np.repeat(table[PERTURBATION].to_numpy(), sizes),
                PERTURBATION_TYPE: np.repeat(self._output_types(table), sizes),
            },
            index=pd.Index([f"pred{i}" for i in range(int(sizes.sum()))]),
        )
        if (table[DOSE] != "").any():
            obs[DOSE] = np.repeat(table[DOSE].to_numpy(), sizes)
        info: dict[str, Any] = {
            "kind": self.predicts,
            "model": self.name,
            "params": {k: v for k, v in self.get_params().items() if v is not None},
            "seed": int(seed),
            **self._prediction_info(),
        }
        if n_cells is not None and self.predicts == "cells":
            info["n_cells"] = int(n_cells)
        uns: dict[str, Any] = {"prediction": info}
        normalization = adata.uns.get(UNS_KEY, {}).get("normalization")
        if normalization is not None:
            uns["normalization"] = dict(normalization)
        return AnnData(
            X=x, obs=obs, var=pd.DataFrame(index=pd.Index(self.genes_)), uns={UNS_KEY: uns}
        )

    def _output_types(self, table: pd.DataFrame) -> np.ndarray:
        """perturbation_type per condition: given, else as in training, else the training type."""
        if PERTURBATION_TYPE in table.columns:
            return table[PERTURBATION_TYPE].to_numpy(dtype=object)
        known = set(self.perturbation_types_.values())
        fallback = known.pop() if len(known) == 1 else "other"
        return np.array(
            [
                "control" if p == CONTROL else self.perturbation_types_.get(p, fallback)
                for p in table[PERTURBATION]
            ],
            dtype=object,
        )

    def _prediction_info(self) -> dict[str, Any]:
        """Extra, model-specific entries for ``uns['celltwin']['prediction']``."""
        return {}

    # --- persistence --------------------------------------------------------------------------

    def _array_names(self) -> tuple[str, ...]:
        """Fitted array attributes written to the safetensors file."""
        return ()

    def _json_names(self) -> tuple[str, ...]:
        """Fitted non-array attributes (JSON values) written to ``model.json``."""
        return ()

    def _check_state(self) -> None:
        """Check loaded arrays against each other; raise :class:`ModelFormatError` if not."""
        for name in self._array_names():
            if not isinstance(getattr(self, name, None), np.ndarray):
                raise ModelFormatError(f"{self.name}: fitted array {name!r} is missing.")

    def save(self, path: str | Path) -> None:
        """Write the fitted model to the directory ``path`` (created if needed).

        Arrays go to ``weights.safetensors``, everything else to ``model.json`` (model name,
        parameters, format version, training genes, contexts and conditions, celltwin version
        and the SHA-256 of the weights file). Nothing is pickled.
        """
        from ._persist import save_model

        save_model(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save`; fails clearly on a damaged directory.

        Called on :class:`Model` any saved model loads; called on a subclass the saved model
        must be of that class.
        """
        from ._persist import load

        model = load(path)
        if not isinstance(model, cls):
            raise ModelFormatError(
                f"{path} holds a {type(model).__name__!r} model, not a {cls.__name__!r}. "
                "Fix: use celltwin.models.load(path), which returns whichever model it holds."
            )
        return model


def is_genetic(perturbation_types: dict[str, str]) -> bool:
    """True when every training perturbation is a CRISPR knockout/interference/activation."""
    return bool(perturbation_types) and set(perturbation_types.values()) <= _GENETIC_TYPES
