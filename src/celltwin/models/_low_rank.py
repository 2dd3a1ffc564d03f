"""Low-rank completion of the context x perturbation x gene tensor of signature scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._keys import CONTEXT, PERTURBATION
from ._model import expect_shape
from ._signature_data import SignatureData
from ._signature_model import SignatureModel, unseen


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
    factors: np.ndarray = np.zeros((n_perts, rank))
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
        options: dict[str, Any] = dict(max_iter=int(self.max_iter), tol=float(self.tol))
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
        hidden_rows: list[int] = []
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
            expect_shape(self, name, shape)

    def _predict(self, table: pd.DataFrame) -> np.ndarray:
        c_of = {c: i for i, c in enumerate(self.contexts_)}
        p_of = {p: i for i, p in enumerate(self.perturbations_)}
        out = np.zeros((len(table), len(self.genes_)))
        for i, (context, pert) in enumerate(zip(table[CONTEXT], table[PERTURBATION], strict=True)):
            if context not in c_of:
                raise unseen(self.name, context, pert, "the context has no training signatures")
            if pert not in p_of:
                raise unseen(self.name, context, pert, "it has no training signature at all")
            c = c_of[context]
            out[i] = self.mu_[c] + self.factors_[p_of[pert]] @ self.maps_[c]
        return out
