"""``transition``: celltwin's hybrid, distributional perturbation model (AnnData in, AnnData out).

This module wires the estimator: parameters, fit and predict. The parts live beside it:
:mod:`._classical` (the fitted classical half) on :mod:`._features`, :mod:`._estimate` and
:mod:`._bandwidths`; :mod:`._network` (the correction and the cells a member generates, with
:mod:`._cells`); :mod:`._ensemble` (members, seeds, time budget, checkpoints, with
:mod:`._train` and :mod:`._checkpoint`); :mod:`._intervals`; :mod:`._persistence`;
:mod:`._query`; :mod:`._params`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from ..._keys import IN_DOMAIN, PREDICTION_SOURCE
from .._checks import _positive_int
from .._conditions import as_conditions
from .._effects import condition_keys
from .._embedding import validated_embedding
from ._batched import Interval, Settings, predicted_effects
from ._domain import widen
from ._ensemble import make_pools, train_ensemble
from ._estimate import Estimate
from ._intervals import effects_table, normal_quantile
from ._network import LearnedCorrection
from ._origins import prediction_source
from ._parallel import join
from ._params import check_params, thread_count, torch_settings
from ._persistence import JSON_NAMES, array_names, check_state
from ._query import _QueryContexts


class TransitionModel(LearnedCorrection):
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
    each gene's mean, :func:`._cells.floor_at_zero`), so every gene keeps the classical
    estimate and the control cell's own detail, and the network adds how the response depends
    on the cell and context state. For a context transfer the fold-change share also spreads
    the change over cells in proportion to each cell's own expression (same mean; the
    multiplicative part leaves a gene alone in a cell that does not express it), and what cells
    lacking a gene gained goes to few of them at the gene's usual level
    (:func:`._cells.sparse_gain`: expression is sparse, a gene absent from every control cell
    must not appear in every generated one). The network is trained on training conditions
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

    **In domain.** Every predicted condition gets an in-domain score in ``[0, 1]`` (obs
    ``in_domain`` of :meth:`predict` and :meth:`predict_effects`, :mod:`._domain`): the
    distance that matters for its estimate (its prior features' to the nearest training
    perturbations', its context's to the contexts that measured the treatment, its dose's to
    the nearest measured dose; a new context's to the training contexts) as a share of the
    training conditions that, held out, were at least as far from the rest (1: measured or
    as close as any; below 0.05: farther than 95% of them, an extrapolation). The classical
    part of the interval widens by ``exp(slope (1 - score))``, ``slope`` fitted on the
    validation errors (0 when the errors do not grow with distance) before ``q`` is.

    Measured conditions are predicted by their measured effect, and combinations whose parts
    were all measured alone in the same context by their sum plus the interaction law (a
    ridge regression of measured combinations on products and same-direction minima/maxima of
    their parts' effects, :func:`._features.pair_features`); the network is not applied to
    either: its correction, learned from other conditions, washed out the interactions the
    law recovers (``sim-combinations`` v3, pairs of measured parts: partial r with the true
    interactions 0.08-0.10 with it, 0.17 without).
    Generated cells of one condition are spread over the members (cell ``i`` from member
    ``i mod n_members``).

    **Fit inputs.** Besides the parameters below, :meth:`fit` takes two data inputs,
    ``fit(adata, *, split_key="split", perturbation_features=None, checkpoint_dir=None)``:
    ``perturbation_features``, prior features of single perturbations (a DataFrame indexed by
    component name, gene symbol or drug name, with numeric columns, e.g.
    ``celltwin.priors.gene_embedding("go")``), which let unseen perturbations be predicted; and
    ``checkpoint_dir``, a folder where each finished ensemble member is written, so that a fit
    with the same data, parameters and folder resumes after the last finished member (to the
    result of an uninterrupted fit). ``TransitionModel._fit`` documents both in full.

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
        profiles, as the ``linear`` baseline: measured genes only), a
        :func:`celltwin.priors.gene_embedding` source (``"go"``, ``"string"``, ``"dorothea"``,
        ``"go+string"``; the prior files from ../shared or ``celltwin data fetch``), ``"none"``,
        or ``"auto"`` (the default): ``"go+string"`` when those files are here and at least
        half the training targets are gene symbols they know, else ``"data"`` (e.g. simulated
        gene names); ``feature_source_`` records the choice. With a prior, every gene it
        embeds (about 20,000 for GO+STRING) gets features saved with the model, so any of them
        can be predicted by name, measured or not. On papalexi2021-heldout-ko the default
        gives the published numbers (vcc_score 0.047, 24 of 25 knockouts; ``"data"``: 9 of 25,
        see ``benchmarks/notes/names.md``). Ignored when ``perturbation_features`` is passed
        to :meth:`fit`.
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
        gene_prior: str = "auto",
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

    def _fit(
        self,
        train: AnnData,
        *,
        perturbation_features: pd.DataFrame | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        distributed: bool | None = None,
        **fit_params: Any,
    ) -> None:
        """Fit the classical estimates and train the ensemble on the training cells.

        Called by :meth:`fit` (``fit(adata, *, split_key, perturbation_features=None,
        checkpoint_dir=None, distributed=None)``) with the validated training cells; ``**fit_params`` only
        matches the base class's signature.

        Parameters
        ----------
        train
            The training cells (validated by :meth:`fit`), ``X`` in log1p(CP10k).
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
        distributed
            Train the network data-parallel across processes with PyTorch
            DistributedDataParallel (``nccl`` on GPUs, one per process; ``gloo`` on CPUs).
            ``None`` (default): when this process is one of several, i.e. launched by
            ``torchrun --nproc_per_node=N`` (``WORLD_SIZE`` > 1) or after
            ``torch.distributed.init_process_group``; ``True``: require that; ``False``: train
            in this process alone. Each step's global batch is split across the processes
            (same model as one process with the same seed, up to floating-point rounding);
            every process ends with the whole fitted model, and only rank 0 writes
            checkpoints. Save the model from rank 0 only (``celltwin fit`` does).
        **fit_params
            None other: the three above are this model's fit parameters.
        """
        self._check_params()
        external = (
            validated_embedding(perturbation_features, owner=self.name)
            if perturbation_features is not None
            else None
        )
        if len(self.conditions_) == 0:
            raise ValueError(
                "transition.fit: no perturbed training cells, so there is no effect to learn. "
                "Fix: include perturbed cells in the training split."
            )
        start = time.monotonic()
        with torch_settings(self._threads()):
            cells = self._fit_classical(train, external)
            parallel, device = join(distributed, self._device())
            pools = make_pools(self, cells, device)
            try:
                train_ensemble(self, pools, cells, checkpoint_dir, start, device, parallel)
            finally:
                del self._fit_controls  # training cells are not part of the fitted state
                parallel.close()

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
        Every cell carries its condition's in-domain score in obs ``in_domain``, and obs
        ``prediction_source`` says where each condition's answer came from
        (:data:`celltwin._keys.PREDICTION_SOURCES`). A condition that cannot be predicted is
        refused, all of them at once, with the reason of each:
        :class:`~celltwin.models.UnpredictableConditionsError` (its ``refusals`` table).
        """
        self._check_fitted()
        table = as_conditions(conditions)
        if n_cells is not None:
            n_cells = _positive_int(n_cells, key="'n_cells'")
        controls, control_contexts = self._query_controls(adata)
        picks = self._pick_controls(table, control_contexts, n_cells=n_cells, seed=seed)
        query = _QueryContexts(self, controls, control_contexts)
        estimates, scores = self._scored_estimates(table, query)
        outputs = []
        with torch_settings(self._threads()):
            for i, (key, est) in enumerate(zip(condition_keys(table), estimates, strict=True)):
                cells = controls[picks[i]]
                if est is None:
                    outputs.append(cells)
                    continue
                context = (query.summary(key[0]), query.control_mean(key[0]))
                outputs.append(self._generate_all(cells, context, key, est, seed=seed + i))
        pred = self._assemble(adata, table, outputs, n_cells=n_cells, seed=seed)
        sizes = [len(o) for o in outputs]
        pred.obs[IN_DOMAIN] = np.repeat(scores, sizes)
        pred.obs[PREDICTION_SOURCE] = np.repeat(self._sources(estimates), sizes)
        return pred

    def _sources(self, estimates: Sequence[Estimate | None]) -> list[str]:
        """The :data:`~celltwin._keys.PREDICTION_SOURCES` value of each condition's estimate."""
        return [
            prediction_source(None if e is None else e.source, self.feature_source_)
            for e in estimates
        ]

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
        n_cells: int | None = None,
        batch_size: int = 1024,
        members: bool = False,
    ) -> AnnData:
        """Predicted mean effect of each condition with an ``interval`` uncertainty interval.

        No cell is generated: a member's mean effect is the mean of the cells it would
        generate, in closed form from the network's correction averaged over the control
        cells (:mod:`._batched`), and conditions go through the network in batches, as one
        tensor of conditions x cells.

        Parameters
        ----------
        adata
            Holds the control cells of every requested context.
        conditions
            As in :meth:`predict`.
        seed
            Seed of the noise inputs (and of the draw of ``n_cells``).
        n_cells
            ``None`` (default): every control cell of the context, each condition with its
            own noise inputs (seeded by ``seed`` plus its position in ``conditions``). A
            number: that many of the context's control cells (all when it has no more),
            drawn once per context without replacement (seeded by ``seed`` and the
            context's name), with noise inputs drawn once per member, both shared by every
            condition: a condition's effect then depends neither on the other conditions
            asked nor on their order, and the differences between conditions carry no
            sampling noise of their own. The context's summary and control mean always come
            from all its control cells; only the network's correction is averaged over
            fewer cells (screens of thousands of candidates: ``n_cells=200``).
        batch_size
            Conditions per pass through the network (fewer when conditions x cells would
            exceed 2**19 rows); results do not depend on it.
        members
            Also return each ensemble member's effect, as layers ``member0`` ...
            ``member{n-1}`` (the ensemble mean is ``X``), e.g. to carry the uncertainty
            through a nonlinear function of the effects.

        Returns
        -------
        AnnData
            One row per condition, the training genes as columns. ``X``: predicted effect (mean
            of the generated cells from the context's controls minus their mean, ensemble
            average); layers ``lower`` and ``upper`` (the interval; NaN for measured
            conditions, which are returned as measured), ``sd`` (ensemble sd) and, with
            ``members``, ``member0`` ... obs: ``context``, ``perturbation``, ``dose``,
            ``source`` (which estimate was used: ``own``, ``context``, ``dose``,
            ``combination``, ``features``, or ``control``), ``in_domain`` (the in-domain
            score, see the class docstring) and ``prediction_source`` (the same as
            ``source`` in the words of every prediction,
            :data:`celltwin._keys.PREDICTION_SOURCES`).
        """
        self._check_fitted()
        table = as_conditions(conditions)
        if n_cells is not None:
            n_cells = _positive_int(n_cells, key="'n_cells'")
        batch_size = _positive_int(batch_size, key="'batch_size'")
        controls, control_contexts = self._query_controls(adata)
        self._pick_controls(table, control_contexts, n_cells=None, seed=seed)  # checks contexts
        settings = Settings(int(seed), n_cells, batch_size)
        with torch_settings(self._threads()):
            query = _QueryContexts(self, controls, control_contexts)
            estimates, scores = self._scored_estimates(table, query)
            interval = Interval(
                self.error_var_, float(self.calibration_), normal_quantile(float(self.interval)),
                widen(scores, self.domain_["slope"]),
            )  # fmt: skip
            arrays = predicted_effects(
                self, query, condition_keys(table), estimates, interval, settings,
                members=members,
            )  # fmt: skip
        sources = ["control" if e is None else e.source for e in estimates]
        control = np.array([e is None for e in estimates])
        arrays.lower[control] = arrays.upper[control] = 0.0
        effects = effects_table(
            table, self.genes_, mean=arrays.mean, bounds=(arrays.lower, arrays.upper),
            sd=arrays.sd, sources=sources, interval=float(self.interval),
        )  # fmt: skip
        if arrays.members is not None:
            for m, effect in enumerate(arrays.members):
                effects.layers[f"member{m}"] = effect
        effects.obs[IN_DOMAIN] = scores
        effects.obs[PREDICTION_SOURCE] = self._sources(estimates)
        return effects

    # --- settings and persistence ---------------------------------------------------------

    def _check_params(self) -> None:
        check_params(self.get_params())

    def _threads(self) -> int:
        return thread_count(self.n_threads)

    def _prediction_info(self) -> dict[str, Any]:
        return {"n_members": int(self.member_weights_.shape[0]), "tau": self.tau_}

    def _array_names(self) -> tuple[str, ...]:
        return array_names(self)

    def _json_names(self) -> tuple[str, ...]:
        return JSON_NAMES

    def _check_state(self) -> None:
        super()._check_state()
        check_state(self)
