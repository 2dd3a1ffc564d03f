"""The contract of the signature models: fit on score rows, predict score rows.

Ranked signatures (:class:`celltwin.io.RankSignatures`) have no cells, only one ranked gene list
per (context, perturbation). Their models follow :class:`celltwin.models.Model`::

    model = get_model("low_rank")                      # only stores parameters
    model.fit(scores)                                  # training rows only
    pred = model.predict(conditions=[("RPE1", "MED1")])
    model.save("dir/")                                 # JSON + safetensors, no pickle
    same = load("dir/")

``scores`` is the AnnData of :meth:`RankSignatures.to_scores`: ``obs`` ``context`` and
``perturbation`` (pairs unique), ``X`` the gene scores. ``NaN`` in ``X`` means "gene not measured
for this signature" (e.g. a full ranking that did not test it); every model handles it (the mean
models skip it, the regression models fill it with the context's mean score of that gene).
Predictions are finite score rows on the training genes.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, PERTURBATION, UNS_KEY
from ._errors import ModelFormatError, UnseenConditionError
from ._model import Model, expect_shape
from ._persist import get_field, str_list
from ._signature_data import SignatureData, scores_data, signature_conditions


class SignatureModel(Model):
    """Base class of the signature models (``predicts = "signatures"``): fit on score rows,
    predict score rows.

    Subclasses set ``name`` (the registry name), store their parameters in ``__init__`` and
    implement :meth:`_fit` and :meth:`_predict`. Fitted attributes shared by all models:
    ``genes_`` (training genes, the order of every prediction's columns) and ``pairs_`` (table of
    the training (context, perturbation) pairs, in row order).
    """

    predicts: ClassVar[Literal["signatures"]] = "signatures"
    genes_: list[str]
    pairs_: pd.DataFrame
    scores_: np.ndarray  # the training rows, kept by the models that need them

    # --- fit ----------------------------------------------------------------------------------

    def fit(self, scores: AnnData, **fit_params: Any) -> Self:
        """Learn from training signatures and return the model.

        Parameters
        ----------
        scores
            Training rows only: ``obs`` ``context`` and ``perturbation`` (unique pairs), ``X``
            gene scores (e.g. :meth:`RankSignatures.to_scores`), ``NaN`` = not measured.
        **fit_params
            None are taken; any given raises :class:`TypeError` naming it.

        Returns
        -------
        SignatureModel
            ``self``, fitted.
        """
        self._check_fit_params(fit_params)
        data = scores_data(scores, where=f"{self.name}.fit")
        self._reset_fitted()
        self.genes_: list[str] = data.genes
        self.pairs_: pd.DataFrame = pd.DataFrame(
            {
                CONTEXT: np.asarray(data.contexts, dtype=object)[data.row_context],
                PERTURBATION: np.asarray(data.perturbations, dtype=object)[data.row_perturbation],
            }
        )
        self._fit(data)
        return self

    @abstractmethod
    def _fit(self, data: SignatureData) -> None:
        """Learn from the validated training rows."""

    def _training(self) -> SignatureData:
        """The training rows (for models that keep them as ``scores_``)."""
        return SignatureData.from_pairs(
            self.scores_, self.pairs_[CONTEXT], self.pairs_[PERTURBATION], self.genes_
        )

    # --- predict ------------------------------------------------------------------------------

    def predict(self, *, conditions: pd.DataFrame | Sequence[Sequence[str]]) -> AnnData:
        """Predict the score rows of the requested (context, perturbation) pairs.

        Parameters
        ----------
        conditions
            A DataFrame with columns ``context`` and ``perturbation`` or a list of such pairs.

        Returns
        -------
        AnnData
            One row per condition (obs ``context``, ``perturbation``), ``var_names`` = the
            training genes, ``X`` float32 finite scores; ``uns['celltwin']['prediction']``
            records ``kind`` (``"signatures"``), ``model`` and ``params``.

        Raises
        ------
        UnseenConditionError
            When the model has nothing to predict a pair from (see each model).
        """
        self._check_fitted()
        table = signature_conditions(conditions)
        x = np.asarray(self._predict(table), dtype=np.float64)
        if not np.isfinite(x).all():  # a bug, not a data problem: never hand out NaN
            raise RuntimeError(f"{self.name}.predict produced non-finite scores")
        obs = table.copy()
        obs.index = pd.Index(
            [f"{c}/{p}" for c, p in zip(obs[CONTEXT], obs[PERTURBATION], strict=True)]
        )
        info = {
            "kind": self.predicts,
            "model": self.name,
            "params": {k: v for k, v in self.get_params().items() if v is not None},
        }
        return AnnData(
            X=x.astype(np.float32),
            obs=obs,
            var=pd.DataFrame(index=pd.Index(self.genes_)),
            uns={UNS_KEY: {"prediction": info}},
        )

    @abstractmethod
    def _predict(self, table: pd.DataFrame) -> np.ndarray:
        """``(len(table), genes)`` scores; raise :class:`UnseenConditionError` when impossible."""

    # --- persistence --------------------------------------------------------------------------

    def _fitted_meta(self) -> dict[str, Any]:
        return {
            "genes": list(self.genes_),
            "pairs": {c: [str(v) for v in self.pairs_[c]] for c in (CONTEXT, PERTURBATION)},
        }

    def _restore_fitted(self, meta: dict[str, Any]) -> None:
        genes = str_list(meta.get("genes"), "genes")
        if len(set(genes)) != len(genes):
            raise ModelFormatError("the gene list has duplicates")
        pairs = get_field(meta, "pairs", dict)
        columns = {c: str_list(pairs.get(c), f"pairs.{c}") for c in (CONTEXT, PERTURBATION)}
        if len(columns[CONTEXT]) != len(columns[PERTURBATION]):
            raise ModelFormatError("the 'pairs' columns differ in length")
        self.genes_ = genes
        self.pairs_ = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in columns.items()})

    def _check_state(self) -> None:
        """Check loaded arrays against the gene and pair lists."""
        super()._check_state()
        if "scores_" in self._array_names():
            expect_shape(self, "scores_", (len(self.pairs_), len(self.genes_)))


def unseen(model: str, context: str, perturbation: str, why: str) -> UnseenConditionError:
    return UnseenConditionError(
        f"{model} cannot predict perturbation {perturbation!r} in context {context!r}: {why}."
    )
