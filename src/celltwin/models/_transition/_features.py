"""The classical half of ``transition``: featurisation and the estimates the network corrects.

Everything here is numpy and closed form. For a condition ``(context, perturbation, dose)`` the
best classical estimate of its effect (mean change of log1p expression against the context's
controls) is taken from the first source that applies:

``own``
    The condition was measured in training: its measured effect.
``context``
    The treatment was measured in other contexts: their effects, resolved to cell states when
    the model has them (:mod:`._states`: each of this context's control cells borrows the
    effects of the sub-states of its nearest control cells in the source contexts), else
    weighted by how close each context's control population is to this one's (a Gaussian kernel
    on the distance between control means in the latent space, bandwidth chosen by
    leave-one-context-out on the training effects; an infinite bandwidth is the
    ``context_shift`` baseline). Per gene this log-space
    (additive) transfer is blended with a multiplicative one (:class:`FoldChange`: the sources'
    ratio of stimulated to control means, weighted as the sources' share of the transfer,
    applied to the context's own control cells),
    each gene weighted by the two estimates' leave-one-context-out errors, so a gene the context
    expresses more or less than its sources changes in proportion.
``dose``
    The treatment was measured at other doses in this context: their effects, weighted by a
    Gaussian kernel in ``log10`` dose (summed over a combination's components), bandwidth
    chosen by leave-one-dose-out on the training effects (:func:`choose_dose_bandwidth`); an
    infinite bandwidth is the drug's mean over its measured doses, a zero one the nearest dose.
``combination``
    A combination whose parts can be estimated in this context: the sum of their estimates (the
    ``additive`` baseline) plus a gene-wise interaction term, a ridge regression shared by all
    genes and pairs from ``(a*b, min(a, b), max(a, b))`` of each pair of part effects ``a, b``
    to the measured non-additivity of the training combinations (e.g. saturation when two
    knockdowns lower the same gene).
``features``
    A perturbation never measured: a ridge regression from perturbation features (prior
    knowledge or data-derived gene embeddings; fingerprints for drugs) to effects, on top of the
    context's mean effect (the ``linear`` baseline with an external embedding).

The learned half (:mod:`._module`) corrects the ``context``, ``dose``, ``combination`` and
``features`` estimates; it is trained on training conditions whose estimate is recomputed as if they were
held out in the same way (the :data:`VIEWS` of a condition), so it learns the same task it faces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..._keys import split_combination
from .._conditions import ConditionKey, dose_components
from ._estimate import (
    FOLD_PSEUDO,
    ComponentFeatures,
    Estimate,
    FoldChange,
    dose_weights,
    fold_change_effect,
    kernel_weights,
    log_doses,
    median_scale,
    pair_features,
    solve_pairs,
)

# Re-exported for the scripts in benchmarks/ that import them from here.
from ._estimate import TAU_GRID as TAU_GRID
from ._estimate import control_profile as control_profile
from ._states import CellStates

_FEATURE_FOLDS = 5
#: Feature width above which the ridge is solved in its dual form (narrower features keep the
#: primal solve, and with it their results to the last bit).
_DUAL_DIM = 1024


# Over 400 lines: one class, the sources of the classical estimate, and the module's guide.
class Transfer:
    """Classical estimates from a table of measured training effects.

    Parameters
    ----------
    keys, delta
        The measured conditions and their effects (rows aligned).
    context_latent
        Latent control mean of every context that may be asked about or used as a source.
    tau
        Kernel bandwidth (multiple of ``scale``); ``inf`` for equal weights.
    features
        Component features for the ``features`` source, or ``None``.
    ridge
        Ridge penalty of the feature regression.
    fold_change
        Linear means and control cells for the multiplicative context transfer, with the
        per-gene share given to it (:meth:`fold_share` estimates one); ``None``: log-space only.
    dose_bandwidth
        Bandwidth of the ``dose`` estimate in decades (:func:`dose_weights`).
    states, targets, model_rows
        Cell states for the context transfer (:mod:`._states`; ``None``: context-wide
        effects and the kernel only), the latent control cells of contexts that are not
        training contexts (a training context's come from ``states``), and the model's row of
        each of ``keys`` (default: the same order), which ``states`` refers to.
    """

    def __init__(
        self,
        keys: Sequence[ConditionKey],
        delta: np.ndarray,
        context_latent: Mapping[str, np.ndarray],
        *,
        tau: float,
        features: ComponentFeatures | None,
        ridge: float,
        fold_change: FoldChange | None = None,
        dose_bandwidth: float = np.inf,
        states: CellStates | None = None,
        targets: Mapping[str, np.ndarray] | None = None,
        model_rows: Sequence[int] | None = None,
    ) -> None:
        self.keys = list(keys)
        self.fold_change = fold_change
        self.dose_bandwidth = dose_bandwidth
        self.states = states
        self._state_index = {} if states is None else {n: j for j, n in enumerate(states.names)}
        self.targets = dict(targets or {})
        self.model_rows = list(range(len(self.keys))) if model_rows is None else list(model_rows)
        self._counts: dict[tuple[str, tuple[int, ...]], dict[int, np.ndarray]] = {}
        self.delta = delta
        self.row = {k: i for i, k in enumerate(self.keys)}
        self.context_latent = dict(context_latent)
        self.tau = tau
        self.by_treatment: dict[tuple[str, str], list[int]] = {}
        self.by_drug: dict[tuple[str, str], list[int]] = {}
        for i, (c, p, d) in enumerate(self.keys):
            self.by_treatment.setdefault((p, d), []).append(i)
            self.by_drug.setdefault((c, p), []).append(i)
        self.scale = median_scale([self.context_latent[k[0]] for k in self.keys])
        self.features = features
        self.ridge = ridge
        self.coef: np.ndarray | None = None
        self.center = self._centers()
        if features is not None:
            self.coef = self._fit_ridge(range(len(self.keys)))
        self.pair_stats = self._pair_statistics()
        self.pair_coef = solve_pairs(list(self.pair_stats.values()))
        self._from_features: dict[ConditionKey, np.ndarray | None] = {}

    # --- sources --------------------------------------------------------------------------

    def own(self, key: ConditionKey) -> np.ndarray | None:
        i = self.row.get(key)
        return None if i is None else self.delta[i]

    def context(self, key: ConditionKey, latent: np.ndarray) -> np.ndarray | None:
        found = self._context_estimate(key, latent)
        return None if found is None else found.delta

    def _context_estimate(self, key: ConditionKey, latent: np.ndarray) -> Estimate | None:
        parts = self.context_parts(key, latent)
        if parts is None:
            return None
        additive, multiplicative, ratio = parts
        share = None if self.fold_change is None else self.fold_change.share
        if multiplicative is None or ratio is None or share is None:
            return Estimate(additive, "context")
        delta = additive + share * (multiplicative - additive)
        return Estimate(delta, "context", fold=(ratio, share))

    def context_parts(
        self, key: ConditionKey, latent: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None:
        """The log-space and the fold-change transfer from the other contexts (same weights),
        and the fold change's per-gene ratio.

        The last two are ``None`` without :class:`FoldChange` data or control cells of
        ``key``'s context; all are ``None`` when no other context measured the treatment.
        """
        found = self.context_weights(key, latent)
        if found is None:
            return None
        rows, w, _, additive = found
        c = key[0]
        fc = self.fold_change
        if fc is None or c not in fc.controls:
            return additive, None, None
        ratio = (w @ fc.pert_linear[rows] + FOLD_PSEUDO) / (
            w @ fc.control_linear[rows] + FOLD_PSEUDO
        )
        return additive, fold_change_effect(fc.controls[c], ratio).mean(axis=0), ratio

    def context_weights(
        self, key: ConditionKey, latent: np.ndarray
    ) -> tuple[list[int], np.ndarray, str, np.ndarray] | None:
        """The training rows the context transfer borrows from, their weights (summing to 1),
        how they were weighed (``"cell states"`` or ``"kernel"``) and the log-space transfer;
        ``None`` when no other context measured the treatment."""
        c, p, d = key
        rows = [i for i in self.by_treatment.get((p, d), []) if self.keys[i][0] != c]
        if not rows:
            return None
        found = self._state_transfer(c, rows)
        if found is not None:
            return rows, found[1], "cell states", found[0]
        sources = np.vstack([self.context_latent[self.keys[i][0]] for i in rows])
        w = kernel_weights(latent, sources, tau=self.tau, scale=self.scale)
        return rows, w, "kernel", w @ self.delta[rows]

    def _state_transfer(
        self, context: str, rows: list[int]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The transfer resolved to cell states (:mod:`._states`), and each source row's share
        of the target cells' neighbours; ``None`` without states or target cells."""
        states = self.states
        if states is None:
            return None
        index = self._state_index
        cells = self.targets.get(context)
        if cells is None and context in index:
            cells = states.cells_of(index[context])
        source = {index[self.keys[i][0]]: i for i in rows if self.keys[i][0] in index}
        if cells is None or len(cells) == 0 or not source:
            return None
        cache = (context, tuple(sorted(source)))
        if cache not in self._counts:
            self._counts[cache] = states.counts(cells, list(source), exclude=index.get(context))
        found = states.effect(
            self._counts[cache],
            {j: (self.model_rows[i], self.delta[i]) for j, i in source.items()},
        )
        if found is None:
            return None
        effect, shares = found
        by_row = {i: shares.get(j, 0.0) for j, i in source.items()}
        return effect, np.array([by_row.get(i, 0.0) for i in rows])

    def fold_share(self) -> np.ndarray | None:
        """Per gene, the weight of the fold-change transfer, from leave-one-context-out errors.

        Each training condition measured in other contexts too is estimated both ways from
        them; a gene's share is the log-space estimate's summed squared error over both
        estimates' (inverse-error weighting). ``None`` when no condition can be estimated so.
        """
        err_add: np.ndarray | float = 0.0
        err_mul: np.ndarray | float = 0.0
        n = 0
        for i, key in enumerate(self.keys):
            parts = self.context_parts(key, self.context_latent[key[0]])
            if parts is None or parts[1] is None:
                continue
            err_add = err_add + (parts[0] - self.delta[i]) ** 2
            err_mul = err_mul + (parts[1] - self.delta[i]) ** 2
            n += 1
        if n == 0:
            return None
        return np.asarray(err_add / np.maximum(err_add + err_mul, 1e-12))

    def dose(self, key: ConditionKey, *, bandwidth: float | None = None) -> np.ndarray | None:
        """The treatment's effects at its other measured doses in the same context, weighted
        by closeness in ``log10`` dose (``None`` when it has no other dose there)."""
        found = self.dose_rows(key, bandwidth=bandwidth)
        return None if found is None else found[1] @ self.delta[found[0]]

    def dose_rows(
        self, key: ConditionKey, *, bandwidth: float | None = None
    ) -> tuple[list[int], np.ndarray] | None:
        """The training rows of the treatment's other doses in ``key``'s context and their
        weights (summing to 1); ``None`` when it has no other dose there."""
        c, p, d = key
        rows = [i for i in self.by_drug.get((c, p), []) if self.keys[i][2] != d]
        if not rows:
            return None
        target = log_doses(p, d)
        distance = np.array([np.abs(log_doses(p, self.keys[i][2]) - target).sum() for i in rows])
        h = self.dose_bandwidth if bandwidth is None else bandwidth
        return rows, dose_weights(distance, h)

    def single(self, key: ConditionKey, latent: np.ndarray) -> np.ndarray | None:
        """A part of a combination: measured, else transferred, else from features."""
        for estimate in (self.own(key), self.context(key, latent)):
            if estimate is not None:
                return estimate
        return self.from_features(key)

    def combination(
        self, key: ConditionKey, latent: np.ndarray, *, leave_out: bool = False
    ) -> np.ndarray | None:
        """Sum of the parts' estimates plus the gene-wise interaction term.

        ``leave_out``: the interaction coefficients are refitted without ``key`` itself (its
        estimate as if it had not been measured).
        """
        c, p, d = key
        parts = split_combination(p)
        if len(parts) < 2:
            return None
        estimates = []
        for part, pd_ in zip(parts, dose_components(p, d), strict=True):
            est = self.single((c, part, pd_), latent)
            if est is None:
                return None
            estimates.append(est)
        coef = self.pair_coef
        if leave_out and key in self.pair_stats:
            coef = solve_pairs([v for k, v in self.pair_stats.items() if k != key])
        return np.sum(estimates, axis=0) + pair_features(estimates) @ coef

    def _pair_statistics(self) -> dict[ConditionKey, tuple[np.ndarray, np.ndarray]]:
        """Per measured combination whose parts were measured alone in its context: the
        normal-equation terms (XᵀX, Xᵀy) of the interaction regression."""
        stats = {}
        for i, (c, p, d) in enumerate(self.keys):
            parts = split_combination(p)
            if len(parts) < 2:
                continue
            found = [
                self.own((c, part, pd_))
                for part, pd_ in zip(parts, dose_components(p, d), strict=True)
            ]
            singles = [s for s in found if s is not None]
            if len(singles) < len(found):
                continue
            x = pair_features(singles)
            y = self.delta[i] - np.sum(singles, axis=0)
            stats[(c, p, d)] = (x.T @ x, x.T @ y)
        return stats

    def from_features(self, key: ConditionKey) -> np.ndarray | None:
        """The feature-ridge estimate (read-only, computed once per key: a screen of pairs
        asks for each part hundreds of times)."""
        if key not in self._from_features:
            self._from_features[key] = self._feature_estimate(key)
        return self._from_features[key]

    def _feature_estimate(self, key: ConditionKey) -> np.ndarray | None:
        if self.features is None or self.coef is None:
            return None
        v = self.features.vector(key[1], key[2])
        if v is None:
            return None
        out = self.center.get(key[0], self.center["*"]) + v @ self.coef
        out.flags.writeable = False
        return out

    def estimate(self, key: ConditionKey, latent: np.ndarray) -> Estimate | None:
        """The first applicable source (see the module docstring), or ``None``."""
        own = self.own(key)
        if own is not None:
            return Estimate(own, "own")
        found = self._context_estimate(key, latent)
        if found is not None:
            return found
        for view, fn in (
            ("dose", lambda: self.dose(key)),
            ("combination", lambda: self.combination(key, latent)),
            ("features", lambda: self.from_features(key)),
        ):
            delta = fn()
            if delta is not None:
                return Estimate(
                    delta, view, measured=view == "combination" and self.parts_measured(key)
                )
        return None

    def parts_measured(self, key: ConditionKey) -> bool:
        """Whether every part of ``key`` was measured alone in ``key``'s context."""
        c, p, d = key
        parts = zip(split_combination(p), dose_components(p, d), strict=True)
        return all(self.own((c, part, pd_)) is not None for part, pd_ in parts)

    # --- feature ridge ----------------------------------------------------------------------

    def _centers(self) -> dict[str, np.ndarray]:
        center: dict[str, np.ndarray] = {"*": self.delta.mean(axis=0)}
        for c in sorted({k[0] for k in self.keys}):
            center[c] = self.delta[[i for i, k in enumerate(self.keys) if k[0] == c]].mean(axis=0)
        return center

    def _fit_ridge(self, rows: Sequence[int] | range) -> np.ndarray | None:
        assert self.features is not None
        used, vectors = [], []
        for i in rows:
            key = self.keys[i]
            if len(split_combination(key[1])) != 1:
                continue
            v = self.features.vector(key[1], key[2])
            if v is not None:
                used.append(i)
                vectors.append(v)
        if not used:
            return None
        f = np.vstack(vectors)
        y = self.delta[used] - np.vstack([self.center[self.keys[i][0]] for i in used])
        if f.shape[1] > max(_DUAL_DIM, f.shape[0]) and self.ridge > 0:
            # Wide features (drug fingerprints: 4,096 columns): the same ridge solution from
            # the n x n system, f.T (f f.T + r I)^-1 y, instead of the d x d one (70 s -> ms).
            return f.T @ np.linalg.solve(f @ f.T + self.ridge * np.eye(f.shape[0]), y)
        lhs = f.T @ f + self.ridge * np.eye(f.shape[1])
        return np.linalg.solve(lhs, f.T @ y)

    def out_of_fold_features(self, seed: int) -> dict[int, np.ndarray]:
        """Feature-ridge estimates of the training singles, each from a fit without it.

        Perturbations are split into :data:`_FEATURE_FOLDS` groups; each group is predicted by
        the ridge fitted on the others (contexts' centres from the others too).
        """
        if self.features is None:
            return {}
        singles = sorted({k[1] for k in self.keys if len(split_combination(k[1])) == 1})
        if len(singles) < 2:
            return {}
        order = np.random.default_rng(seed).permutation(len(singles))
        fold_of = {singles[j]: n % _FEATURE_FOLDS for n, j in enumerate(order)}
        out: dict[int, np.ndarray] = {}
        for fold in sorted(set(fold_of.values())):
            train_rows = [i for i, k in enumerate(self.keys) if fold_of.get(k[1], -1) != fold]
            test_rows = [i for i, k in enumerate(self.keys) if fold_of.get(k[1], -1) == fold]
            if not test_rows or not train_rows:
                continue
            sub = Transfer(
                [self.keys[i] for i in train_rows],
                self.delta[train_rows],
                self.context_latent,
                tau=self.tau,
                features=self.features,
                ridge=self.ridge,
            )
            for i in test_rows:
                est = sub.from_features(self.keys[i])
                if est is not None:
                    out[i] = est
        return out

    # --- training views -----------------------------------------------------------------------

    def views(self, seed: int) -> list[tuple[int, str, np.ndarray]]:
        """``(row, view, estimate)`` for every training condition and every applicable view."""
        oof = self.out_of_fold_features(seed)
        out = []
        for i, key in enumerate(self.keys):
            latent = self.context_latent[key[0]]
            ctx = self.context(key, latent)
            if ctx is not None:
                out.append((i, "context", ctx))
            other_doses = self.dose(key)
            if other_doses is not None:
                out.append((i, "dose", other_doses))
            combo = self.combination(key, latent, leave_out=True)
            if combo is not None:
                out.append((i, "combination", combo))
            if i in oof:
                out.append((i, "features", oof[i]))
        return out
