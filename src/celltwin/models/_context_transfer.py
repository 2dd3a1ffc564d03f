"""Ridge regression from a perturbation's signatures in other contexts to the target context."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._keys import CONTEXT, PERTURBATION
from ._signature_data import SignatureData
from ._signature_model import SignatureModel, unseen


class ContextTransferLinear(SignatureModel):
    """Ridge regression from a perturbation's source-context signatures to the target context.

    For target context ``t`` and perturbation ``p``, the sources ``S`` are the other contexts in
    which ``p`` has a training row; the examples are the perturbations with training rows in
    ``t`` and in every source (the few-shot examples). With ``y`` the target rows and ``x_s``
    the source rows of the examples, each centred by its mean over the examples::

        y ≈ sum_s x_s B_s,   B_s = beta_s I + (gene x gene ridge correction)

    i.e. a genes x genes ridge regression whose prior is a scaled copy of the sources (a
    generalised ridge ``|Y - X B|^2 + alpha |B - B0|^2`` with ``B0 = [beta_s I]``). ``beta`` is
    the least-squares fit of ``y`` on the ``x_s`` pooled over genes; the correction is solved in
    its dual (kernel) form, since examples are far fewer than genes. With a large ``alpha`` it is
    a weighted :class:`MeanOtherContexts`; with a small one it learns how the context changes
    responses. ``alpha = a · mean(diag K)`` (``K`` the examples' linear kernel), ``a`` chosen from
    ``alphas`` by exact leave-one-out error over the examples. Missing gene scores are filled
    with the context's mean of that gene.

    ``fit`` validates and keeps the training rows (``scores_``); the regression for a
    (target, sources) combination is solved when a prediction needs it, as every perturbation
    may have its own set of measured sources.

    Parameters
    ----------
    alphas
        Candidate ridge strengths, relative to ``mean(diag K)``.
    identity_prior
        Shrink towards ``beta_s I`` (default) rather than towards 0.
    min_examples
        Fewest examples (perturbations measured in the target and all sources) to fit on;
        fewer raise :class:`UnseenConditionError`.

    References
    ----------
    Hoerl & Kennard 1970 (ridge, generalised to a non-zero prior); the few-shot cell-type
    transfer setting of the NeurIPS 2023 challenge (Szalata et al. 2024).
    """

    name = "context_transfer_linear"

    def __init__(
        self,
        alphas: Sequence[float] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0),
        identity_prior: bool = True,
        min_examples: int = 2,
    ) -> None:
        self.alphas = alphas
        self.identity_prior = identity_prior
        self.min_examples = min_examples

    def _fit(self, data: SignatureData) -> None:
        if not self.alphas or any(float(a) <= 0 for a in self.alphas):
            raise ValueError(
                f"context_transfer_linear: 'alphas' must be positive numbers (got {self.alphas!r})."
            )
        if int(self.min_examples) < 2:
            raise ValueError(
                f"context_transfer_linear: 'min_examples' must be >= 2 (got {self.min_examples!r})."
            )
        self.scores_: np.ndarray = data.x.copy()

    def _array_names(self) -> tuple[str, ...]:
        return ("scores_",)

    def _predict(self, table: pd.DataFrame) -> np.ndarray:
        data = self._training()
        x, _ = data.filled()
        c_of = {c: i for i, c in enumerate(data.contexts)}
        p_of = {p: i for i, p in enumerate(data.perturbations)}
        groups: dict[tuple[int, tuple[int, ...]], list[int]] = defaultdict(list)
        for i, (context, pert) in enumerate(zip(table[CONTEXT], table[PERTURBATION], strict=True)):
            if context not in c_of:
                raise unseen(self.name, context, pert, "the context has no training signatures")
            if pert not in p_of:
                raise unseen(self.name, context, pert, "it has no training signature at all")
            t = c_of[context]
            sources = tuple(
                int(s) for s in np.flatnonzero(data.index[:, p_of[pert]] >= 0) if s != t
            )
            if not sources:
                raise unseen(self.name, context, pert, "it was measured in no other context")
            groups[(t, sources)].append(i)

        out = np.zeros((len(table), len(data.genes)))
        for (t, sources), members in groups.items():
            examples = np.flatnonzero((data.index[[t, *sources]] >= 0).all(axis=0))
            if examples.size < int(self.min_examples):
                names = [data.contexts[s] for s in sources]
                first = members[0]
                raise unseen(
                    self.name,
                    table[CONTEXT].iloc[first],
                    table[PERTURBATION].iloc[first],
                    f"only {examples.size} perturbation(s) were measured in both the target and "
                    f"the sources {names} (need {self.min_examples})",
                )
            fit = self._regression(x, data.index, t, sources, examples)
            for i in members:
                p = p_of[table[PERTURBATION].iloc[i]]
                queries = [x[data.index[s, p]] for s in sources]
                out[i] = fit.predict(queries)
        return out

    def _regression(
        self,
        x: np.ndarray,
        index: np.ndarray,
        target: int,
        sources: tuple[int, ...],
        examples: np.ndarray,
    ) -> _TransferFit:
        y = x[index[target, examples]]
        mu_t = y.mean(axis=0)
        y = y - mu_t
        xs = [x[index[s, examples]] for s in sources]
        mu_s = [a.mean(axis=0) for a in xs]
        xs = [a - m for a, m in zip(xs, mu_s, strict=True)]
        if self.identity_prior:
            # beta: least squares of y on the sources, pooled over genes and examples.
            gram = np.array([[np.vdot(a, b) for b in xs] for a in xs])
            rhs = np.array([np.vdot(a, y) for a in xs])
            beta = np.linalg.lstsq(gram, rhs, rcond=None)[0]
        else:
            beta = np.zeros(len(xs))
        resid = y - sum(b * a for b, a in zip(beta, xs, strict=True))
        kernel = sum(a @ a.T for a in xs)
        e, v = np.linalg.eigh(kernel)
        e = np.clip(e, 0.0, None)
        scale = float(np.mean(np.diag(kernel)))
        proj = v.T @ resid
        best_alpha, best_err = float("nan"), np.inf
        if scale > 0:
            for a in self.alphas:
                alpha = float(a) * scale
                shrink = e / (e + alpha)
                hat_diag = (v**2) @ shrink
                fitted = v @ (shrink[:, None] * proj)
                loo = (resid - fitted) / np.clip(1.0 - hat_diag, 1e-12, None)[:, None]
                err = float(np.mean(loo**2))
                if err < best_err:
                    best_alpha, best_err = alpha, err
            dual = v @ (proj / (e + best_alpha)[:, None])
        else:
            dual = np.zeros_like(resid)
        return _TransferFit(mu_t=mu_t, mu_s=mu_s, xs=xs, beta=beta, dual=dual)


@dataclass(frozen=True)
class _TransferFit:
    mu_t: np.ndarray
    mu_s: list[np.ndarray]
    xs: list[np.ndarray]  # centred source rows of the examples
    beta: np.ndarray
    dual: np.ndarray  # (examples, genes) dual coefficients of the ridge correction

    def predict(self, queries: list[np.ndarray]) -> np.ndarray:
        centred = [q - m for q, m in zip(queries, self.mu_s, strict=True)]
        k = sum(a @ q for a, q in zip(self.xs, centred, strict=True))
        prior = sum(b * q for b, q in zip(self.beta, centred, strict=True))
        return self.mu_t + prior + k @ self.dual


def crossfit_transfer(
    data: SignatureData, x: np.ndarray, base: ContextTransferLinear, *, folds: int, seed: int
) -> np.ndarray:
    """Out-of-fold :class:`ContextTransferLinear` predictions of the training rows.

    For each context, the rows whose perturbation is measured in another context too are cut
    into ``folds`` chunks; each chunk is predicted from every row but the chunk (its own
    perturbations' other-context rows included), as a test pair would be. Rows that cannot be
    predicted (perturbation in one context only, or too few examples) are ``NaN``.

    Parameters
    ----------
    data
        Training rows.
    x
        ``data.x`` with missing scores filled (:meth:`SignatureData.filled`).
    base
        The transfer model whose regression is used (its ``alphas`` and ``identity_prior``).
    folds, seed
        Chunks per context and the seed of their shuffle.
    """
    out = np.full_like(x, np.nan)
    rng = np.random.default_rng(seed)
    n_contexts_of = (data.index >= 0).sum(axis=0)
    for c in range(len(data.contexts)):
        rows = np.flatnonzero((data.row_context == c) & (n_contexts_of[data.row_perturbation] >= 2))
        if rows.size == 0:
            continue
        for chunk in np.array_split(rng.permutation(rows), min(int(folds), rows.size)):
            index = data.index.copy()
            index[c, data.row_perturbation[chunk]] = -1
            groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
            for r in chunk:
                p = data.row_perturbation[r]
                groups[tuple(int(s) for s in np.flatnonzero(index[:, p] >= 0))].append(int(r))
            for sources, members in groups.items():
                examples = np.flatnonzero((index[[c, *sources]] >= 0).all(axis=0))
                if examples.size < max(int(base.min_examples), 2):
                    continue
                fit = base._regression(x, index, c, sources, examples)
                for r in members:
                    p = data.row_perturbation[r]
                    out[r] = fit.predict([x[index[s, p]] for s in sources])
    return out
