"""The linear baseline of Ahlmann-Eltze, Huber & Anders (Nat Methods 2025): Y ≈ G W Pᵀ + b."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, split_combination
from ._checks import is_genetic
from ._conditions import ConditionKey, condition_keys, dose_components
from ._conditions import condition_label as describe
from ._effects import FeatureEffectModel, training_effects
from ._embedding import embed_label, gene_embedding, row_scores, validated_embedding
from ._errors import ModelFormatError
from ._model import expect_shape

_MODES = ("auto", "gene", "pca", "external")


class _Lookups(NamedTuple):
    names: dict[str, int]  # gene (or external perturbation) name -> embedding row
    conditions: dict[ConditionKey, int]  # training condition -> row of conditions_
    by_treatment: dict[tuple[str, str], list[int]]  # (perturbation, dose) -> rows, any context


def solve_bilinear_ridge(y: np.ndarray, g: np.ndarray, p: np.ndarray, ridge: float) -> np.ndarray:
    """``W = (GᵀG + λI)⁻¹ Gᵀ Y P (PᵀP + λI)⁻¹``: the paper's closed-form ridge solution.

    ``y`` is genes x conditions, ``g`` genes x K, ``p`` conditions x K'; returns K x K'.
    """
    left = g.T @ g + ridge * np.eye(g.shape[1])
    right = p.T @ p + ridge * np.eye(p.shape[1])
    try:
        w = np.linalg.solve(left, g.T @ y @ p)
        return np.linalg.solve(right.T, w.T).T
    except np.linalg.LinAlgError:
        raise ValueError(
            "linear.fit: the ridge system is singular (ridge=0 with rank-deficient embeddings). "
            "Fix: use ridge > 0 (the paper uses 0.1)."
        ) from None


class LinearBaseline(FeatureEffectModel):
    """Bilinear ridge model of perturbation effects: ``Y ≈ G W Pᵀ + b``.

    ``Y`` (genes x training conditions) holds the training effects (pseudobulk mean minus the
    context's control mean, as ``change = X - baseline`` in the paper's code); ``b`` is the
    row mean of ``Y`` (the mean training effect, per context); ``G`` (genes x K) is the gene
    embedding: the top-K principal components of the genes over all training pseudobulk profiles
    (perturbed and control), as ``prcomp`` on the genes x profiles matrix in the paper; ``P``
    (conditions x K') the perturbation embedding; and
    ``W = (GᵀG + λI)⁻¹ Gᵀ (Y - b) P (PᵀP + λI)⁻¹``. The prediction for condition ``(c, p)`` is
    the profile ``mean(controls of c) + G W P[p] + b_c`` (clipped at 0): a mean, so the model
    ``predicts = "pseudobulk"``. With ``P[p] = 0`` it reduces to the mean baseline.

    Perturbation embeddings (``embedding``):

    ``"gene"``
        The paper's trick for genetic perturbations: ``P[p] = G[target of p]``, the gene
        embedding row of the targeted gene. Seen and unseen perturbations are embedded the same
        way, so unseen perturbations whose targets are training genes are predicted; training
        conditions whose targets are not in the gene list are left out of the fit (as in the
        paper) and refused at prediction.
    ``"pca"``
        ``P`` = top-K principal-component scores of the training conditions' effects (the
        paper's ``extract_pert_embedding_pca.R``, restricted to training data). Only training
        conditions (or combinations of them, as sums) can be predicted; others are refused.
    ``"external"``
        A ``perturbation_features`` DataFrame (rows = perturbation names, e.g. GO/STRING
        spectral or drug fingerprints) given to :meth:`fit`; any perturbation with a row (or a
        combination whose components all have rows) is predicted.
    ``"auto"`` (default)
        ``"external"`` when ``perturbation_features`` is given, else ``"gene"`` when every
        training perturbation is genetic (CRISPR), else ``"pca"``.

    Seen and unseen perturbations always share one embedding space: ``W`` is learned in it, so
    mixing spaces would give silently wrong predictions. A combination without its own row is
    embedded as the sum of its components' embeddings. ``"gene"`` and ``"external"`` embed a
    perturbation independently of its dose (all doses get one prediction); ``"pca"`` is
    dose-resolved. Contexts without perturbed training cells are refused (no ``b_c``).

    Deviations from the paper's scripts, for a pooled multi-context fit: ``b`` is per context,
    and ``Y`` has no column for the control (whose effect is 0 by construction; the paper's
    ``run_linear_pretrained_model.R`` averages it into ``b``, shrinking ``b`` by ``n/(n+1)``).
    With one context and ``"gene"`` embeddings it is otherwise the paper's model.

    Parameters
    ----------
    n_components
        K, the number of principal components of the gene (and ``"pca"``) embedding (paper: 10).
    ridge
        λ, the ridge penalty on both sides (paper: 0.1).
    embedding
        ``"auto"``, ``"gene"``, ``"pca"`` or ``"external"`` (see above).

    References
    ----------
    Ahlmann-Eltze, Huber & Anders, "Deep-learning-based gene perturbation effect prediction does
    not yet outperform simple linear baselines", Nat Methods 2025;
    github.com/const-ae/linear_perturbation_prediction-Paper (``run_linear_pretrained_model.R``).
    """

    name = "linear"
    predicts = "pseudobulk"

    def __init__(
        self, *, n_components: int = 10, ridge: float = 0.1, embedding: str = "auto"
    ) -> None:
        self.n_components = n_components
        self.ridge = ridge
        self.embedding = embedding

    def _fit(
        self,
        train: AnnData,
        *,
        perturbation_features: pd.DataFrame | None = None,
        **fit_params: Any,
    ) -> None:
        """Fit ``W`` and ``b`` on the training cells (``fit(adata, perturbation_features=...)``).

        Parameters
        ----------
        train
            The validated training cells.
        perturbation_features
            Optional DataFrame, one row per perturbation name (and optionally per combination
            label), numeric columns: the perturbation embedding ``P`` (``embedding="external"``).
        """
        self._check_params(perturbation_features)
        external = (
            validated_embedding(perturbation_features, owner=self.name)
            if perturbation_features is not None
            else None
        )
        if len(self.conditions_) == 0:
            raise ValueError(
                "linear.fit: no perturbed training cells. Fix: include perturbed cells in the "
                "training split."
            )
        mode = self.embedding
        if mode == "auto":
            genetic = is_genetic(self.perturbation_types_)
            mode = "external" if external is not None else ("gene" if genetic else "pca")
        effects = training_effects(train, self.conditions_)
        profiles = np.vstack([effects.expression, effects.control_expression])
        self.embedding_: str = mode
        self.gene_embedding_: np.ndarray = gene_embedding(profiles, self.n_components)
        self.n_components_: int = int(self.gene_embedding_.shape[1])
        self.external_index_: list[str] = external[0] if external is not None else []
        if external is not None:
            self.external_embedding_: np.ndarray = external[1]
        if mode == "pca":
            self.condition_embedding_: np.ndarray = row_scores(effects.delta, self.n_components)

        keys = condition_keys(self.conditions_)
        lookups = self._lookups()
        embedded = [self._embed(k, lookups)[0] for k in keys]
        used = [i for i, e in enumerate(embedded) if e is not None]
        self.dropped_conditions_: list[list[str]] = [
            list(k) for k, e in zip(keys, embedded, strict=True) if e is None
        ]
        if not used:
            raise ValueError(
                f"linear.fit: no training condition has a perturbation embedding (mode "
                f"{mode!r}; e.g. {describe(keys[0])}: {self._embed(keys[0], lookups)[1]}). Fix: pass "
                "perturbation_features= or use embedding='pca'."
            )
        contexts = self.conditions_[CONTEXT].to_numpy()[used]
        delta = effects.delta[used]
        self.center_contexts_: list[str] = sorted(set(contexts))
        self.center_: np.ndarray = np.vstack(
            [delta[contexts == c].mean(axis=0) for c in self.center_contexts_]
        )
        centred = delta - self.center_[[self.center_contexts_.index(c) for c in contexts]]
        p = np.vstack([e for e in embedded if e is not None])  # the rows of `used`, in order
        self.coef_: np.ndarray = solve_bilinear_ridge(
            centred.T, self.gene_embedding_, p, float(self.ridge)
        )

    def _check_params(self, perturbation_features: pd.DataFrame | None) -> None:
        n = self.n_components
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"linear: 'n_components' must be an integer >= 1 (got {n!r}).")
        if not np.isfinite(self.ridge) or self.ridge < 0:
            raise ValueError(f"linear: 'ridge' must be a finite number >= 0 (got {self.ridge!r}).")
        if self.embedding not in _MODES:
            raise ValueError(
                f"linear: 'embedding' must be one of {_MODES} (got {self.embedding!r})."
            )
        given = perturbation_features is not None
        if given and self.embedding in ("gene", "pca"):
            raise ValueError(
                f"linear: perturbation_features was given but embedding={self.embedding!r} "
                "ignores it. Fix: embedding='external' (or 'auto')."
            )
        if not given and self.embedding == "external":
            raise ValueError(
                "linear: embedding='external' needs fit(..., perturbation_features=DataFrame)."
            )

    # --- embeddings ---------------------------------------------------------------------------

    def _lookups(self) -> _Lookups:
        keys = condition_keys(self.conditions_)
        by_treatment: dict[tuple[str, str], list[int]] = {}
        for i, k in enumerate(keys):
            by_treatment.setdefault(k[1:], []).append(i)
        names = self.external_index_ if self.embedding_ == "external" else self.genes_
        return _Lookups(
            names={n: i for i, n in enumerate(names)},
            conditions={k: i for i, k in enumerate(keys)},
            by_treatment=by_treatment,
        )

    def _embed(self, key: ConditionKey, lookups: _Lookups) -> tuple[np.ndarray | None, str]:
        """The perturbation embedding of a condition, or None and the reason there is none."""
        context, perturbation, dose = key
        if self.embedding_ == "gene":
            vector, missing = embed_label(perturbation, lookups.names, self.gene_embedding_)
            reason = f"target(s) {missing} are not training genes, so G[target] does not exist"
        elif self.embedding_ == "external":
            vector, missing = embed_label(perturbation, lookups.names, self.external_embedding_)
            reason = f"{missing} have no row in perturbation_features"
        else:
            vector = self._pca_embed(context, perturbation, dose, lookups)
            reason = "not a training condition, and 'pca' embeddings exist only for those"
        return vector, reason

    def _pca_embed(
        self, context: str, perturbation: str, dose: str, lookups: _Lookups
    ) -> np.ndarray | None:
        row = lookups.conditions.get((context, perturbation, dose))
        if row is not None:
            return self.condition_embedding_[row]
        elsewhere = lookups.by_treatment.get((perturbation, dose))
        if elsewhere:  # seen in other contexts: the average of its embeddings there
            return self.condition_embedding_[elsewhere].mean(axis=0)
        components = split_combination(perturbation)
        if len(components) < 2:
            return None
        parts = [
            self._pca_embed(context, c, d, lookups)
            for c, d in zip(components, dose_components(perturbation, dose), strict=True)
        ]
        present = [part for part in parts if part is not None]
        if len(present) < len(parts):
            return None
        return np.sum(present, axis=0)

    def _effects(self, keys: list[ConditionKey]) -> np.ndarray:
        gw = self.gene_embedding_ @ self.coef_
        center_row = {c: i for i, c in enumerate(self.center_contexts_)}
        lookups = self._lookups()
        out = np.zeros((len(keys), len(self.genes_)))
        problems = []
        for i, key in enumerate(keys):
            if key[0] not in center_row:
                problems.append(f"{describe(key)} (no perturbed training cells in that context)")
                continue
            vector, reason = self._embed(key, lookups)
            if vector is None:
                problems.append(f"{describe(key)} ({reason})")
                continue
            out[i] = gw @ vector + self.center_[center_row[key[0]]]
        self._refuse(
            problems,
            fix="pass perturbation_features= at fit for unseen perturbations; use "
            "'context_shift' or 'mean' for unseen contexts.",
        )
        return out

    def _prediction_info(self) -> dict[str, Any]:
        return {"embedding": self.embedding_, "dose_aware": self.embedding_ == "pca"}

    # --- persistence ---------------------------------------------------------------------------

    def _array_names(self) -> tuple[str, ...]:
        names: tuple[str, ...] = ("gene_embedding_", "coef_", "center_")
        if self.embedding_ == "pca":
            names += ("condition_embedding_",)
        if self.embedding_ == "external":
            names += ("external_embedding_",)
        return names

    def _json_names(self) -> tuple[str, ...]:
        return (
            "embedding_",
            "n_components_",
            "center_contexts_",
            "dropped_conditions_",
            "external_index_",
        )

    def _check_state(self) -> None:

        super()._check_state()
        if self.embedding_ not in _MODES[1:]:
            raise ModelFormatError(f"unknown linear embedding {self.embedding_!r} in model.json.")
        n_genes, k = len(self.genes_), self.n_components_
        expect_shape(self, "gene_embedding_", (n_genes, k))
        expect_shape(self, "center_", (len(self.center_contexts_), n_genes))
        k_p = k  # embedding "gene"
        if self.embedding_ == "pca":
            k_p = self.condition_embedding_.shape[1]
            expect_shape(self, "condition_embedding_", (len(self.conditions_), k_p))
        if self.embedding_ == "external":
            k_p = self.external_embedding_.shape[1]
            expect_shape(self, "external_embedding_", (len(self.external_index_), k_p))
        expect_shape(self, "coef_", (k, k_p))
