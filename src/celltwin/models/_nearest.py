"""Nearest-perturbation baseline: borrow the effect of the most similar training perturbation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, DOSE, PERTURBATION
from ._conditions import ConditionKey, as_conditions, condition_keys
from ._conditions import condition_label as describe
from ._effects import FeatureEffectModel, training_effects
from ._embedding import embed_label, gene_embedding, validated_embedding
from ._errors import ModelFormatError
from ._model import expect_shape
from ._sources import Source, source_table

_MODES = ("auto", "gene", "external")


class NearestPerturbationBaseline(FeatureEffectModel):
    """Shift control cells by the effect of the most similar training perturbation.

    Similarity is the cosine between perturbation embeddings. For condition ``(c, p, dose)``
    the candidates are the perturbations with training cells in context ``c`` and an embedding;
    when ``p`` is one of them it is its own neighbour, otherwise the candidate of highest cosine
    with ``p`` is used (ties: the first in sorted order). The effect is the neighbour's training
    effect in ``c`` at the same dose when measured, else the mean over its doses in ``c``,
    added to each control cell of ``c`` (clipped at 0).

    Embeddings (``embedding``): ``"gene"`` uses the linear model's gene embedding (top-K PCA of
    the genes over the training pseudobulk profiles) at the targeted gene, ``G[target]``;
    ``"external"`` uses a ``perturbation_features`` DataFrame given to :meth:`fit`;
    ``"auto"`` (default) picks ``"external"`` when one is given, else ``"gene"``. Combinations
    without their own row are embedded as the sum of their components' rows. Perturbations
    without an embedding, and contexts without perturbed training cells, are refused
    (:class:`UnseenConditionError`).

    Parameters
    ----------
    n_components
        K, the number of principal components of the gene embedding.
    embedding
        ``"auto"``, ``"gene"`` or ``"external"``.

    References
    ----------
    A nearest-neighbour transfer baseline in the spirit of Ahlmann-Eltze, Huber & Anders,
    Nat Methods 2025 (whose gene embedding ``G`` it uses by default).
    """

    name = "nearest_perturbation"
    predicts = "cells"

    def __init__(self, *, n_components: int = 10, embedding: str = "auto") -> None:
        self.n_components = n_components
        self.embedding = embedding

    def _fit(
        self,
        train: AnnData,
        *,
        perturbation_features: pd.DataFrame | None = None,
        **fit_params: Any,
    ) -> None:
        """Store the training effects and the embedding (``fit(adata, perturbation_features=...)``).

        Parameters
        ----------
        train
            The validated training cells.
        perturbation_features
            Optional DataFrame, one row per perturbation name, numeric columns.
        """
        n = self.n_components
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"{self.name}: 'n_components' must be an integer >= 1 (got {n!r}).")
        if self.embedding not in _MODES:
            raise ValueError(
                f"{self.name}: 'embedding' must be one of {_MODES} (got {self.embedding!r})."
            )
        given = perturbation_features is not None
        if (given and self.embedding == "gene") or (not given and self.embedding == "external"):
            raise ValueError(
                f"{self.name}: embedding={self.embedding!r} "
                + (
                    "ignores the perturbation_features given."
                    if given
                    else "needs fit(..., perturbation_features=DataFrame)."
                )
            )
        external = validated_embedding(perturbation_features, owner=self.name) if given else None
        effects = training_effects(train, self.conditions_)
        self.delta_: np.ndarray = effects.delta
        self.embedding_: str = "external" if external is not None else "gene"
        self.external_index_: list[str] = external[0] if external is not None else []
        if external is not None:
            self.external_embedding_: np.ndarray = external[1]
        else:
            profiles = np.vstack([effects.expression, effects.control_expression])
            self.gene_embedding_: np.ndarray = gene_embedding(profiles, self.n_components)
        labels = sorted(set(self.conditions_[PERTURBATION]))
        embed = self._embedder()
        if not any(embed(p)[0] is not None for p in labels):
            raise ValueError(
                f"{self.name}.fit: no training perturbation has an embedding "
                f"({self.embedding_!r}; e.g. {labels[:3]}). Fix: pass perturbation_features= "
                "indexed by perturbation name."
            )

    def _embedder(self) -> Callable[[str], tuple[np.ndarray | None, list[str]]]:
        """label -> (embedding or None, components without one)."""
        external = self.embedding_ == "external"
        names = self.external_index_ if external else self.genes_
        matrix = self.external_embedding_ if external else self.gene_embedding_
        rows = {n: i for i, n in enumerate(names)}
        return lambda label: embed_label(label, rows, matrix)

    def neighbors(self, conditions: pd.DataFrame | list[tuple[str, ...]]) -> pd.DataFrame:
        """The training perturbation used for each condition, and its cosine similarity.

        Returns the conditions table with added columns ``neighbor`` and ``similarity``;
        raises :class:`UnseenConditionError` like :meth:`predict`.
        """

        self._check_fitted()
        table = as_conditions(conditions)
        found = self._neighbors(condition_keys(table))
        table["neighbor"] = [f[0] for f in found]
        table["similarity"] = [f[1] for f in found]
        return table

    def sources(
        self,
        adata: AnnData | None = None,
        *,
        conditions: pd.DataFrame | list[tuple[str, ...]],
        top: int | None = None,
    ) -> pd.DataFrame:
        """What each condition's prediction borrowed from: the neighbour's training effect.

        One source per condition (kind ``neighbour``, weight 1): the nearest training
        perturbation in the condition's context at the same dose, or its measured doses there
        with equal weights when that dose was not measured. ``adata`` is not needed (the
        common signature of ``sources``, see :meth:`TransitionModel.sources`); ``top`` keeps
        the heaviest sources per condition. Columns as
        :data:`celltwin._keys.SOURCE_COLUMNS`.
        """
        self._check_fitted()
        keys = [k for k in condition_keys(as_conditions(conditions)) if k[1] != CONTROL]
        table = self.conditions_
        found = []
        for (context, _, dose), (neighbor, _) in zip(keys, self._neighbors(keys), strict=True):
            rows = (table[CONTEXT].to_numpy() == context) & (
                table[PERTURBATION].to_numpy() == neighbor
            )
            doses = [dose] if (rows & (table[DOSE].to_numpy() == dose)).any() else None
            doses = doses or list(table[DOSE].to_numpy()[rows])
            found.append(
                [Source("neighbour", context, neighbor, d, 1.0 / len(doses)) for d in doses]
            )
        return source_table(keys, found, top=top)

    def _neighbors(self, keys: list[ConditionKey]) -> list[tuple[str, float]]:
        contexts = self.conditions_[CONTEXT].to_numpy()
        labels = self.conditions_[PERTURBATION].to_numpy()
        embed = self._embedder()
        candidates: dict[str, tuple[list[str], np.ndarray]] = {}
        for context in {k[0] for k in keys}:
            names, vectors = [], []
            for label in sorted(set(labels[contexts == context])):
                vector = embed(label)[0]
                if vector is not None and np.linalg.norm(vector) > 0:
                    names.append(label)
                    vectors.append(vector / np.linalg.norm(vector))
            candidates[context] = (names, np.array(vectors))
        found, problems = [], []
        for key in keys:
            context, perturbation, _ = key
            names, unit = candidates[context]
            if not names:
                problems.append(f"{describe(key)} (no perturbed training cells in that context)")
                found.append(("", np.nan))
                continue
            if perturbation in names:
                found.append((perturbation, 1.0))
                continue
            vector, missing = embed(perturbation)
            if vector is None or np.linalg.norm(vector) == 0:
                why = f"{missing} have no embedding" if vector is None else "its embedding is zero"
                problems.append(f"{describe(key)} ({why})")
                found.append(("", np.nan))
                continue
            similarity = unit @ (vector / np.linalg.norm(vector))
            best = int(np.argmax(similarity))
            found.append((names[best], float(similarity[best])))
        self._refuse(
            problems,
            fix="pass perturbation_features= at fit covering those perturbations; use "
            "'context_shift' or 'mean' for unseen contexts.",
        )
        return found

    def _effects(self, keys: list[ConditionKey]) -> np.ndarray:
        found = self._neighbors(keys)
        table = self.conditions_
        out = np.zeros((len(keys), len(self.genes_)))
        for i, ((context, _, dose), (neighbor, _)) in enumerate(zip(keys, found, strict=True)):
            rows = (table[CONTEXT].to_numpy() == context) & (
                table[PERTURBATION].to_numpy() == neighbor
            )
            same_dose = rows & (table[DOSE].to_numpy() == dose)
            out[i] = self.delta_[same_dose if same_dose.any() else rows].mean(axis=0)
        return out

    def _prediction_info(self) -> dict[str, Any]:
        return {"embedding": self.embedding_}

    def _array_names(self) -> tuple[str, ...]:
        extra = "external_embedding_" if self.embedding_ == "external" else "gene_embedding_"
        return ("delta_", extra)

    def _json_names(self) -> tuple[str, ...]:
        return ("embedding_", "external_index_")

    def _check_state(self) -> None:
        super()._check_state()
        if self.embedding_ == "external":
            cols = self.external_embedding_.shape[1] if self.external_embedding_.ndim == 2 else -1
            expect_shape(self, "external_embedding_", (len(self.external_index_), cols))
        elif self.embedding_ == "gene":
            cols = self.gene_embedding_.shape[1] if self.gene_embedding_.ndim == 2 else -1
            expect_shape(self, "gene_embedding_", (len(self.genes_), cols))
        else:
            raise ModelFormatError(
                f"unknown {self.name} embedding {self.embedding_!r} in model.json."
            )
