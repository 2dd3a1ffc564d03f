"""Signature models: predict a perturbation's gene scores in a context from other signatures.

Ranked signatures (:class:`celltwin.io.RankSignatures`) have no cells, only one ranked gene list
per (context, perturbation). Their models follow a small contract in the spirit of
:class:`celltwin.models.Model`::

    model = get_signature_model("low_rank")           # only stores parameters
    model.fit(scores)                                  # training rows only
    pred = model.predict(conditions=[("RPE1", "MED1")])
    model.save("dir/")                                 # JSON + safetensors, no pickle
    same = load_signature_model("dir/")

``scores`` is the AnnData of :meth:`RankSignatures.to_scores`: ``obs`` ``context`` and
``perturbation`` (pairs unique), ``X`` the gene scores. ``NaN`` in ``X`` means "gene not measured
for this signature" (e.g. a full ranking that did not test it); every model handles it (the mean
models skip it, the regression models fill it with the context's mean score of that gene).
Predictions are finite score rows on the training genes.

Registered baselines (:func:`available_signature_models`):

``mean_other_contexts``
    The perturbation's mean score over the other contexts where it was measured.
``mean_other_perturbations``
    The target context's mean score over its training perturbations.
``low_rank``
    Low-rank completion of the context x perturbation x gene tensor (see :class:`LowRankSignatures`).
``context_transfer_linear``
    Ridge regression from the perturbation's signatures in the source contexts to the target
    context, learned on the perturbations measured in both (see :class:`ContextTransferLinear`).
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from safetensors.numpy import save_file

from .. import __version__
from .._keys import CONTEXT, PERTURBATION, UNS_KEY
from ._base import ModelFormatError, NotFittedError, UnseenConditionError
from ._persist import (
    FORMAT_VERSION,
    MODEL_FILE,
    WEIGHTS_FILE,
    _fail,
    _get,
    _load_weights,
    _sha256,
    _str_list,
    _write_atomic,
)

#: ``format`` field of a saved signature model's ``model.json``.
SIGNATURE_FORMAT: Final = "celltwin.signature_model"


# --- training data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureData:
    """Training signatures as rows plus a (context, perturbation) -> row index.

    Attributes
    ----------
    genes
        Column names of ``x``.
    contexts, perturbations
        Sorted distinct labels of the rows.
    x
        ``(rows, genes)`` float64 scores; ``NaN`` = gene not measured for that signature.
    row_context, row_perturbation
        Index into ``contexts`` / ``perturbations`` of each row.
    index
        ``(contexts, perturbations)`` int array: the row of each pair, ``-1`` when not measured.
    """

    genes: list[str]
    contexts: list[str]
    perturbations: list[str]
    x: np.ndarray
    row_context: np.ndarray
    row_perturbation: np.ndarray
    index: np.ndarray

    @classmethod
    def from_pairs(
        cls, x: np.ndarray, contexts: Sequence[str], perturbations: Sequence[str], genes: list[str]
    ) -> SignatureData:
        """Build from row-aligned context and perturbation labels."""
        ctx = np.asarray(contexts, dtype=object).astype(str)
        pert = np.asarray(perturbations, dtype=object).astype(str)
        c_names, c_idx = np.unique(ctx, return_inverse=True)
        p_names, p_idx = np.unique(pert, return_inverse=True)
        index = np.full((c_names.size, p_names.size), -1, dtype=np.int64)
        index[c_idx, p_idx] = np.arange(ctx.size)
        if (index >= 0).sum() != ctx.size:
            first = int(
                np.flatnonzero(pd.Series(list(zip(ctx, pert, strict=True))).duplicated())[0]
            )
            raise ValueError(
                f"(context, perturbation) pairs must be unique; ({ctx[first]!r}, "
                f"{pert[first]!r}) appears more than once. Fix: keep one signature "
                "per pair (RankSignatures enforces this)."
            )
        return cls(
            genes=list(genes),
            contexts=[str(c) for c in c_names],
            perturbations=[str(p) for p in p_names],
            x=np.asarray(x, dtype=np.float64),
            row_context=c_idx.astype(np.int64),
            row_perturbation=p_idx.astype(np.int64),
            index=index,
        )

    def filled(self) -> tuple[np.ndarray, np.ndarray]:
        """``x`` with each missing gene score set to its context's mean, and those means.

        Returns ``(x_filled, context_means)`` with ``context_means`` of shape
        ``(contexts, genes)``; a gene measured in none of a context's rows gets 0 (the neutral
        score of every transform).
        """
        means = np.zeros((len(self.contexts), len(self.genes)))
        out = self.x.copy()
        for c in range(len(self.contexts)):
            rows = np.flatnonzero(self.row_context == c)
            means[c] = nanmean_rows(self.x[rows])
            block = out[rows]
            missing = np.isnan(block)
            if missing.any():
                block[missing] = np.broadcast_to(means[c], block.shape)[missing]
                out[rows] = block
        return out, means


def nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Column means over the non-NaN entries; 0 where a column has none (no warning)."""
    present = ~np.isnan(x)
    count = present.sum(axis=0)
    total = np.where(present, x, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def _scores_data(scores: AnnData, *, where: str) -> SignatureData:
    if not isinstance(scores, AnnData):
        raise TypeError(f"{where}: 'scores' must be an AnnData (got {type(scores).__name__}).")
    missing = [k for k in (CONTEXT, PERTURBATION) if k not in scores.obs.columns]
    if missing:
        raise KeyError(
            f"{where}: scores.obs has no column {missing[0]!r} (columns: "
            f"{list(scores.obs.columns)}). Fix: build scores with RankSignatures.to_scores()."
        )
    if scores.n_obs == 0:
        raise ValueError(f"{where}: 'scores' has no rows. Fix: pass the training signatures.")
    if not scores.var_names.is_unique:
        dup = scores.var_names[scores.var_names.duplicated()][:3].tolist()
        raise ValueError(f"{where}: var_names must be unique genes (duplicated: {dup}).")
    x = scores.X.toarray() if sp.issparse(scores.X) else np.asarray(scores.X)
    x = np.asarray(x, dtype=np.float64)
    if np.isinf(x).any():
        raise ValueError(
            f"{where}: scores.X holds infinite values. Fix: use finite scores, NaN for genes "
            "not measured."
        )
    return SignatureData.from_pairs(
        x,
        scores.obs[CONTEXT].astype(str).to_numpy(),
        scores.obs[PERTURBATION].astype(str).to_numpy(),
        [str(g) for g in scores.var_names],
    )


def signature_conditions(conditions: pd.DataFrame | Sequence[Sequence[str]]) -> pd.DataFrame:
    """Normalise what to predict into a table with columns ``context`` and ``perturbation``.

    Accepts a DataFrame with those columns or a sequence of ``(context, perturbation)`` pairs.
    """
    if isinstance(conditions, pd.DataFrame):
        missing = [c for c in (CONTEXT, PERTURBATION) if c not in conditions.columns]
        if missing:
            raise KeyError(
                f"conditions has no column {missing[0]!r} (columns: {list(conditions.columns)}). "
                f"Fix: pass a DataFrame with columns {CONTEXT!r} and {PERTURBATION!r}."
            )
        table = pd.DataFrame(
            {
                CONTEXT: conditions[CONTEXT].astype(str).to_numpy(dtype=object),
                PERTURBATION: conditions[PERTURBATION].astype(str).to_numpy(dtype=object),
            }
        )
    elif isinstance(conditions, str) or not isinstance(conditions, Sequence):
        raise TypeError(
            "'conditions' must be a DataFrame or a list of (context, perturbation) pairs "
            f"(got {type(conditions).__name__}). Fix: conditions=[('RPE1', 'MED1')]."
        )
    else:
        rows = []
        for row in conditions:
            if isinstance(row, str) or len(row) != 2:
                raise ValueError(f"each condition must be (context, perturbation) (got {row!r}).")
            rows.append((str(row[0]), str(row[1])))
        table = pd.DataFrame(rows, columns=[CONTEXT, PERTURBATION], dtype=object)
    if len(table) == 0:
        raise ValueError("'conditions' is empty. Fix: list at least one pair to predict.")
    return table


# --- the contract -----------------------------------------------------------------------------


class SignatureModel(ABC):
    """Base class of the signature models: fit on score rows, predict score rows.

    Subclasses set ``name`` (the registry name), store their parameters in ``__init__`` and
    implement :meth:`_fit` and :meth:`_predict`. Fitted attributes shared by all models:
    ``genes_`` (training genes, the order of every prediction's columns) and ``pairs_`` (table of
    the training (context, perturbation) pairs, in row order).
    """

    name: ClassVar[str]

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

    def fit(self, scores: AnnData) -> Self:
        """Learn from training signatures and return the model.

        Parameters
        ----------
        scores
            Training rows only: ``obs`` ``context`` and ``perturbation`` (unique pairs), ``X``
            gene scores (e.g. :meth:`RankSignatures.to_scores`), ``NaN`` = not measured.

        Returns
        -------
        SignatureModel
            ``self``, fitted.
        """
        data = _scores_data(scores, where=f"{self.name}.fit")
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("__")]:
            delattr(self, attr)
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

    def _check_fitted(self) -> None:
        if not hasattr(self, "genes_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet. Fix: call .fit(scores) or load a "
                "saved model with celltwin.models.load_signature_model(dir)."
            )

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
            records ``kind`` (``"signature_scores"``), ``model`` and ``params``.

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
            "kind": "signature_scores",
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

    def _array_names(self) -> tuple[str, ...]:
        """Fitted array attributes written to the safetensors file."""
        return ()

    def _json_names(self) -> tuple[str, ...]:
        """Fitted non-array attributes (JSON values) written to ``model.json``."""
        return ()

    def _check_state(self) -> None:
        """Check loaded arrays against the gene and pair lists."""
        for name in self._array_names():
            if not isinstance(getattr(self, name, None), np.ndarray):
                raise ModelFormatError(f"{self.name}: fitted array {name!r} is missing.")

    def save(self, path: str | Path) -> None:
        """Write the fitted model to the directory ``path``: ``model.json`` + safetensors.

        Same layout and checks as :meth:`celltwin.models.Model.save` (format
        ``"celltwin.signature_model"``); nothing is pickled.
        """
        save_signature_model(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save` (of this class when called on a subclass)."""
        model = load_signature_model(path)
        if not isinstance(model, cls):
            raise ModelFormatError(
                f"{path} holds a {type(model).__name__!r} model, not a {cls.__name__!r}. "
                "Fix: use celltwin.models.load_signature_model(path)."
            )
        return model


def _unseen(model: str, context: str, perturbation: str, why: str) -> UnseenConditionError:
    return UnseenConditionError(
        f"{model} cannot predict perturbation {perturbation!r} in context {context!r}: {why}."
    )


# --- the mean baselines ------------------------------------------------------------------------


class MeanOtherContexts(SignatureModel):
    """The perturbation's mean score over the other contexts where it was measured.

    For (context ``c``, perturbation ``p``): the gene-wise mean of the training rows of ``p`` in
    contexts other than ``c`` (genes not measured are skipped; 0 when no row measured a gene). It
    is the "measured elsewhere, used as is" prediction: with one other context, that context's
    signature itself. Any target context can be asked for, even one without training rows; a
    perturbation measured in no other context raises :class:`UnseenConditionError`.

    References
    ----------
    The cross-context reference of signature-transfer studies (e.g. the sigrecon package,
    montilab; the NeurIPS 2023 challenge baselines, Szalata et al. 2024).
    """

    name = "mean_other_contexts"

    def __init__(self) -> None:
        pass

    def _fit(self, data: SignatureData) -> None:
        self.scores_: np.ndarray = data.x.copy()

    def _array_names(self) -> tuple[str, ...]:
        return ("scores_",)

    def _predict(self, table: pd.DataFrame) -> np.ndarray:
        data = self._training()
        c_of = {c: i for i, c in enumerate(data.contexts)}
        p_of = {p: i for i, p in enumerate(data.perturbations)}
        out = np.zeros((len(table), len(data.genes)))
        for i, (context, pert) in enumerate(zip(table[CONTEXT], table[PERTURBATION], strict=True)):
            if pert not in p_of:
                raise _unseen(self.name, context, pert, "it has no training signature at all")
            rows = data.index[:, p_of[pert]].copy()
            if context in c_of:
                rows[c_of[context]] = -1
            rows = rows[rows >= 0]
            if rows.size == 0:
                raise _unseen(self.name, context, pert, "it was measured in no other context")
            out[i] = nanmean_rows(data.x[rows])
        return out


class MeanOtherPerturbations(SignatureModel):
    """The target context's mean score over its training perturbations.

    For (context ``c``, perturbation ``p``): the gene-wise mean of the training rows of ``c``
    other than ``p`` itself (genes not measured skipped). It knows the context's typical
    response and nothing about ``p``; a context without training rows raises
    :class:`UnseenConditionError`.

    References
    ----------
    The "mean" baseline of perturbation benchmarks (Ahlmann-Eltze, Huber & Anders, Nat Methods
    2025; Systema, Viñas Torné et al., Nat Biotechnol 2025), on signature scores.
    """

    name = "mean_other_perturbations"

    def __init__(self) -> None:
        pass

    def _fit(self, data: SignatureData) -> None:
        self.scores_: np.ndarray = data.x.copy()

    def _array_names(self) -> tuple[str, ...]:
        return ("scores_",)

    def _predict(self, table: pd.DataFrame) -> np.ndarray:
        data = self._training()
        c_of = {c: i for i, c in enumerate(data.contexts)}
        out = np.zeros((len(table), len(data.genes)))
        for i, (context, pert) in enumerate(zip(table[CONTEXT], table[PERTURBATION], strict=True)):
            if context not in c_of:
                raise _unseen(self.name, context, pert, "the context has no training signatures")
            rows = np.flatnonzero(data.row_context == c_of[context])
            perts = np.asarray(data.perturbations, dtype=object)[data.row_perturbation[rows]]
            rows = rows[perts != pert]
            if rows.size == 0:
                raise _unseen(self.name, context, pert, "the context has no other perturbation")
            out[i] = nanmean_rows(data.x[rows])
        return out


# --- low-rank completion -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Compressed:
    """One context's filled training rows in an orthonormal basis of their span.

    ``rows = coords @ basis`` exactly, so least squares over genes can run on ``coords`` (at
    most as many columns as rows) instead of thousands of genes.
    """

    members: np.ndarray  # perturbation index of each row
    coords: np.ndarray  # (rows, k)
    basis: np.ndarray  # (k, genes), orthonormal rows


def _compress(y: np.ndarray, members: np.ndarray) -> _Compressed:
    gram = y @ y.T  # cheaper than an SVD of y when rows << genes
    e, v = np.linalg.eigh(gram)
    keep = e > max(float(e.max(initial=0.0)), 0.0) * 1e-10
    if not keep.any():
        return _Compressed(members, np.zeros((y.shape[0], 0)), np.zeros((0, y.shape[1])))
    root = np.sqrt(e[keep])
    basis = (v[:, keep].T @ y) / root[:, None]
    return _Compressed(members, v[:, keep] * root, basis)


@dataclass(frozen=True)
class _Problem:
    """Centred blocks of the kept rows and the SVD of their zero-filled unfolding."""

    blocks: list[np.ndarray]  # per context: (kept rows, k) centred coordinates
    members: list[np.ndarray]  # per context: perturbation index of each kept row
    means: list[np.ndarray]  # per context: (k,) mean coordinates of the kept rows
    u: np.ndarray
    s: np.ndarray
    n_perts: int


def _problem(comps: list[_Compressed], keep: list[np.ndarray], n_perts: int) -> _Problem:
    means = [cp.coords[k].mean(axis=0) for cp, k in zip(comps, keep, strict=True)]
    blocks = [cp.coords[k] - m for cp, k, m in zip(comps, keep, means, strict=True)]
    members = [cp.members[k] for cp, k in zip(comps, keep, strict=True)]
    z = np.zeros((n_perts, sum(b.shape[1] for b in blocks)))
    col = 0
    for b, m in zip(blocks, members, strict=True):
        z[m, col : col + b.shape[1]] = b
        col += b.shape[1]
    u, s, _ = np.linalg.svd(z, full_matrices=False)
    return _Problem(blocks, members, means, u, s, n_perts)


def _als(
    problem: _Problem, rank: int, ridge: float, *, max_iter: int, tol: float
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Alternating ridge least squares for ``blocks[c] ≈ U[members[c]] @ W[c]``.

    Minimises ``sum_c |blocks[c] - U[members[c]] W[c]|^2 + lam (|U|^2 + sum_c |W[c]|^2)``
    (equivalent to a nuclear-norm penalty ``2 lam |M|_*`` on the unfolded matrix) with
    ``lam = ridge * s1``, ``s1`` the top singular value of the zero-filled unfolding, started
    from that unfolding's SVD (the first step of soft-impute).
    """
    blocks, members, n_perts = problem.blocks, problem.members, problem.n_perts
    s1 = float(problem.s[0]) if problem.s.size else 0.0
    lam = max(ridge * s1, 1e-12)
    r = min(rank, problem.s.size)
    factors = np.zeros((n_perts, rank))
    factors[:, :r] = problem.u[:, :r] * np.sqrt(problem.s[:r])
    eye = lam * np.eye(rank)
    prev = np.inf
    maps: list[np.ndarray] = []
    for _ in range(max_iter):
        maps = []
        for c, b in enumerate(blocks):
            uc = factors[members[c]]
            maps.append(np.linalg.solve(uc.T @ uc + eye, uc.T @ b))
        lhs = np.broadcast_to(eye, (n_perts, rank, rank)).copy()
        rhs = np.zeros((n_perts, rank))
        for c, b in enumerate(blocks):
            # A context holds each perturbation at most once, so plain indexing adds correctly.
            lhs[members[c]] += maps[c] @ maps[c].T
            rhs[members[c]] += b @ maps[c].T
        factors = np.linalg.solve(lhs, rhs[..., None])[..., 0]
        loss = lam * (np.sum(factors**2) + sum(np.sum(w**2) for w in maps))
        loss += sum(np.sum((b - factors[members[c]] @ maps[c]) ** 2) for c, b in enumerate(blocks))
        if prev - loss <= tol * max(loss, 1e-300):
            break
        prev = loss
    return factors, maps


class LowRankSignatures(SignatureModel):
    """Low-rank completion of the context x perturbation x gene score tensor.

    Model: ``score[c, p, :] ≈ mu[c] + U[p] @ W[c]``, a per-context mean ``mu[c]`` (the mean of
    its training rows) plus a context-specific linear map ``W[c]`` (``rank x genes``) of a
    perturbation factor ``U[p]`` shared by all contexts. Equivalently, the perturbations x
    (contexts · genes) unfolding, centred per context, is approximated by a rank-``rank`` matrix
    fitted on the observed (context, perturbation) blocks only. A perturbation measured in some
    contexts gets its factor from them, which predicts its missing contexts.

    Fitting: alternating ridge least squares (penalty ``lam (|U|^2 + sum |W[c]|^2)``, i.e. a
    nuclear-norm penalty as in soft-impute, Mazumder, Hastie & Tibshirani 2010), started from
    the SVD of the zero-filled unfolding. It runs exactly in each context's row space (at most
    as many dimensions as rows), so thousands of genes cost little. ``lam = ridge · s₁`` with
    ``s₁`` the largest singular value of that zero-filled unfolding. Missing gene scores (NaN)
    are filled once with the context's mean of that gene.

    Choosing ``rank`` and ``ridge``: when ``rank`` is ``None`` (default), internal validation on
    the training rows only: a ``validation_fraction`` of the rows whose perturbation is measured
    in another context too (at most one row per perturbation, every context keeping at least two
    rows) is hidden, each (rank, ridge) of ``ranks`` x ``ridges`` is fitted on the rest and
    scored by squared error on the hidden rows, and the best pair is refitted on every row.
    Without such rows (a single context) it uses the smallest rank and the middle ridge.

    Parameters
    ----------
    rank
        Rank of the perturbation factors; ``None`` chooses it from ``ranks``.
    ridge
        Penalty as a fraction of ``s₁``; ``None`` chooses it from ``ridges``.
    ranks, ridges
        Candidates for internal validation.
    validation_fraction
        Share of eligible training rows hidden for validation.
    max_iter, tol
        Stop after ``max_iter`` sweeps or when the objective improves by less than ``tol``
        (relative).
    seed
        Seed of the validation draw.

    Fitted attributes: ``rank_``, ``ridge_``, ``validation_`` (table of the validation errors,
    JSON), ``contexts_``, ``perturbations_``, ``mu_`` (contexts x genes), ``factors_``
    (perturbations x rank), ``maps_`` (contexts x rank x genes).
    """

    name = "low_rank"

    def __init__(
        self,
        rank: int | None = None,
        ridge: float | None = None,
        ranks: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
        ridges: Sequence[float] = (0.1, 0.3),
        validation_fraction: float = 0.2,
        max_iter: int = 100,
        tol: float = 1e-5,
        seed: int = 0,
    ) -> None:
        self.rank = rank
        self.ridge = ridge
        self.ranks = ranks
        self.ridges = ridges
        self.validation_fraction = validation_fraction
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed

    def _fit(self, data: SignatureData) -> None:
        if self.rank is not None and (isinstance(self.rank, bool) or int(self.rank) < 1):
            raise ValueError(f"low_rank: 'rank' must be a whole number >= 1 (got {self.rank!r}).")
        if not 0 < float(self.validation_fraction) < 1:
            raise ValueError(
                "low_rank: 'validation_fraction' must lie in (0, 1) "
                f"(got {self.validation_fraction!r})."
            )
        x, _ = data.filled()
        n_perts = len(data.perturbations)
        comps = []
        for c in range(len(data.contexts)):
            rows = np.flatnonzero(data.row_context == c)
            comps.append(_compress(x[rows], data.row_perturbation[rows]))

        rank_grid = [int(self.rank)] if self.rank is not None else sorted(set(map(int, self.ranks)))
        ridge_grid = (
            [float(self.ridge)] if self.ridge is not None else list(map(float, self.ridges))
        )
        rank_grid = sorted({min(r, n_perts) for r in rank_grid})
        options = dict(max_iter=int(self.max_iter), tol=float(self.tol))
        hidden = self._validation_rows(data)
        table = []
        if (len(rank_grid) > 1 or len(ridge_grid) > 1) and hidden:
            keep = [~hidden.get(c, np.zeros(cp.members.size, bool)) for c, cp in enumerate(comps)]
            problem = _problem(comps, keep, n_perts)
            for rank in rank_grid:
                for ridge in ridge_grid:
                    factors, maps = _als(problem, rank, ridge, **options)
                    err = 0.0
                    for c, mask in hidden.items():
                        truth = comps[c].coords[mask] - problem.means[c]
                        pred = factors[comps[c].members[mask]] @ maps[c]
                        # Squared error over genes: the basis rows are orthonormal.
                        err += float(np.sum((truth - pred) ** 2))
                    table.append({"rank": rank, "ridge": ridge, "error": err})
            best = min(table, key=lambda row: row["error"])
            rank, ridge = int(best["rank"]), float(best["ridge"])
        else:
            rank, ridge = rank_grid[0], ridge_grid[len(ridge_grid) // 2]

        problem = _problem(comps, [np.ones(cp.members.size, bool) for cp in comps], n_perts)
        factors, maps = _als(problem, rank, ridge, **options)
        self.rank_: int = rank
        self.ridge_: float = ridge
        self.validation_: list[dict[str, float]] = table
        self.contexts_: list[str] = list(data.contexts)
        self.perturbations_: list[str] = list(data.perturbations)
        self.mu_: np.ndarray = np.stack(
            [m @ cp.basis for m, cp in zip(problem.means, comps, strict=True)]
        )
        self.factors_: np.ndarray = factors
        self.maps_: np.ndarray = np.stack([w @ cp.basis for w, cp in zip(maps, comps, strict=True)])

    def _validation_rows(self, data: SignatureData) -> dict[int, np.ndarray]:
        """Per context, a mask (over its rows) of the rows hidden for validation."""
        n_contexts_of = (data.index >= 0).sum(axis=0)
        eligible = np.flatnonzero(n_contexts_of[data.row_perturbation] >= 2)
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(eligible)
        n_hide = round(float(self.validation_fraction) * eligible.size)
        used_perts: set[int] = set()
        left = np.bincount(data.row_context, minlength=len(data.contexts))
        hidden_rows = []
        for row in order:
            if len(hidden_rows) >= n_hide:
                break
            c, p = data.row_context[row], data.row_perturbation[row]
            if p in used_perts or left[c] <= 2:
                continue
            used_perts.add(int(p))
            left[c] -= 1
            hidden_rows.append(int(row))
        out: dict[int, np.ndarray] = {}
        for c in range(len(data.contexts)):
            mask = np.isin(np.flatnonzero(data.row_context == c), hidden_rows)
            if mask.any():
                out[c] = mask
        return out

    def _array_names(self) -> tuple[str, ...]:
        return ("mu_", "factors_", "maps_")

    def _json_names(self) -> tuple[str, ...]:
        return ("rank_", "ridge_", "validation_", "contexts_", "perturbations_")

    def _check_state(self) -> None:
        super()._check_state()
        shapes = (
            (len(self.contexts_), len(self.genes_)),
            (len(self.perturbations_), self.rank_),
            (len(self.contexts_), self.rank_, len(self.genes_)),
        )
        for name, shape in zip(self._array_names(), shapes, strict=True):
            if getattr(self, name).shape != shape:
                raise ModelFormatError(f"low_rank: array {name!r} should have shape {shape}.")

    def _predict(self, table: pd.DataFrame) -> np.ndarray:
        c_of = {c: i for i, c in enumerate(self.contexts_)}
        p_of = {p: i for i, p in enumerate(self.perturbations_)}
        out = np.zeros((len(table), len(self.genes_)))
        for i, (context, pert) in enumerate(zip(table[CONTEXT], table[PERTURBATION], strict=True)):
            if context not in c_of:
                raise _unseen(self.name, context, pert, "the context has no training signatures")
            if pert not in p_of:
                raise _unseen(self.name, context, pert, "it has no training signature at all")
            c = c_of[context]
            out[i] = self.mu_[c] + self.factors_[p_of[pert]] @ self.maps_[c]
        return out


# --- cross-context ridge regression ------------------------------------------------------------


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
                raise _unseen(self.name, context, pert, "the context has no training signatures")
            if pert not in p_of:
                raise _unseen(self.name, context, pert, "it has no training signature at all")
            t = c_of[context]
            sources = tuple(
                int(s) for s in np.flatnonzero(data.index[:, p_of[pert]] >= 0) if s != t
            )
            if not sources:
                raise _unseen(self.name, context, pert, "it was measured in no other context")
            groups[(t, sources)].append(i)

        out = np.zeros((len(table), len(data.genes)))
        for (t, sources), members in groups.items():
            examples = np.flatnonzero((data.index[[t, *sources]] >= 0).all(axis=0))
            if examples.size < int(self.min_examples):
                names = [data.contexts[s] for s in sources]
                first = members[0]
                raise _unseen(
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


# --- registry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureModelSpec:
    """A registered signature model.

    Attributes
    ----------
    name
        Registry name (``get_signature_model(name)``), equal to ``cls.name``.
    cls
        The :class:`SignatureModel` subclass.
    description
        One line.
    reference
        Where the method comes from.
    """

    name: str
    cls: type[SignatureModel]
    description: str
    reference: str

    def __post_init__(self) -> None:
        if self.cls.name != self.name:
            raise ValueError(
                f"SignatureModelSpec {self.name!r}: cls {self.cls.__name__} declares name="
                f"{self.cls.name!r}; the spec must agree."
            )


#: Registered signature models by name (add more with :func:`register_signature_model`).
SIGNATURE_MODELS: Final[dict[str, SignatureModelSpec]] = {}


def register_signature_model(spec: SignatureModelSpec) -> SignatureModelSpec:
    """Add a signature model to the registry (names are unique) and return its spec."""
    if spec.name in SIGNATURE_MODELS:
        raise ValueError(f"signature model {spec.name!r} is already registered")
    SIGNATURE_MODELS[spec.name] = spec
    return spec


for _spec in (
    SignatureModelSpec(
        name="mean_other_contexts",
        cls=MeanOtherContexts,
        description="The perturbation's mean signature over the other contexts measuring it.",
        reference="Cross-context reference of signature transfer (sigrecon; Szalata et al. 2024)",
    ),
    SignatureModelSpec(
        name="mean_other_perturbations",
        cls=MeanOtherPerturbations,
        description="The target context's mean signature over its training perturbations.",
        reference="Ahlmann-Eltze, Huber & Anders, Nat Methods 2025 (mean baseline)",
    ),
    SignatureModelSpec(
        name="low_rank",
        cls=LowRankSignatures,
        description="Low-rank completion mu[c] + U[p] W[c] of the context x perturbation x gene "
        "tensor (ALS, rank by internal validation).",
        reference="Mazumder, Hastie & Tibshirani, JMLR 2010 (soft-impute)",
    ),
    SignatureModelSpec(
        name="context_transfer_linear",
        cls=ContextTransferLinear,
        description="Ridge map from source-context signatures to the target context, learned on "
        "the perturbations measured in both (shrunk towards a scaled copy).",
        reference="Hoerl & Kennard 1970; few-shot setting of Szalata et al. 2024",
    ),
):
    register_signature_model(_spec)


def get_signature_model(name: str, **params: Any) -> SignatureModel:
    """Create the signature model registered as ``name`` with the given parameters (not fitted).

    Examples
    --------
    >>> get_signature_model("low_rank", rank=3)
    LowRankSignatures(rank=3, ridge=None, ranks=(1, 2, 4, 8, 16, 32, 64), ridges=(0.1, 0.3), validation_fraction=0.2, max_iter=100, tol=1e-05, seed=0)
    """
    try:
        spec = SIGNATURE_MODELS[name]
    except KeyError:
        raise KeyError(
            f"no signature model named {name!r}. Fix: use one of {sorted(SIGNATURE_MODELS)}."
        ) from None
    return spec.cls(**params)


def available_signature_models() -> pd.DataFrame:
    """Table of the registered signature models (index ``name``; ``description``,
    ``reference``, ``class``)."""
    specs = list(SIGNATURE_MODELS.values())
    return pd.DataFrame(
        {
            "description": [s.description for s in specs],
            "reference": [s.reference for s in specs],
            "class": [s.cls.__name__ for s in specs],
        },
        index=pd.Index([s.name for s in specs], name="name"),
    )


# --- persistence ---------------------------------------------------------------------------------


def save_signature_model(model: SignatureModel, path: Path) -> None:
    """Write ``model`` to the directory ``path`` (the layout of :mod:`celltwin.models._persist`)."""
    model._check_fitted()
    params = model.get_params()
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{model.name}: parameters {params!r} cannot be written as JSON ({err}). "
            "Fix: use plain numbers, strings, lists and dicts as parameters."
        ) from None
    path.mkdir(parents=True, exist_ok=True)
    arrays = {
        name: np.ascontiguousarray(getattr(model, name), dtype=np.float64)
        for name in model._array_names()
    }
    weights = path / WEIGHTS_FILE
    tmp = weights.with_name(weights.name + ".tmp")
    save_file(arrays, str(tmp))
    tmp.replace(weights)
    meta = {
        "format": SIGNATURE_FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "params": params,
        "celltwin_version": __version__,
        "genes": list(model.genes_),
        "pairs": {c: [str(v) for v in model.pairs_[c]] for c in (CONTEXT, PERTURBATION)},
        "state": {name: getattr(model, name) for name in model._json_names()},
        "weights": {
            "file": WEIGHTS_FILE,
            "sha256": _sha256(weights),
            "arrays": {
                name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in arrays.items()
            },
        },
    }
    _write_atomic(path / MODEL_FILE, json.dumps(meta, indent=1, allow_nan=False).encode("utf-8"))


def load_signature_model(path: str | Path) -> SignatureModel:
    """Load a signature model saved with :meth:`SignatureModel.save`, whichever it is.

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a directory.
    ModelFormatError
        When the files are missing, damaged, of another format or version, or inconsistent.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"no model directory at {path}. Fix: pass the folder given to save()."
        )
    meta_path = path / MODEL_FILE
    if not meta_path.is_file():
        raise _fail(path, f"{MODEL_FILE} is missing (not a celltwin model directory)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _fail(path, f"{MODEL_FILE} is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != SIGNATURE_FORMAT:
        raise _fail(path, f"{MODEL_FILE} is not a {SIGNATURE_FORMAT!r} file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise _fail(path, f"format version {meta.get('format_version')!r} is not supported")
    name = _get(meta, "model", str, path)
    if name not in SIGNATURE_MODELS:
        raise _fail(
            path, f"unknown signature model {name!r} (registered: {sorted(SIGNATURE_MODELS)})"
        )
    arrays = _load_weights(path, _get(meta, "weights", dict, path))
    params = _get(meta, "params", dict, path)
    try:
        model = SIGNATURE_MODELS[name].cls(**params)
    except TypeError as err:
        raise _fail(path, f"parameters {params!r} do not fit {name!r} ({err})") from None
    genes = _str_list(meta.get("genes"), "genes", path)
    if len(set(genes)) != len(genes):
        raise _fail(path, "the gene list has duplicates")
    pairs = _get(meta, "pairs", dict, path)
    columns = {c: _str_list(pairs.get(c), f"pairs.{c}", path) for c in (CONTEXT, PERTURBATION)}
    if len(columns[CONTEXT]) != len(columns[PERTURBATION]):
        raise _fail(path, "the 'pairs' columns differ in length")
    model.genes_ = genes
    model.pairs_ = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in columns.items()})
    state = _get(meta, "state", dict, path)
    if set(state) != set(model._json_names()):
        raise _fail(path, f"state fields {sorted(state)} != expected {sorted(model._json_names())}")
    for key, value in state.items():
        setattr(model, key, value)
    if set(arrays) != set(model._array_names()):
        raise _fail(path, f"weights hold arrays {sorted(arrays)}, expected {model._array_names()}")
    for key, value in arrays.items():
        setattr(model, key, value)
    n_pairs, n_genes = len(model.pairs_), len(genes)
    if "scores_" in arrays and arrays["scores_"].shape != (n_pairs, n_genes):
        raise _fail(path, f"'scores_' should have shape {(n_pairs, n_genes)}")
    try:
        model._check_state()
    except ModelFormatError as err:
        raise _fail(path, str(err)) from None
    return model
