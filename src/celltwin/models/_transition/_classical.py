"""The classical half of ``transition``, fitted: the latent space, each context's control
summary, cell states, fold-change inputs, kernel bandwidths and perturbation features, from
which :meth:`ClassicalEstimate._transfer` builds the closed-form estimates (:mod:`._features`)
that the network then corrects."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from sklearn.decomposition import PCA

from ..._keys import CONTEXT, CONTROL, PERTURBATION, split_combination
from .._cell import CellModel
from .._checks import is_genetic
from .._conditions import ConditionKey, as_conditions, condition_keys
from .._conditions import condition_label as describe
from .._effects import TrainingEffects, training_effects
from .._embedding import gene_embedding as data_gene_embedding
from .._embedding import validated_embedding
from .._errors import UnpredictableConditionsError, UnseenConditionError
from .._refusals import refusal_message
from .._sources import source_table
from ._bandwidths import choose_dose_bandwidth, choose_tau
from ._cells import expressed_level, latent_summary
from ._domain import DomainScorer, domain_state, references
from ._estimate import FOLD_CELLS, ComponentFeatures, Estimate, FoldChange, control_profile
from ._features import Transfer
from ._intervals import error_variance, held_out_errors
from ._origins import refusal, refusals_table, resolve_gene_prior
from ._query import _QueryContexts
from ._sources import estimate_sources
from ._states import CellStates, fit_states

_MAX_PCA_CELLS: Final = 20_000


@dataclass(frozen=True)
class TrainingCells:
    """The training cells as the fit uses them, beside the fitted state.

    ``x``: dense log1p expression; ``z``: latent; ``contexts`` and ``is_control`` per cell;
    ``keys``: the training conditions (rows of ``delta_``); ``condition_rows``: each
    condition's cells.
    """

    x: np.ndarray
    z: np.ndarray
    contexts: np.ndarray
    is_control: np.ndarray
    keys: list[ConditionKey]
    condition_rows: list[np.ndarray]


class ClassicalEstimate(CellModel):
    """Fitted state and estimates of the classical half (base of :class:`TransitionModel`).

    Subclasses store the parameters declared here in ``__init__``.
    """

    n_latent: int
    gene_prior: str
    ridge: float
    fold_change: bool
    cell_states: bool
    seed: int

    delta_: np.ndarray
    pca_mean_: np.ndarray
    pca_components_: np.ndarray
    latent_scale_: float
    n_latent_: int
    context_summary_: np.ndarray
    n_state_cells_: int
    states_latent_: np.ndarray
    states_context_: np.ndarray
    states_label_: np.ndarray
    states_n_: np.ndarray
    states_index_: np.ndarray
    states_effects_: np.ndarray
    states_cells_: np.ndarray
    lin_ctrl_: np.ndarray
    lin_pert_: np.ndarray
    expressed_level_: np.ndarray
    tau_: float
    tau_losses_: dict[str, float]
    dose_bandwidth_: float
    dose_losses_: dict[str, float]
    feature_source_: str
    feature_names_: list[str]
    feature_matrix_: np.ndarray
    components_: list[str]
    fold_share_: np.ndarray
    error_var_: np.ndarray
    #: In-domain score state (:mod:`._domain`): held-out distances per kind, widening slope.
    domain_: dict[str, Any]
    #: Control profiles of the training contexts, during fit only (not fitted state).
    _fit_controls: dict[str, np.ndarray]

    def _fit_classical(
        self, train: AnnData, external: tuple[list[str], np.ndarray] | None
    ) -> TrainingCells:
        """Fit the classical half on the training cells; return them as the ensemble needs."""
        x = train.X.toarray() if sp.issparse(train.X) else np.asarray(train.X)
        x = np.asarray(x, dtype=np.float64)
        effects = training_effects(train, self.conditions_)
        self.delta_ = effects.delta
        self._fit_latent(x)
        z = self._encode(x)
        obs = train.obs
        contexts = obs[CONTEXT].astype(str).to_numpy()
        is_control = obs[PERTURBATION].astype(str).to_numpy() == CONTROL
        self.context_summary_ = np.vstack(
            [latent_summary(z[is_control & (contexts == c)]) for c in self.contexts_]
        )
        keys = condition_keys(self.conditions_)
        condition_rows = _condition_rows(obs, keys)
        self._fit_states(z, x, contexts, is_control, condition_rows, keys)
        self._fit_fold_change(x, contexts, is_control, condition_rows)
        self._fit_bandwidths(keys)
        self._fit_features(effects, external)
        self.components_ = sorted(
            {c for p in self.conditions_[PERTURBATION] for c in split_combination(p)}
        )
        self.fold_share_ = self._fold_share()
        self.error_var_ = self._error_variance()
        self.domain_ = domain_state(self._domain_scorer().held_out())
        return TrainingCells(x, z, contexts, is_control, keys, condition_rows)

    def _fit_bandwidths(self, keys: list[ConditionKey]) -> None:
        tau, losses = choose_tau(keys, self.delta_, self._context_latent())
        self.tau_ = float(tau) if np.isfinite(tau) else -1.0  # -1: equal weights
        self.tau_losses_ = losses
        bandwidth, dose_losses = choose_dose_bandwidth(keys, self.delta_, self._context_latent())
        # -1: infinite (every measured dose weighs the same); JSON has no inf.
        self.dose_bandwidth_ = float(bandwidth) if np.isfinite(bandwidth) else -1.0
        self.dose_losses_ = dose_losses

    def _fit_states(
        self,
        z: np.ndarray,
        x: np.ndarray,
        contexts: np.ndarray,
        is_control: np.ndarray,
        condition_rows: list[np.ndarray],
        keys: list[ConditionKey],
    ) -> None:
        """Cell states of the training contexts (none with one context: nothing to transfer)."""
        states = None
        if self.cell_states and len(self.contexts_) >= 2:
            states = fit_states(
                z, x, contexts, is_control, self.contexts_, condition_rows,
                [k[0] for k in keys], self.delta_, seed=self.seed,
            )  # fmt: skip
        self.n_state_cells_ = 0 if states is None else len(states.latent)
        if states is not None:
            self.states_latent_ = states.latent
            self.states_context_ = states.context
            self.states_label_ = states.label
            self.states_n_ = states.n_states
            self.states_index_ = states.index
            self.states_effects_ = states.effects
            self.states_cells_ = states.cells

    def _states(self) -> CellStates | None:
        if self.n_state_cells_ == 0:
            return None
        # Loaded arrays come back as written; asarray avoids copies on every transfer.
        return CellStates(
            names=tuple(self.contexts_),
            latent=self.states_latent_,
            context=np.asarray(self.states_context_, dtype=np.int64),
            label=np.asarray(self.states_label_, dtype=np.int64),
            n_states=np.asarray(self.states_n_, dtype=np.int64),
            index=np.asarray(self.states_index_, dtype=np.int64).reshape(-1, 2),
            effects=self.states_effects_,
            cells=np.asarray(self.states_cells_, dtype=np.int64).reshape(-1, 2),
        )

    def _fit_fold_change(
        self,
        x: np.ndarray,
        contexts: np.ndarray,
        is_control: np.ndarray,
        condition_rows: list[np.ndarray],
    ) -> None:
        """Linear means of the conditions and controls, each context's control profile, and
        each gene's expressed level (for :func:`sparse_gain`), from one seeded generator."""
        rng = np.random.default_rng(self.seed)
        self.lin_ctrl_ = np.zeros((len(self.contexts_), x.shape[1]))
        self._fit_controls = {}
        for j, c in enumerate(self.contexts_):
            rows = np.flatnonzero(is_control & (contexts == c))
            self.lin_ctrl_[j] = np.expm1(x[rows]).mean(axis=0)
            if len(rows) > FOLD_CELLS:
                rows = np.sort(rng.choice(rows, FOLD_CELLS, replace=False))
            self._fit_controls[c] = control_profile(x[rows])
        self.lin_pert_ = np.vstack([np.expm1(x[r]).mean(axis=0) for r in condition_rows])
        rows = np.arange(len(x))
        if len(rows) > FOLD_CELLS:
            rows = np.sort(rng.choice(rows, FOLD_CELLS, replace=False))
        self.expressed_level_ = expressed_level(x[rows])

    def _fold_share(self) -> np.ndarray:
        """Per gene, the fold-change transfer's weight (0 everywhere when it is off)."""
        fold = None
        if self.fold_change:
            fold = self._transfer(controls=self._fit_controls, share="fit").fold_change
        share = None if fold is None else fold.share
        return np.zeros(len(self.genes_)) if share is None else share

    def _fit_latent(self, x: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        rows = (
            np.sort(rng.choice(len(x), _MAX_PCA_CELLS, replace=False))
            if len(x) > _MAX_PCA_CELLS
            else np.arange(len(x))
        )
        k = int(min(self.n_latent, len(rows) - 1, x.shape[1]))
        if k < 1:
            raise ValueError(
                f"transition.fit: {len(rows)} training cells x {x.shape[1]} genes are too few "
                "for a latent space. Fix: train on more cells."
            )
        # Exact SVD when the matrix is small (faster there, and no randomness at all).
        small = min(len(rows), x.shape[1]) <= 500
        pca = PCA(n_components=k, svd_solver="full" if small else "randomized")
        pca.set_params(random_state=self.seed)
        pca.fit(x[rows])
        self.pca_mean_ = pca.mean_.astype(np.float64)
        self.pca_components_ = pca.components_.astype(np.float64)
        total = float(np.sum(pca.explained_variance_))
        self.latent_scale_ = float(np.sqrt(total / k)) if total > 0 else 1.0
        self.n_latent_ = k

    def _encode(self, x: np.ndarray) -> np.ndarray:
        return (x - self.pca_mean_) @ self.pca_components_.T / self.latent_scale_

    def _encode_delta(self, delta: np.ndarray) -> np.ndarray:
        return delta @ self.pca_components_.T / self.latent_scale_

    def _context_latent(self, extra: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        k = self.n_latent_
        out = {c: self.context_summary_[i, :k] for i, c in enumerate(self.contexts_)}
        out.update(extra or {})
        return out

    def _fit_features(
        self, effects: TrainingEffects, external: tuple[list[str], np.ndarray] | None
    ) -> None:
        names: list[str] = []
        matrix = np.zeros((0, 0))
        components = sorted(
            {c for p in self.conditions_[PERTURBATION] for c in split_combination(p)}
        )
        if external is not None:
            names, matrix = external
            source = "external"
        elif self.gene_prior == "none" or not is_genetic(self.perturbation_types_):
            source = "none"
        else:
            source = resolve_gene_prior(self.gene_prior, components)
        if source == "data":
            profiles = np.vstack([effects.expression, effects.control_expression])
            matrix = data_gene_embedding(profiles, 10)
            matrix = matrix / max(float(np.abs(matrix).max()), 1e-12)
            names = list(self.genes_)
        elif source not in ("external", "none"):
            from ...priors import gene_embedding

            # Every gene of the prior gets its features (saved with the model), so any symbol
            # it knows can be predicted later, measured or not; rows are the same as those of
            # an embedding cut to the data's genes (one SVD over the whole prior).
            emb = gene_embedding(source, seed=self.seed)
            names, matrix = [str(g) for g in emb.index], emb.to_numpy(dtype=np.float64)
        self.feature_source_ = source
        self.feature_names_ = names
        if names:
            self.feature_matrix_ = np.asarray(matrix, dtype=np.float64)

    def add_perturbation_features(self, table: pd.DataFrame) -> None:
        """Give perturbations the fit did not see features of the fitted kind, in place.

        For features that are a fixed function of a perturbation (drug fingerprints from a
        SMILES library, ``celltwin.models.fit(..., drugs=FILE)``), new drugs can be added after
        the fit: rows of perturbations the model already has are left as they were.

        Parameters
        ----------
        table
            Rows = perturbation names, the same columns as at fit (e.g.
            ``celltwin.priors.drug_embedding(celltwin.priors.read_smiles(path))``).
        """
        self._check_fitted()
        if self.feature_source_ != "external" or not self.feature_names_:
            raise ValueError(
                f"{self.name}: features can be added only to a model fitted with "
                f"perturbation_features (this one: {self.feature_source_!r}). Fix: fit with "
                "the library (celltwin fit --drugs FILE)."
            )
        names, matrix = validated_embedding(table, owner=self.name)
        width = self.feature_matrix_.shape[1]
        if matrix.shape[1] != width:
            raise ValueError(
                f"{self.name}: the added features have {matrix.shape[1]} columns, the fitted "
                f"ones {width}. Fix: build them the same way (e.g. the same fingerprint size)."
            )
        known = set(self.feature_names_)
        new = [i for i, n in enumerate(names) if n not in known]
        self.feature_names_ = [*self.feature_names_, *(names[i] for i in new)]
        self.feature_matrix_ = np.vstack([self.feature_matrix_, matrix[new]])

    def _features(self) -> ComponentFeatures | None:
        if not self.feature_names_:
            return None
        # Built once per fitted feature table (its name index of ~20,000 prior genes took
        # 8 ms, asked for several times per prediction); a new table (fit, added features,
        # load) is a new object and gets its own.
        cached = self.__dict__.get("_feature_cache")
        if (
            cached is None
            or cached[0] is not self.feature_names_
            or cached[1] is not (self.feature_matrix_)
        ):
            features = ComponentFeatures(self.feature_names_, self.feature_matrix_)
            cached = (self.feature_names_, self.feature_matrix_, features)
            self.__dict__["_feature_cache"] = cached
        return cached[2]

    def _tau(self) -> float:
        return np.inf if self.tau_ < 0 else self.tau_

    def _dose_bandwidth(self) -> float:
        return np.inf if self.dose_bandwidth_ < 0 else self.dose_bandwidth_

    def _transfer(
        self,
        rows: Sequence[int] | None = None,
        extra: dict[str, np.ndarray] | None = None,
        *,
        controls: Mapping[str, np.ndarray] | None = None,
        targets: dict[str, np.ndarray] | None = None,
        share: str = "fitted",
    ) -> Transfer:
        """The classical estimates from training conditions ``rows`` (default: all).

        ``controls``: log1p control cells by context, for the fold-change half of the context
        transfer (without them it is log-space only). ``targets``: latent control cells of
        query contexts that are not training contexts, for the cell-state transfer (a training
        context's come from the fitted states). ``share``: ``"fitted"`` uses the per-gene
        weights learned at fit; ``"fit"`` learns them from ``rows`` (leave-one-context-out), as
        each ensemble member does without its validation conditions.
        """
        keys = condition_keys(self.conditions_)
        rows = list(range(len(keys))) if rows is None else list(rows)
        fold = None
        if self.fold_change and controls is not None:
            index = [self.contexts_.index(keys[i][0]) for i in rows]
            fold = FoldChange(self.lin_pert_[rows], self.lin_ctrl_[index], controls)
        transfer = Transfer(
            [keys[i] for i in rows],
            self.delta_[rows],
            self._context_latent(extra),
            tau=self._tau(),
            features=self._features(),
            ridge=float(self.ridge),
            fold_change=fold,
            dose_bandwidth=self._dose_bandwidth(),
            states=self._states(),
            targets=targets,
            model_rows=rows,
        )
        if fold is not None:
            learned = transfer.fold_share() if share == "fit" else self.fold_share_
            transfer.fold_change = dataclasses.replace(fold, share=learned)
        return transfer

    def _error_variance(self) -> np.ndarray:
        """Per view and gene: error variance of the classical estimate on held-out conditions."""
        transfer = self._transfer(controls=self._fit_controls)
        errors = held_out_errors(transfer, self.delta_, self.seed)
        return error_variance(errors, self.delta_, len(self.genes_))

    def _domain_scorer(self, transfer: Transfer | None = None) -> DomainScorer:
        return DomainScorer(self._transfer() if transfer is None else transfer, self.contexts_)

    def _estimates(self, table: pd.DataFrame, query: _QueryContexts) -> list[Estimate | None]:
        return self._scored_estimates(table, query)[0]

    def _scored_estimates(
        self, table: pd.DataFrame, query: _QueryContexts
    ) -> tuple[list[Estimate | None], np.ndarray]:
        """Each condition's classical estimate (``None`` for controls) and in-domain score
        (:mod:`._domain`); raise :class:`UnseenConditionError` for any it cannot estimate."""
        transfer = self._transfer(
            extra=query.latents(), controls=query.fold_controls(), targets=query.cell_latents()
        )
        scorer = self._domain_scorer(transfer)
        reference = references(self.domain_)
        out: list[Estimate | None] = []
        scores = np.ones(len(table))
        refused = []
        for i, key in enumerate(condition_keys(table)):
            if key[1] == CONTROL:
                out.append(None)
                scores[i] = scorer.score(key, None, query.latent(key[0]), reference)
                continue
            est = transfer.estimate(key, query.latent(key[0]))
            if est is None:
                refused.append((key, *self._why_not(key)))
            else:
                scores[i] = scorer.score(key, est.source, query.latent(key[0]), reference)
            out.append(est)
        if refused:
            raise self._unpredictable(refused)
        return out, scores

    def sources(
        self,
        adata: AnnData | None = None,
        *,
        conditions: pd.DataFrame | Sequence[Sequence[str]],
        top: int | None = None,
    ) -> pd.DataFrame:
        """What each condition's prediction borrowed from: training conditions and weights.

        The sources of the classical estimate the prediction starts from (the network only
        corrects it): the condition itself when measured; else the treatment's effects in the
        other contexts, weighted by cell states or the context kernel; else its other doses;
        else a combination's parts; else the training perturbations with the nearest prior
        features (see :mod:`._sources` for each kind).

        Parameters
        ----------
        adata
            Holds the control cells of the asked contexts, as for :meth:`predict`; needed only
            for contexts the model was not trained on (``None``: training contexts only).
        conditions
            As in :meth:`predict`.
        top
            Sources kept per condition, heaviest first (``None``: all; mixture weights then
            sum to 1 per condition).

        Returns
        -------
        pandas.DataFrame
            Columns ``condition`` (``context:perturbation[:dose]``), ``context`` (the source's),
            ``kind``, ``source`` (``perturbation[@dose]``) and ``weight``.
        """
        self._check_fitted()
        table = as_conditions(conditions)
        keys = [k for k in condition_keys(table) if k[1] != CONTROL]
        unknown = sorted({k[0] for k in keys} - set(self.contexts_))
        if unknown and adata is None:
            raise ValueError(
                f"{self.name}.sources: context(s) {unknown} were not trained on. Fix: pass "
                "adata holding their control cells (as for predict)."
            )
        if adata is None:
            transfer = self._transfer()
            found = [estimate_sources(transfer, k, self._context_latent()[k[0]]) for k in keys]
        else:
            controls, contexts = self._query_controls(adata)
            self._pick_controls(table, contexts, n_cells=None, seed=0)  # checks the contexts
            query = _QueryContexts(self, controls, contexts)
            transfer = self._transfer(extra=query.latents(), targets=query.cell_latents())
            found = [estimate_sources(transfer, k, query.latent(k[0])) for k in keys]
        missing = [describe(k) for k, f in zip(keys, found, strict=True) if not f]
        if missing:
            raise UnseenConditionError(
                f"{self.name} cannot predict {'; '.join(missing[:5])}, so it has no sources."
            )
        return source_table(keys, found, top=top)

    def _why_not(self, key: ConditionKey) -> tuple[str, str]:
        """Reason and suggestion for a condition without an estimate (:func:`refusal`)."""
        features = self._features()
        return refusal(
            key,
            measured=set(self.components_),
            featured=set() if features is None else set(features.rows),
            feature_source=self.feature_source_,
            genetic=is_genetic(self.perturbation_types_),
        )

    def _unpredictable(
        self, refused: list[tuple[ConditionKey, str, str]]
    ) -> UnpredictableConditionsError:
        table = refusals_table(refused)
        return UnpredictableConditionsError(refusal_message(self.name, table), table)


def _condition_rows(obs: pd.DataFrame, keys: list[ConditionKey]) -> list[np.ndarray]:
    """The cells (rows of ``obs``) of each condition of ``keys``."""
    rows: dict[ConditionKey, list[int]] = {}
    for i, t in enumerate(condition_keys(obs)):
        rows.setdefault(t, []).append(i)
    return [np.asarray(rows[k], dtype=np.int64) for k in keys]
