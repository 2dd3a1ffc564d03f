"""The contract of the models predicting from control cells (``"cells"``, ``"pseudobulk"``).

Built on :class:`~celltwin.models.Model`, after scikit-learn:

``CellModel(**params)``
    Only stores the parameters (no validation, no data).
``model.fit(adata, *, split_key="split", **fit_params)``
    Validates the data, learns from the *training* cells only (``obs[split_key] == "train"``),
    sets learned attributes whose names end in ``_`` and returns the model.
``model.predict(adata, *, conditions, n_cells=None, seed=0)``
    Generates the requested conditions from the control cells in ``adata`` and returns a
    canonical AnnData (see :meth:`CellModel.predict`).

Every cell model works in ``X`` space (``log1p`` of counts per 10k) on the training gene list.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Final, Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._keys import (
    CONTEXT,
    CONTROL,
    DOSE,
    PERTURBATION,
    PERTURBATION_TYPE,
    REQUIRED_OBS,
    SPLIT,
    TRAIN,
    UNS_KEY,
)
from ._checks import (
    _check_doses,
    _check_labels,
    _check_log_space,
    _clean_obs,
    _mode,
    _positive_int,
    _require_obs,
    _unique_genes,
)
from ._conditions import N_CELLS, as_conditions
from ._errors import ModelFormatError
from ._model import Model
from ._persist import get_field, str_list

#: What a cell model predicts: cells, or one mean profile per condition.
CellKind = Literal["cells", "pseudobulk"]
_CONDITION_COLUMNS: Final = (CONTEXT, PERTURBATION, DOSE)


class CellModel(Model):
    """Base class of the models predicting from control cells: ``"cells"`` or ``"pseudobulk"``.

    Subclasses set the class attributes ``name`` (the registry name) and ``predicts``
    (``"cells"`` or ``"pseudobulk"``), store their parameters in ``__init__`` and implement
    :meth:`_predict_conditions` and :meth:`_fit`. The fit parameters a model takes (data given
    to ``fit`` that is not a parameter) are the keyword parameters its ``_fit`` names; ``fit``
    refuses any other.

    Fitted attributes shared by all cell models: ``genes_`` (training gene list, the order of every
    prediction's ``var_names``), ``contexts_`` (contexts of the training cells, control-only
    ones included), ``conditions_`` (table of the perturbed training conditions: ``context``,
    ``perturbation``, ``dose``, ``n_cells``), ``perturbation_types_`` (perturbation ->
    ``perturbation_type``) and ``n_train_cells_``.
    """

    predicts: ClassVar[CellKind]

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
        self._check_fit_params(fit_params)
        train = self._start_fit(adata, split_key=split_key)
        try:
            self._fit(train, **fit_params)
        except BaseException:
            self._reset_fitted()  # a failed fit leaves no half-fitted model behind
            raise
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

    def _fitted_meta(self) -> dict[str, Any]:
        conditions = self.conditions_
        return {
            "genes": list(self.genes_),
            "contexts": list(self.contexts_),
            "conditions": {
                **{c: [str(v) for v in conditions[c]] for c in _CONDITION_COLUMNS},
                N_CELLS: [int(v) for v in conditions[N_CELLS]],
            },
            "perturbation_types": dict(self.perturbation_types_),
            "n_train_cells": int(self.n_train_cells_),
        }

    def _restore_fitted(self, meta: dict[str, Any]) -> None:
        genes = str_list(meta.get("genes"), "genes")
        if len(set(genes)) != len(genes):
            raise ModelFormatError("the gene list has duplicates")
        self.genes_ = genes
        self.contexts_ = str_list(meta.get("contexts"), "contexts")
        self.conditions_ = _conditions_table(get_field(meta, "conditions", dict))
        types = get_field(meta, "perturbation_types", dict)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in types.items()):
            raise ModelFormatError("'perturbation_types' must map strings to strings")
        self.perturbation_types_ = types
        n_train = meta.get("n_train_cells")
        if not isinstance(n_train, int) or isinstance(n_train, bool) or n_train < 1:
            raise ModelFormatError("'n_train_cells' must be a positive integer")
        self.n_train_cells_ = n_train


def _conditions_table(raw: dict[str, Any]) -> pd.DataFrame:
    columns = {c: str_list(raw.get(c), f"conditions.{c}") for c in _CONDITION_COLUMNS}
    counts = raw.get(N_CELLS)
    if not isinstance(counts, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in counts
    ):
        raise ModelFormatError(f"'conditions.{N_CELLS}' must be a list of integers")
    if len({len(v) for v in columns.values()} | {len(counts)}) != 1:
        raise ModelFormatError("the 'conditions' columns differ in length")
    table = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in columns.items()})
    table[N_CELLS] = np.asarray(counts, dtype=np.int64)
    return table
