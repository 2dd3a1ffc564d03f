"""``transition``: celltwin's hybrid, distributional perturbation model (AnnData in, AnnData out)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData
from safetensors.numpy import load_file, save_file
from scipy.stats import norm
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from ..._keys import CONTEXT, CONTROL, DOSE, PERTURBATION, SPLIT, split_combination
from .._base import (
    N_CELLS,
    ConditionKey,
    Model,
    ModelFormatError,
    UnseenConditionError,
    _positive_int,
    as_conditions,
    dose_components,
    is_genetic,
)
from .._effects import condition_keys, describe, expect_shape, training_effects
from .._embedding import gene_embedding as data_gene_embedding
from .._embedding import validated_embedding
from ._features import (
    VIEWS,
    ComponentFeatures,
    Estimate,
    FoldChange,
    Transfer,
    choose_dose_bandwidth,
    choose_tau,
    control_profile,
    fold_change_effect,
    log_dose,
)
from ._module import TransitionModule
from ._states import POOL_CELLS, CellStates, fit_states
from ._train import Examples, MemberResult, Pools, Settings, as_tensor, train_member

_CHECKPOINT_FILE: Final = "checkpoint.json"
_MAX_PCA_CELLS: Final = 20_000
_BATCH_SIZE: Final = 16
_EVAL_EVERY: Final = 10
_WEIGHT_DECAY: Final = 1e-4
_PERT_DIM: Final = 16
_VAL_FRACTION: Final = 0.2
#: Pseudo-count (in conditions) shrinking each gene's error variance towards the view's mean.
_SHRINK: Final = 3.0
#: Control cells per context from which its quantile profile is taken (fold-change transfer).
_FOLD_CELLS: Final = 20_000


class TransitionModel(Model):
    """Hybrid, distributional perturbation model: a classical estimate plus a learned correction.

    **Classical half.** A condition's effect (mean change of log1p expression from its
    context's controls) is first estimated in closed form (:mod:`._features`): the measured
    effect when the condition was trained; else the treatment's effect in the other contexts,
    resolved to cell states (``cell_states``: each control cell of the context borrows the
    effect of the sub-states of its nearest training control cells in those contexts) or
    weighted by how similar each context's controls are (kernel bandwidth chosen by
    leave-one-context-out on the training effects; equal weights = ``context_shift``), per gene
    blended with the same transfer as a fold change of the context's own expression (weights
    from the two estimates' leave-one-context-out errors; ``fold_change``); else the
    treatment's effects at its other measured doses in the same context, weighted by closeness
    in log dose (bandwidth by leave-one-dose-out; infinite = the mean over its doses); else, for
    a combination, the sum of its parts plus an interaction law learned from the measured
    combinations (``additive`` when there are none); else a ridge regression from
    perturbation features (``linear`` with prior features).

    **Learned half.** In a latent space (PCA of the training cells, ``n_latent`` dimensions) a
    small network maps each control cell, its context's control-population summary (latent
    mean and sd), the classical estimate, the perturbation's embedding (learned vectors of seen
    components plus prior features plus log-dose; combinations composed from parts with a
    learned pairwise interaction) and optional noise to a per-cell correction ``r``. Generated
    cells are ``x_control + estimate + decode(r)`` in gene space (floored at 0 without moving
    each gene's mean, :func:`floor_at_zero`), so every gene keeps the classical estimate and
    the control cell's own detail, and the network adds how the response depends on the cell
    and context state. For a context transfer the fold-change share also spreads the change
    over cells in proportion to each cell's own expression (same mean; the multiplicative part
    leaves a gene alone in a cell that does not express it), and what cells lacking a gene
    gained goes to few of them at the gene's usual level (:func:`sparse_gain`: expression is
    sparse, a gene absent from every control cell must not appear in every generated one). The
    network is trained on training conditions
    whose estimate is recomputed as if they were held out (other contexts only; parts only;
    features only), with the energy distance between generated and true cell sets plus their
    squared mean gap, on sets of sampled cells.

    **Ensemble and uncertainty.** ``n_members`` networks with different seeds, each with early
    stopping on a validation set carved from training data only (one training context's
    perturbed cells when there are at least three such contexts, leave-one-context-out like the
    test task; else a fifth of the perturbations), rotated across members. Each predicted
    gene effect gets an interval (:meth:`predict_effects`): half-width
    ``sqrt(q² v_g + z² ensemble_var_g)`` where ``v_g`` is the gene's error variance of the
    classical estimate on held-out training conditions and ``q`` is calibrated on the members'
    validation errors so that a fraction ``interval`` of them is covered (split conformal).

    Measured conditions are predicted by their measured effect, and combinations whose parts
    were all measured alone in the same context by their sum plus the interaction law (a
    ridge regression of measured combinations on products and same-direction minima/maxima of
    their parts' effects, :func:`._features.pair_features`); the network is not applied to
    either: its correction, learned from other conditions, washed out the interactions the
    law recovers (``sim-combinations`` v3, pairs of measured parts: partial r with the true
    interactions 0.08-0.10 with it, 0.17 without).
    Generated cells of one condition are spread over the members (cell ``i`` from member
    ``i mod n_members``).

    Parameters
    ----------
    n_latent
        PCA dimensions of the latent space (capped by the data).
    hidden, n_layers
        Width and depth of the correction network.
    n_noise
        Noise inputs per generated cell (0: deterministic map).
    n_members
        Ensemble size.
    max_steps
        Optimisation steps per member (early stopping usually ends sooner).
    cells
        Cells sampled per condition per step.
    lr
        AdamW learning rate.
    correction_penalty
        Weight of the mean squared latent correction in the loss.
    patience
        Evaluations (every 10 steps) without validation improvement before stopping.
    interval
        Nominal coverage of the effect intervals.
    gene_prior
        Features of genetic perturbations: ``"data"`` (gene loadings of the training pseudobulk
        profiles, as the ``linear`` baseline), a :func:`celltwin.priors.gene_embedding` source
        (``"go"``, ``"string"``, ``"dorothea"``, ``"go+string"``; needs the shared priors), or
        ``"none"``. Ignored when ``perturbation_features`` is passed to :meth:`fit`.
    ridge
        Ridge penalty of the feature regression.
    fold_change
        Blend, per gene, the log-space context transfer with a multiplicative one (the source
        contexts' weighted stimulated/control ratio of linear means, applied to each control
        cell of the target context), weighted by their leave-one-context-out errors on the
        training conditions. It helps genes a context expresses at a different level than its
        sources (Kang 2018: PearsonΔ on all genes of the classical half 0.906 -> 0.924).
        ``False``: log-space transfer only.
    cell_states
        Resolve the context transfer to cell states (:mod:`._states`): each training
        context's control cells form sub-states (k-means in the latent space) with an effect
        each, and a target context borrows, cell by cell, the effects of its cells' nearest
        training control cells' sub-states, instead of one kernel weight per context (Kang
        2018, top-20 DE PearsonΔ of the log-space transfer, leave-one-context-out on the
        training types: 0.935 -> 0.948). ``False``: context-wide effects, kernel weights.
    seed
        Seed of everything random in :meth:`fit` (same seed and data: identical model).
    time_budget
        Seconds for the whole fit (split over the members); ``None`` for no limit.
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
    n_threads
        CPU threads of torch and of the BLAS (PCA, matrix products) during fit and predict;
        ``None`` uses one (the network is small: on a busy 2-core machine a step took 75 ms with
        one thread and 0.9 s with two, and the PCA of 15,583 x 299 cells took 1.1 s with one
        BLAS thread and 20-34 s with the default).
    progress
        Show a progress bar with the loss.

    References
    ----------
    Lotfollahi, Wolf & Theis (scGen), Nat Methods 2019 (latent response transfer); Adduri et
    al. (Arc Institute State), 2025 (set-level distribution losses); Ahlmann-Eltze, Huber &
    Anders, Nat Methods 2025 (the baselines it starts from); Lakshminarayanan et al., NeurIPS
    2017 (deep ensembles).
    """

    name = "transition"
    predicts = "cells"

    def __init__(
        self,
        *,
        n_latent: int = 50,
        hidden: int = 64,
        n_layers: int = 2,
        n_noise: int = 4,
        n_members: int = 5,
        max_steps: int = 1500,
        cells: int = 64,
        lr: float = 1e-3,
        correction_penalty: float = 0.1,
        patience: int = 15,
        interval: float = 0.9,
        gene_prior: str = "data",
        ridge: float = 1.0,
        fold_change: bool = True,
        cell_states: bool = True,
        seed: int = 0,
        time_budget: float | None = None,
        device: str = "auto",
        n_threads: int | None = None,
        progress: bool = True,
    ) -> None:
        self.n_latent = n_latent
        self.hidden = hidden
        self.n_layers = n_layers
        self.n_noise = n_noise
        self.n_members = n_members
        self.max_steps = max_steps
        self.cells = cells
        self.lr = lr
        self.correction_penalty = correction_penalty
        self.patience = patience
        self.interval = interval
        self.gene_prior = gene_prior
        self.ridge = ridge
        self.fold_change = fold_change
        self.cell_states = cell_states
        self.seed = seed
        self.time_budget = time_budget
        self.device = device
        self.n_threads = n_threads
        self.progress = progress

    # --- fit ------------------------------------------------------------------------------

    def fit(
        self,
        adata: AnnData,
        *,
        split_key: str | None = SPLIT,
        perturbation_features: pd.DataFrame | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
    ) -> Self:
        """Fit the classical estimates and train the ensemble on the training cells.

        Parameters
        ----------
        adata
            Canonical cells x genes, ``X`` in log1p(CP10k).
        split_key
            obs column of the split; only ``"train"`` cells are used.
        perturbation_features
            Prior features of single perturbations: a DataFrame indexed by component name
            (gene symbol, drug name), numeric columns, e.g.
            ``celltwin.priors.drug_embedding(celltwin.priors.read_smiles())`` or
            ``celltwin.priors.gene_embedding("go")``. Lets unseen perturbations be predicted.
        checkpoint_dir
            Folder for checkpoints: each finished ensemble member is written there
            (safetensors + JSON). Fitting again with the same data, parameters and folder
            resumes after the last finished member; a member interrupted mid-way (or cut short
            by ``time_budget``) is retrained from its start, so the result equals an
            uninterrupted fit. Optimiser state is not stored.
        """
        self._check_params()
        external = (
            validated_embedding(perturbation_features, owner=self.name)
            if perturbation_features is not None
            else None
        )
        train = self._start_fit(adata, split_key=split_key)
        if len(self.conditions_) == 0:
            raise ValueError(
                "transition.fit: no perturbed training cells, so there is no effect to learn. "
                "Fix: include perturbed cells in the training split."
            )
        start = time.monotonic()
        with _torch_settings(self._threads()):
            self._fit_all(train, external, checkpoint_dir, start)
        return self

    def _fit(self, train: AnnData) -> None:  # pragma: no cover - fit is overridden
        raise NotImplementedError

    def _fit_all(
        self,
        train: AnnData,
        external: tuple[list[str], np.ndarray] | None,
        checkpoint_dir: str | os.PathLike[str] | None,
        start: float,
    ) -> None:
        x = train.X.toarray() if sp.issparse(train.X) else np.asarray(train.X)
        x = np.asarray(x, dtype=np.float64)
        effects = training_effects(train, self.conditions_)
        self.delta_: np.ndarray = effects.delta
        self._fit_latent(x)
        z = self._encode(x)
        obs = train.obs
        contexts = obs[CONTEXT].astype(str).to_numpy()
        is_control = obs[PERTURBATION].astype(str).to_numpy() == CONTROL
        self.context_summary_: np.ndarray = np.vstack(
            [_summary(z[is_control & (contexts == c)]) for c in self.contexts_]
        )
        keys = condition_keys(self.conditions_)
        condition_rows = _condition_rows(obs, keys)
        self._fit_states(z, x, contexts, is_control, condition_rows, keys)
        self._fit_fold_change(x, contexts, is_control, condition_rows)
        tau, losses = choose_tau(keys, self.delta_, self._context_latent())
        self.tau_: float = float(tau) if np.isfinite(tau) else -1.0  # -1: equal weights
        self.tau_losses_: dict[str, float] = losses
        bandwidth, dose_losses = choose_dose_bandwidth(keys, self.delta_, self._context_latent())
        # -1: infinite (every measured dose weighs the same); JSON has no inf.
        self.dose_bandwidth_: float = float(bandwidth) if np.isfinite(bandwidth) else -1.0
        self.dose_losses_: dict[str, float] = dose_losses
        self._fit_features(effects, external)
        self.components_: list[str] = sorted(
            {c for p in self.conditions_[PERTURBATION] for c in split_combination(p)}
        )
        self.fold_share_: np.ndarray = self._fold_share()
        self.error_var_: np.ndarray = self._error_variance()

        pools = Pools(
            cells=as_tensor(z),
            summary=as_tensor(self.context_summary_),
            controls=[
                torch.as_tensor(np.flatnonzero(is_control & (contexts == c)))
                for c in self.contexts_
            ],
            conditions=[torch.as_tensor(r) for r in condition_rows],
        )
        device = self._device()
        pools = Pools(
            pools.cells.to(device),
            pools.summary.to(device),
            pools.controls,
            pools.conditions,
        )
        try:
            self._train_ensemble(pools, keys, x, obs, checkpoint_dir, start, device)
        finally:
            del self._fit_controls  # training cells are not part of the fitted state

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
        self.n_state_cells_: int = 0 if states is None else len(states.latent)
        if states is not None:
            self.states_latent_: np.ndarray = states.latent
            self.states_context_: np.ndarray = states.context
            self.states_label_: np.ndarray = states.label
            self.states_n_: np.ndarray = states.n_states
            self.states_index_: np.ndarray = states.index
            self.states_effects_: np.ndarray = states.effects
            self.states_cells_: np.ndarray = states.cells

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
        self.lin_ctrl_: np.ndarray = np.zeros((len(self.contexts_), x.shape[1]))
        self._fit_controls: dict[str, np.ndarray] = {}
        for j, c in enumerate(self.contexts_):
            rows = np.flatnonzero(is_control & (contexts == c))
            self.lin_ctrl_[j] = np.expm1(x[rows]).mean(axis=0)
            if len(rows) > _FOLD_CELLS:
                rows = np.sort(rng.choice(rows, _FOLD_CELLS, replace=False))
            self._fit_controls[c] = control_profile(x[rows])
        self.lin_pert_: np.ndarray = np.vstack(
            [np.expm1(x[r]).mean(axis=0) for r in condition_rows]
        )
        rows = np.arange(len(x))
        if len(rows) > _FOLD_CELLS:
            rows = np.sort(rng.choice(rows, _FOLD_CELLS, replace=False))
        self.expressed_level_: np.ndarray = expressed_level(x[rows])

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
        self.pca_mean_: np.ndarray = pca.mean_.astype(np.float64)
        self.pca_components_: np.ndarray = pca.components_.astype(np.float64)
        total = float(np.sum(pca.explained_variance_))
        self.latent_scale_: float = float(np.sqrt(total / k)) if total > 0 else 1.0
        self.n_latent_: int = k

    def _encode(self, x: np.ndarray) -> np.ndarray:
        return (x - self.pca_mean_) @ self.pca_components_.T / self.latent_scale_

    def _encode_delta(self, delta: np.ndarray) -> np.ndarray:
        return delta @ self.pca_components_.T / self.latent_scale_

    def _context_latent(self, extra: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        k = self.n_latent_
        out = {c: self.context_summary_[i, :k] for i, c in enumerate(self.contexts_)}
        out.update(extra or {})
        return out

    def _fit_features(self, effects: Any, external: tuple[list[str], np.ndarray] | None) -> None:
        names: list[str] = []
        matrix = np.zeros((0, 0))
        if external is not None:
            names, matrix = external
            source = "external"
        elif self.gene_prior == "none" or not is_genetic(self.perturbation_types_):
            source = "none"
        elif self.gene_prior == "data":
            profiles = np.vstack([effects.expression, effects.control_expression])
            matrix = data_gene_embedding(profiles, 10)
            matrix = matrix / max(float(np.abs(matrix).max()), 1e-12)
            names = list(self.genes_)
            source = "data"
        else:
            from ...priors import gene_embedding

            wanted = list(self.genes_) + sorted(
                {c for p in self.conditions_[PERTURBATION] for c in split_combination(p)}
            )
            emb = gene_embedding(self.gene_prior, genes=wanted, seed=self.seed)
            names, matrix = [str(g) for g in emb.index], emb.to_numpy(dtype=np.float64)
            source = self.gene_prior
        self.feature_source_: str = source
        self.feature_names_: list[str] = names
        if names:
            self.feature_matrix_: np.ndarray = np.asarray(matrix, dtype=np.float64)

    def _features(self) -> ComponentFeatures | None:
        if not self.feature_names_:
            return None
        return ComponentFeatures(self.feature_names_, self.feature_matrix_)

    def _tau(self) -> float:
        return np.inf if self.tau_ < 0 else self.tau_

    def _dose_bandwidth(self) -> float:
        return np.inf if self.dose_bandwidth_ < 0 else self.dose_bandwidth_

    def _transfer(
        self,
        rows: Sequence[int] | None = None,
        extra: dict[str, np.ndarray] | None = None,
        *,
        controls: dict[str, np.ndarray] | None = None,
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
        errors: dict[str, list[np.ndarray]] = {v: [] for v in VIEWS}
        for row, view, estimate in transfer.views(self.seed):
            errors[view].append(self.delta_[row] - estimate)
        pooled = [e for v in VIEWS for e in errors[v]]
        fallback = (
            np.mean(np.square(pooled), axis=0)
            if pooled
            else np.full(len(self.genes_), float(np.mean(self.delta_**2)))
        )
        out = np.zeros((len(VIEWS), len(self.genes_)))
        for j, view in enumerate(VIEWS):
            prior = fallback
            if errors[view]:
                sq = np.square(errors[view])
                mean_var = float(sq.mean())
                prior = np.full(len(self.genes_), mean_var) * 0.5 + 0.5 * fallback
                out[j] = (sq.sum(axis=0) + _SHRINK * prior) / (len(sq) + _SHRINK)
            else:
                out[j] = prior
        return np.maximum(out, 1e-12)

    # --- ensemble ---------------------------------------------------------------------------

    def _settings(self) -> Settings:
        return Settings(
            max_steps=int(self.max_steps),
            batch_size=_BATCH_SIZE,
            # Conditions with few cells are not oversampled beyond need (tiny data stays fast).
            cells=int(min(self.cells, max(16, np.median(self.conditions_[N_CELLS])))),
            lr=float(self.lr),
            weight_decay=_WEIGHT_DECAY,
            correction_penalty=float(self.correction_penalty),
            patience=int(self.patience),
            eval_every=_EVAL_EVERY,
        )

    def _module_dims(self) -> dict[str, int]:
        return {
            "n_latent": self.n_latent_,
            "n_components": len(self.components_),
            "feature_dim": 2 * self.feature_matrix_.shape[1] if self.feature_names_ else 0,
            "n_views": len(VIEWS),
            "n_noise": int(self.n_noise),
            "hidden": int(self.hidden),
            "n_layers": int(self.n_layers),
            "pert_dim": _PERT_DIM,
        }

    def _new_module(self) -> TransitionModule:
        return TransitionModule(**self._module_dims())

    def _validation_rows(self, member: int) -> list[int]:
        """Conditions held out of member ``member``'s fit (training data only)."""
        keys = condition_keys(self.conditions_)
        contexts = sorted({k[0] for k in keys})
        rng = np.random.default_rng([self.seed, member])
        if len(contexts) >= 3:
            order = np.random.default_rng(self.seed).permutation(len(contexts))
            held = contexts[order[member % len(contexts)]]
            return [i for i, k in enumerate(keys) if k[0] == held]
        labels = sorted({k[1] for k in keys})
        n = int(np.floor(_VAL_FRACTION * len(labels)))
        if n < 1:
            return []
        held_labels = set(rng.choice(labels, n, replace=False).tolist())
        return [i for i, k in enumerate(keys) if k[1] in held_labels]

    def _examples(
        self, items: list[tuple[int, str, np.ndarray]], keys: list[ConditionKey]
    ) -> Examples:
        context_index = {c: i for i, c in enumerate(self.contexts_)}
        comp_index = {c: i + 1 for i, c in enumerate(self.components_)}
        features = self._features()
        fdim = features.matrix.shape[1] if features is not None else 0
        n_comp = max([len(split_combination(keys[r][1])) for r, _, _ in items] + [1])
        n = len(items)
        index = np.zeros((n, n_comp), dtype=np.int64)
        mask = np.zeros((n, n_comp))
        feats = np.zeros((n, n_comp, 2 * fdim))
        doses = np.zeros((n, n_comp))
        view = np.zeros((n, len(VIEWS)))
        base = np.zeros((n, self.n_latent_))
        for e, (row, v, estimate) in enumerate(items):
            _, perturbation, dose = keys[row]
            parts = split_combination(perturbation)
            for j, (part, d) in enumerate(
                zip(parts, dose_components(perturbation, dose), strict=True)
            ):
                # The "features" view mimics an unseen perturbation: no learned embedding.
                index[e, j] = 0 if v == "features" else comp_index.get(part, 0)
                mask[e, j] = 1.0
                doses[e, j] = log_dose(d)
                if features is not None:
                    vec = features.vector(part, d)
                    if vec is not None:
                        feats[e, j] = vec
            view[e, VIEWS.index(v)] = 1.0
            base[e] = self._encode_delta(estimate)
        device = self._device()
        return Examples(
            context=torch.as_tensor([context_index.get(keys[r][0], 0) for r, _, _ in items]),
            condition=torch.as_tensor([r for r, _, _ in items]),
            base=as_tensor(base).to(device),
            view=as_tensor(view).to(device),
            index=torch.as_tensor(index).to(device),
            mask=as_tensor(mask).to(device),
            features=as_tensor(feats).to(device),
            log_dose=as_tensor(doses).to(device),
        )

    def _train_ensemble(
        self,
        pools: Pools,
        keys: list[ConditionKey],
        x: np.ndarray,
        obs: pd.DataFrame,
        checkpoint_dir: str | os.PathLike[str] | None,
        start: float,
        device: torch.device,
    ) -> None:
        n_members = int(self.n_members)
        checkpoint = _Checkpoint(checkpoint_dir, self._fingerprint()) if checkpoint_dir else None
        states: list[np.ndarray] = []
        records: list[dict[str, Any]] = []
        trained_views: set[str] = set()
        val_errors: list[tuple[str, np.ndarray]] = []
        settings = self._settings()
        contexts = obs[CONTEXT].astype(str).to_numpy()
        is_control = obs[PERTURBATION].astype(str).to_numpy() == CONTROL
        every_row = self._transfer()
        for member in range(n_members):
            module = self._new_module().to(device)
            val_rows = self._validation_rows(member)
            fit_rows = [i for i in range(len(keys)) if i not in set(val_rows)]
            transfer = self._transfer(fit_rows, controls=self._fit_controls, share="fit")
            train_items = [
                (fit_rows[r], v, est) for r, v, est in transfer.views(self.seed + member)
            ]
            val_items = []
            for row in val_rows:
                latent = self.context_summary_[self.contexts_.index(keys[row][0]), : self.n_latent_]
                for v, fn in (
                    ("context", transfer.context),
                    ("combination", transfer.combination),
                ):
                    est = fn(keys[row], latent)
                    if est is not None:
                        val_items.append((row, v, est))
                # From the other doses of the same treatment, held out with it (the network
                # never sees their cells; a held-out drug's doses stay out of ``transfer``).
                est = every_row.dose(keys[row])
                if est is not None:
                    val_items.append((row, "dose", est))
                est = transfer.from_features(keys[row])
                if est is not None:
                    val_items.append((row, "features", est))
            trained_views |= {v for _, v, _ in train_items}
            if not train_items:
                # Nothing to correct (e.g. one context, no combinations, no features): the
                # module stays at zero and the model is the classical estimate.
                val_items = []
            resumed = checkpoint.load(member) if checkpoint else None
            if resumed is not None:
                flat, record = resumed
                _set_flat(module, flat, device)
            else:
                remaining = n_members - member
                budget = (
                    np.inf
                    if self.time_budget is None
                    else max(float(self.time_budget) - (time.monotonic() - start), 0.0) / remaining
                )
                deadline = time.monotonic() + budget
                seed = int(self.seed) * 1000 + member
                torch.manual_seed(seed)
                module = self._new_module().to(device)
                if train_items and (self.time_budget is None or budget > 0):
                    result = train_member(
                        module,
                        pools,
                        self._examples(train_items, keys),
                        self._examples(val_items, keys) if val_items else None,
                        settings,
                        seed=seed,
                        deadline=deadline,
                        progress=bool(self.progress),
                        desc=f"transition {member + 1}/{n_members}",
                    )
                    module.load_state_dict(result.state)
                else:
                    result = MemberResult(
                        {k: v.clone() for k, v in module.state_dict().items()},
                        float("nan"),
                        0,
                        0,
                        "nothing_to_train" if not train_items else "time_budget",
                    )
                record = _record(result, val_rows, keys)
                flat = _get_flat(module)
                # A member cut short by the time budget is not finished: it is not stored, so
                # a later fit with the same folder trains it in full (as an uninterrupted fit).
                if checkpoint and result.stopped != "time_budget":
                    checkpoint.save(member, flat, record)
            states.append(flat)
            records.append(record)
            self.member_weights_ = np.vstack(states)  # the members so far, for predictions
            self.training_ = records
            self.param_shapes_: list[list[Any]] = [
                [k, list(v.shape)] for k, v in module.state_dict().items()
            ]
            member_views = {v for _, v, _ in train_items}
            self.trained_views_ = [v for v in VIEWS if v in trained_views]
            for row, v, est in val_items:
                if v not in member_views:
                    continue
                rows = is_control & (contexts == keys[row][0])
                # As predicted: a pair of measured parts is not corrected (calibrate on that).
                measured = v == "combination" and transfer.parts_measured(keys[row])
                effect = self._member_effect(
                    member, x[rows], keys[row], Estimate(est, v, measured), seed=self.seed
                )
                val_errors.append((v, self.delta_[row] - effect))
        self.member_weights_: np.ndarray = np.vstack(states)
        self.training_: list[dict[str, Any]] = records
        self.trained_views_: list[str] = [v for v in VIEWS if v in trained_views]
        self.calibration_: float = self._calibrate(val_errors)

    def _calibrate(self, val_errors: list[tuple[str, np.ndarray]]) -> float:
        """``q`` so that ``|error| <= q sqrt(v_g)`` for a fraction ``interval`` of errors."""
        if not val_errors:
            # No held-out predictions: calibrate the classical errors against themselves.
            transfer = self._transfer(controls=self._fit_controls)
            val_errors = [(v, self.delta_[r] - e) for r, v, e in transfer.views(self.seed)]
        if not val_errors:
            return float(norm.ppf(0.5 + float(self.interval) / 2))
        ratios = np.concatenate(
            [np.abs(err) / np.sqrt(self.error_var_[VIEWS.index(v)]) for v, err in val_errors]
        )
        return float(np.quantile(ratios, float(self.interval)))

    def _fingerprint(self) -> str:
        params = {
            k: v
            for k, v in self.get_params().items()
            if k not in ("progress", "device", "n_threads", "time_budget")
        }
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
        digest.update(json.dumps(self.genes_).encode())
        digest.update(np.ascontiguousarray(self.delta_, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(self.pca_components_, dtype=np.float64).tobytes())
        return digest.hexdigest()

    # --- predict ---------------------------------------------------------------------------

    def predict(
        self,
        adata: AnnData,
        *,
        conditions: pd.DataFrame | Sequence[Sequence[str]],
        n_cells: int | None = None,
        seed: int = 0,
    ) -> AnnData:
        """Predict the requested conditions from the control cells in ``adata``.

        As :meth:`Model.predict`. Each context is summarised from *all* its control cells in
        ``adata`` (so an unseen context is predicted from its controls alone); the drawn
        control cells are the ones transformed, shifted so that the generated population's
        mean is all the controls' mean plus the predicted change: a draw of ``n_cells``
        controls (with replacement when there are fewer) has a mean of its own, and that
        sampling noise is not part of the prediction (it would enter every mean-based metric;
        :meth:`predict_effects` uses every control cell). ``seed`` also seeds the noise inputs.
        """
        self._check_fitted()
        table = as_conditions(conditions)
        if n_cells is not None:
            n_cells = _positive_int(n_cells, key="'n_cells'")
        controls, control_contexts = self._query_controls(adata)
        picks = self._pick_controls(table, control_contexts, n_cells=n_cells, seed=seed)
        query = _QueryContexts(self, controls, control_contexts)
        estimates = self._estimates(table, query)
        outputs = []
        with _torch_settings(self._threads()):
            for i, (key, est) in enumerate(zip(condition_keys(table), estimates, strict=True)):
                cells = controls[picks[i]]
                if est is None:
                    outputs.append(cells)
                    continue
                members = np.arange(len(cells)) % self.member_weights_.shape[0]
                out = np.empty_like(cells)
                for m in np.unique(members):
                    sel = members == m
                    # Each member's share of the draw is centred on all the controls' mean.
                    offset = query.control_mean(key[0]) - cells[sel].mean(axis=0)
                    out[sel] = self._generate(
                        int(m), cells[sel], query.summary(key[0]), key, est, seed=seed + i,
                        offset=offset,
                    )  # fmt: skip
                outputs.append(out)
        return self._assemble(adata, table, outputs, n_cells=n_cells, seed=seed)

    def _predict_conditions(
        self, conditions: pd.DataFrame, controls: list[np.ndarray]
    ) -> list[np.ndarray]:  # pragma: no cover - predict is overridden
        raise NotImplementedError("TransitionModel overrides predict")

    def predict_effects(
        self,
        adata: AnnData,
        *,
        conditions: pd.DataFrame | Sequence[Sequence[str]],
        seed: int = 0,
    ) -> AnnData:
        """Predicted mean effect of each condition with an ``interval`` uncertainty interval.

        Parameters
        ----------
        adata
            Holds the control cells of every requested context.
        conditions
            As in :meth:`predict`.
        seed
            Seed of the noise inputs.

        Returns
        -------
        AnnData
            One row per condition, the training genes as columns. ``X``: predicted effect (mean
            of the generated cells from all the context's controls minus their mean, ensemble
            average); layers ``lower`` and ``upper`` (the interval; NaN for measured
            conditions, which are returned as measured) and ``sd`` (ensemble sd). obs:
            ``context``, ``perturbation``, ``dose`` and ``source`` (which estimate was used:
            ``own``, ``context``, ``combination``, ``features``, or ``control``).
        """
        self._check_fitted()
        table = as_conditions(conditions)
        controls, control_contexts = self._query_controls(adata)
        self._pick_controls(table, control_contexts, n_cells=None, seed=seed)  # checks contexts
        query = _QueryContexts(self, controls, control_contexts)
        estimates = self._estimates(table, query)
        n_genes = len(self.genes_)
        mean = np.zeros((len(table), n_genes))
        sd = np.zeros((len(table), n_genes))
        lower = np.full((len(table), n_genes), np.nan)
        upper = np.full((len(table), n_genes), np.nan)
        sources = []
        z = float(norm.ppf(0.5 + float(self.interval) / 2))
        with _torch_settings(self._threads()):
            for i, (key, est) in enumerate(zip(condition_keys(table), estimates, strict=True)):
                sources.append("control" if est is None else est.source)
                if est is None:
                    lower[i] = upper[i] = 0.0
                    continue
                cells = query.controls(key[0])
                effects = np.vstack(
                    [
                        self._member_effect(m, cells, key, est, seed=seed + i, summary=None)
                        for m in range(self.member_weights_.shape[0])
                    ]
                )
                mean[i] = effects.mean(axis=0)
                if est.source == "own":
                    continue
                sd[i] = effects.std(axis=0)
                var = self.error_var_[VIEWS.index(est.source)]
                half = np.sqrt(self.calibration_**2 * var + z**2 * sd[i] ** 2)
                lower[i], upper[i] = mean[i] - half, mean[i] + half
        obs = pd.DataFrame(
            {
                CONTEXT: table[CONTEXT].to_numpy(),
                PERTURBATION: table[PERTURBATION].to_numpy(),
                DOSE: table[DOSE].to_numpy(),
                "source": sources,
            },
            index=pd.Index([f"condition{i}" for i in range(len(table))]),
        )
        return AnnData(
            X=mean.astype(np.float32),
            obs=obs,
            var=pd.DataFrame(index=pd.Index(self.genes_)),
            layers={
                "lower": lower.astype(np.float32),
                "upper": upper.astype(np.float32),
                "sd": sd.astype(np.float32),
            },
            uns={"interval": float(self.interval)},
        )

    def _estimates(self, table: pd.DataFrame, query: _QueryContexts) -> list[Estimate | None]:
        transfer = self._transfer(
            extra=query.latents(), controls=query.fold_controls(), targets=query.cell_latents()
        )
        out: list[Estimate | None] = []
        problems = []
        for key in condition_keys(table):
            if key[1] == CONTROL:
                out.append(None)
                continue
            est = transfer.estimate(key, query.latent(key[0]))
            if est is None:
                problems.append(describe(key) + " (" + self._why_not(key) + ")")
            out.append(est)
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise UnseenConditionError(
                f"{self.name} cannot predict {'; '.join(problems[:5])}{more}. Fix: pass "
                "perturbation_features= to fit (prior features of the unseen components), or "
                "train on data where the perturbation was measured."
            )
        return out

    def _why_not(self, key: ConditionKey) -> str:
        features = self._features()
        parts = split_combination(key[1])
        missing = [p for p in parts if features is None or p not in features.rows]
        return (
            f"never measured, and no features for {missing} (feature source "
            f"{self.feature_source_!r})"
        )

    def _member_views(self, member: int) -> list[str]:
        """Views member ``member`` corrects (all of them in models saved before the gate)."""
        return list(self.training_[member].get("views", VIEWS))

    def _member_module(self, member: int) -> TransitionModule:
        module = self._new_module()
        _set_flat(module, self.member_weights_[member], torch.device("cpu"))
        module.eval()
        return module

    def _generate(
        self,
        member: int,
        cells: np.ndarray,
        summary: np.ndarray,
        key: ConditionKey,
        est: Estimate,
        *,
        seed: int,
        offset: np.ndarray | float = 0.0,
    ) -> np.ndarray:
        """Generated cells (gene space) of member ``member`` from control cells ``cells``.

        ``offset`` is added to every generated cell before the floor at zero (:meth:`predict`:
        the gap between all the context's controls' mean and these drawn cells')."""
        if (
            est.measured
            or est.source not in self.trained_views_
            or est.source not in self._member_views(member)
        ):
            # Measured conditions, combinations of parts measured in the same context,
            # estimates of a kind the network never learned to correct, and kinds this
            # member's correction made worse on its validation conditions
            # (:func:`._train.view_gate`) are the classical estimate alone.
            y = cells + est.delta + _fold_detail(cells, est) + offset
            return self._finish(cells, y, seed, member)
        module = self._member_module(member)
        ex = self._examples([(0, est.source, est.delta)], [key])
        ex = Examples(*(getattr(ex, f).cpu() for f in Examples.__dataclass_fields__))
        generator = torch.Generator().manual_seed(int(seed) * 1009 + member)
        z = as_tensor(self._encode(cells)).unsqueeze(0)
        noise = torch.randn((1, len(cells), module.n_noise), generator=generator)
        with torch.no_grad():
            r = module(
                z,
                as_tensor(summary).unsqueeze(0),
                ex.base,
                (ex.index, ex.mask, ex.features, ex.log_dose),
                ex.view,
                noise,
            )[0].numpy()
        correction = (r.astype(np.float64) * self.latent_scale_) @ self.pca_components_
        y = cells + est.delta + _fold_detail(cells, est) + correction + offset
        return self._finish(cells, y, seed, member)

    def _finish(self, cells: np.ndarray, y: np.ndarray, seed: int, member: int) -> np.ndarray:
        """Generated expression ``y`` made a cell population: floored at zero keeping each
        gene's mean (:func:`floor_at_zero`), and a gene gained where the control cell had none
        gained by few cells at its usual level (:func:`sparse_gain`)."""
        rng = np.random.default_rng([int(seed), int(member), 17])
        return sparse_gain(cells, floor_at_zero(y), self.expressed_level_, rng=rng)

    def _member_effect(
        self,
        member: int,
        cells: np.ndarray,
        key: ConditionKey,
        est: Estimate,
        *,
        seed: int,
        summary: np.ndarray | None = None,
    ) -> np.ndarray:
        """Mean generated minus mean control over ``cells`` for one member."""
        if summary is None:
            summary = _summary(self._encode(cells))
        generated = self._generate(member, cells, summary, key, est, seed=seed)
        return generated.mean(axis=0) - cells.mean(axis=0)

    # --- settings ---------------------------------------------------------------------------

    def _check_params(self) -> None:
        ints = {
            "n_latent": 1,
            "hidden": 1,
            "n_layers": 0,
            "n_noise": 0,
            "n_members": 1,
            "max_steps": 0,
            "cells": 2,
            "patience": 1,
            "seed": 0,
        }
        for key, low in ints.items():
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ValueError(
                    f"transition: {key!r} must be an integer >= {low} (got {value!r})."
                )
        for key in ("lr", "ridge", "correction_penalty"):
            value = getattr(self, key)
            if not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
                raise ValueError(
                    f"transition: {key!r} must be a finite number >= 0 (got {value!r})."
                )
        if not 0 < float(self.interval) < 1:
            raise ValueError(
                f"transition: 'interval' must be in (0, 1) (got {self.interval!r}), e.g. 0.9."
            )
        if self.time_budget is not None and not float(self.time_budget) > 0:
            raise ValueError(
                f"transition: 'time_budget' must be > 0 seconds or None (got {self.time_budget!r})."
            )
        for switch in ("fold_change", "cell_states"):
            value = getattr(self, switch)
            if not isinstance(value, bool | np.bool_):
                raise ValueError(f"transition: {switch!r} must be True or False (got {value!r}).")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(
                f"transition: 'device' must be 'auto', 'cpu' or 'cuda' (got {self.device!r})."
            )
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("transition: device='cuda' but CUDA is not available. Fix: 'auto'.")
        from ...priors import GENE_EMBEDDING_SOURCES

        prior_ok = self.gene_prior in ("data", "none") or all(
            part in GENE_EMBEDDING_SOURCES for part in str(self.gene_prior).split("+")
        )
        if not prior_ok:
            raise ValueError(
                f"transition: 'gene_prior' must be 'data', 'none' or a gene embedding source "
                f"({sorted(GENE_EMBEDDING_SOURCES)}, joined by '+') (got {self.gene_prior!r})."
            )
        if self.n_threads is not None and (
            isinstance(self.n_threads, bool) or int(self.n_threads) < 1
        ):
            raise ValueError(
                f"transition: 'n_threads' must be >= 1 or None (got {self.n_threads!r})."
            )

    def _device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def _threads(self) -> int:
        # The network is small: one thread is as fast as several and does not fight other
        # processes for the cores (measured: 75 ms vs 0.9 s per step on a busy 2-core machine).
        if self.n_threads is not None:
            return int(self.n_threads)
        return 1

    def _prediction_info(self) -> dict[str, Any]:
        return {"n_members": int(self.member_weights_.shape[0]), "tau": self.tau_}

    # --- persistence --------------------------------------------------------------------------

    def _array_names(self) -> tuple[str, ...]:
        names = (
            "delta_",
            "pca_mean_",
            "pca_components_",
            "context_summary_",
            "error_var_",
            "member_weights_",
            "lin_pert_",
            "lin_ctrl_",
            "fold_share_",
            "expressed_level_",
        )
        states = (
            "states_latent_",
            "states_context_",
            "states_label_",
            "states_n_",
            "states_index_",
            "states_effects_",
            "states_cells_",
        )
        names += states if self.n_state_cells_ else ()
        return names + (("feature_matrix_",) if self.feature_names_ else ())

    def _json_names(self) -> tuple[str, ...]:
        return (
            "n_latent_",
            "latent_scale_",
            "tau_",
            "tau_losses_",
            "dose_bandwidth_",
            "dose_losses_",
            "components_",
            "feature_source_",
            "feature_names_",
            "param_shapes_",
            "training_",
            "calibration_",
            "trained_views_",
            "n_state_cells_",
        )

    def _check_state(self) -> None:
        super()._check_state()
        n_genes, k = len(self.genes_), self.n_latent_
        expect_shape(self, "delta_", (len(self.conditions_), n_genes))
        expect_shape(self, "pca_mean_", (n_genes,))
        expect_shape(self, "pca_components_", (k, n_genes))
        expect_shape(self, "context_summary_", (len(self.contexts_), 2 * k))
        expect_shape(self, "error_var_", (len(VIEWS), n_genes))
        expect_shape(self, "lin_pert_", (len(self.conditions_), n_genes))
        expect_shape(self, "lin_ctrl_", (len(self.contexts_), n_genes))
        expect_shape(self, "fold_share_", (n_genes,))
        expect_shape(self, "expressed_level_", (n_genes,))
        if self.n_state_cells_:
            n = self.n_state_cells_
            expect_shape(self, "states_latent_", (n, k))
            expect_shape(self, "states_context_", (n,))
            expect_shape(self, "states_label_", (n,))
            expect_shape(self, "states_n_", (len(self.contexts_),))
            expect_shape(self, "states_index_", (len(self.states_effects_), 2))
            expect_shape(self, "states_effects_", (len(self.states_index_), n_genes))
            expect_shape(self, "states_cells_", (len(self.states_index_), 2))
        if self.feature_names_:
            expect_shape(
                self,
                "feature_matrix_",
                (len(self.feature_names_), self.feature_matrix_.shape[1]),
            )
        n_params = sum(int(np.prod(shape)) for _, shape in self.param_shapes_)
        expect_shape(self, "member_weights_", (self.member_weights_.shape[0], n_params))
        expected = [[k_, list(v.shape)] for k_, v in self._new_module().state_dict().items()]
        if expected != [[str(a), list(b)] for a, b in self.param_shapes_]:
            raise ModelFormatError(
                "shape mismatch in saved 'transition' model: the network layout in model.json "
                "does not match its parameters. The directory is damaged or was edited."
            )


# --- helpers ----------------------------------------------------------------------------------


class _QueryContexts:
    """Control cells of the query, summarised per context (latent mean and sd)."""

    def __init__(self, model: TransitionModel, controls: np.ndarray, contexts: np.ndarray) -> None:
        self.model = model
        self._controls = controls
        self._contexts = contexts
        self._summaries: dict[str, np.ndarray] = {}
        self._means: dict[str, np.ndarray] = {}
        for c in pd.unique(contexts):
            cells = controls[contexts == c]
            self._summaries[str(c)] = _summary(model._encode(cells))
            self._means[str(c)] = cells.mean(axis=0)

    def controls(self, context: str) -> np.ndarray:
        return self._controls[self._contexts == context]

    def summary(self, context: str) -> np.ndarray:
        return self._summaries[context]

    def control_mean(self, context: str) -> np.ndarray:
        """Mean expression of all the context's control cells in the query."""
        return self._means[context]

    def latent(self, context: str) -> np.ndarray:
        return self._summaries[context][: self.model.n_latent_]

    def fold_controls(self) -> dict[str, np.ndarray]:
        """Each query context's control profile for the fold-change transfer (from at most
        ``_FOLD_CELLS`` cells, an evenly spaced subset: deterministic, no seed needed)."""
        return {c: control_profile(_evenly(self.controls(c), _FOLD_CELLS)) for c in self._summaries}

    def cell_latents(self) -> dict[str, np.ndarray]:
        """Latent control cells of each query context that is not a training context (an
        evenly spaced subset beyond the cell-state pool's size), for the cell-state transfer."""
        known = set(self.model.contexts_)
        return {
            c: self.model._encode(_evenly(self.controls(c), POOL_CELLS))
            for c in self._summaries
            if c not in known
        }

    def latents(self) -> dict[str, np.ndarray]:
        """Query contexts' latent means; training contexts keep their training summary."""
        known = set(self.model.contexts_)
        return {c: s[: self.model.n_latent_] for c, s in self._summaries.items() if c not in known}


def _evenly(cells: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` of ``cells``, evenly spaced (deterministic, no seed needed)."""
    if len(cells) <= n:
        return cells
    return cells[np.linspace(0, len(cells) - 1, n).astype(np.int64)]


def _fold_detail(cells: np.ndarray, est: Estimate) -> np.ndarray:
    """Per-cell departure from the mean change under the estimate's fold-change share.

    A gene that changes as a fold change changes more in cells expressing it more (and not at
    all where it is absent); this adds that spread around the estimate, keeping its mean.
    """
    if est.fold is None:
        return np.zeros(cells.shape[1])  # broadcasts: no per-cell matrix to add
    ratio, share = est.fold
    effect = fold_change_effect(cells, ratio)
    return share * (effect - effect.mean(axis=0))


def expressed_level(x: np.ndarray) -> np.ndarray:
    """Per gene, the median log1p value of the cells that express it (0 if none does)."""
    out = np.zeros(x.shape[1])
    for g in range(x.shape[1]):
        values = x[:, g]
        values = values[values > 0]
        if len(values):
            out[g] = float(np.median(values))
    return out


def sparse_gain(
    cells: np.ndarray, out: np.ndarray, level: np.ndarray, *, rng: np.random.Generator
) -> np.ndarray:
    """Concentrate what cells without a gene gained into few cells at the gene's usual level.

    Adding a small mean gain to every cell that does not express a gene gives all of them a
    sliver of it: a population in which a gene absent from every control cell is suddenly
    detected in every cell, as in no measured one (expression is sparse: a cell gains a gene
    as counts, not as a fraction of one). Per gene, when the cells at zero in ``cells`` gained
    on average less than ``level`` (the gene's median non-zero log1p value), their total gain
    goes to as many of them, drawn at random, as it fills at ``level`` (the remainder to one
    more), and the others stay at zero. Each gene's mean is kept exactly; cells that expressed
    the gene are left as they are.
    """
    zero = cells == 0
    gained = np.where(zero, out, 0.0).sum(axis=0)
    n_zero = zero.sum(axis=0)
    todo = np.flatnonzero((gained > 0) & (level > 0) & (gained < level * n_zero))
    if len(todo) == 0:
        return out
    out = out.copy()
    for g in todo:
        rows = np.flatnonzero(zero[:, g])
        full = int(gained[g] // level[g])
        rest = float(gained[g] - full * level[g])
        picked = rng.choice(rows, size=min(full + 1, len(rows)), replace=False)
        out[rows, g] = 0.0
        out[picked[:full], g] = level[g]
        if full < len(picked):
            out[picked[full], g] = rest
    return out


def floor_at_zero(y: np.ndarray, *, n_iter: int = 50) -> np.ndarray:
    """``max(y + s, 0)`` with a per-gene shift ``s`` that keeps each column's mean.

    Shifting control cells by an effect and clipping at zero raises the mean of every gene
    whose cells the shift pushes below zero, so the generated population would no longer carry
    the effect it was built from (a knock-down of a lowly expressed gene came out weaker than
    estimated, and how much weaker depended non-linearly on the estimate). The shift ``s <= 0``
    is found by bisection (the clipped mean grows monotonically with ``s``); a column whose
    mean is not positive becomes all zeros, the closest non-negative population.
    """
    target = y.mean(axis=0)
    clipped = np.maximum(y, 0.0)
    need = clipped.mean(axis=0) > target + 1e-12
    if not need.any():
        return clipped
    sub = y[:, need]
    lo = -np.maximum(sub.max(axis=0), 0.0)  # clipped mean 0 <= target (when target >= 0)
    hi = np.zeros(sub.shape[1])  # clipped mean >= target
    goal = np.maximum(target[need], 0.0)
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        above = np.maximum(sub + mid, 0.0).mean(axis=0) > goal
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    clipped[:, need] = np.maximum(sub + 0.5 * (lo + hi), 0.0)
    return clipped


def _summary(z: np.ndarray) -> np.ndarray:
    """Latent mean and standard deviation of a cell population (2k,)."""
    if len(z) == 0:
        return np.zeros(2 * z.shape[1])
    return np.concatenate([z.mean(axis=0), z.std(axis=0)])


def _condition_rows(obs: pd.DataFrame, keys: list[ConditionKey]) -> list[np.ndarray]:
    triples = list(
        zip(
            obs[CONTEXT].astype(str),
            obs[PERTURBATION].astype(str),
            obs[DOSE].astype(str),
            strict=True,
        )
    )
    rows: dict[ConditionKey, list[int]] = {}
    for i, t in enumerate(triples):
        rows.setdefault(t, []).append(i)
    return [np.asarray(rows[k], dtype=np.int64) for k in keys]


def _record(result: MemberResult, val_rows: list[int], keys: list[ConditionKey]) -> dict[str, Any]:
    return {
        "best_val": None if not np.isfinite(result.best_val) else float(result.best_val),
        "best_step": int(result.best_step),
        "steps": int(result.steps),
        "stopped": result.stopped,
        "validation": sorted({f"{keys[r][0]}|{keys[r][1]}|{keys[r][2]}" for r in val_rows}),
        "views": list(VIEWS) if result.views is None else [VIEWS[v] for v in result.views],
    }


def _get_flat(module: torch.nn.Module) -> np.ndarray:
    return np.concatenate(
        [v.detach().cpu().double().numpy().ravel() for v in module.state_dict().values()]
    )


def _set_flat(module: torch.nn.Module, flat: np.ndarray, device: torch.device) -> None:
    state = module.state_dict()
    offset = 0
    new = {}
    for k, v in state.items():
        n = v.numel()
        chunk = np.asarray(flat[offset : offset + n]).reshape(tuple(v.shape))
        new[k] = torch.as_tensor(chunk, dtype=v.dtype, device=device)
        offset += n
    if offset != len(flat):
        raise ModelFormatError(
            f"transition: saved weights hold {len(flat)} numbers, the network needs {offset}."
        )
    module.load_state_dict(new)


@contextlib.contextmanager
def _torch_settings(n_threads: int) -> Iterator[None]:
    """A torch and BLAS CPU thread count for the duration of a fit or predict.

    The operations used (dense matmuls, elementwise maths, reductions) are deterministic on CPU
    for a fixed thread count; ``torch.use_deterministic_algorithms`` is not switched on because
    importing it pulls in torch's compiler stack (seconds per process). The BLAS is limited too:
    its default (one thread per core, spinning) made the PCA 20-30x slower on a busy machine,
    outside the time budget, and a fixed count keeps results the same across machines.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(threads)


class _Checkpoint:
    """Finished ensemble members in a folder: ``member_<i>.safetensors`` + ``checkpoint.json``."""

    def __init__(self, folder: str | os.PathLike[str], fingerprint: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint
        meta_path = self.folder / _CHECKPOINT_FILE
        self.meta: dict[str, Any] = {"fingerprint": fingerprint, "members": {}}
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                meta = {}
            if isinstance(meta, dict) and meta.get("fingerprint") == fingerprint:
                self.meta = meta

    def load(self, member: int) -> tuple[np.ndarray, dict[str, Any]] | None:
        record = self.meta["members"].get(str(member))
        file = self.folder / f"member_{member}.safetensors"
        if record is None or not file.is_file():
            return None
        try:
            flat = load_file(str(file))["weights"]
        except Exception:  # a damaged checkpoint is retrained, never trusted
            return None
        return np.asarray(flat, dtype=np.float64), record

    def save(self, member: int, flat: np.ndarray, record: dict[str, Any]) -> None:
        file = self.folder / f"member_{member}.safetensors"
        tmp = file.with_name(file.name + ".tmp")
        save_file({"weights": np.ascontiguousarray(flat)}, str(tmp))
        os.replace(tmp, file)
        self.meta["members"][str(member)] = record
        meta_tmp = self.folder / (_CHECKPOINT_FILE + ".tmp")
        meta_tmp.write_text(json.dumps(self.meta, indent=1), encoding="utf-8")
        os.replace(meta_tmp, self.folder / _CHECKPOINT_FILE)
