"""The *move* objective (named genes or a pathway/regulon activity) and *specific effect*.

move
    Targets are genes with signed weights: named genes (``up``: +1, ``down``: -1), or the
    targets of one pathway or regulator in a prior-knowledge net (PROGENy footprint weights,
    DoRothEA modes of regulation, a Hallmark set's genes at +1), times +1 (``toward="up"``) or
    -1 (``"down"``). Per candidate::

        target     = sum_g w_g e_g / sum_g |w_g|        (g: targets among the scored genes)
        off_target = mean over the other genes of |e_g|
        score      = target - penalty * off_target

    ``target`` is the weighted mean of the targets' effects (a linear, ulm-like activity in the
    effects' own log1p units, so the penalty compares like with like); ``penalty=1`` charges one
    unit of mean off-target change per unit of target change. Higher is better.
specific
    The largest change relative to its uncertainty: ``max_g |e_g| / sd_g``. ``sd`` is the
    ``uncertainty`` the engine passes (see :class:`Objective`); where it is missing (``None`` or
    NaN) a row's ``sd`` is its robust scale, ``1.4826 * median |e_g - median(e)|``, so the score
    is the largest robust z of the row. Higher is better.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..priors import read_dorothea, read_gene_sets, read_progeny
from ._connectivity import OBJECTIVE_N_NULL
from ._objective import Objective
from ._suggest import did_you_mean

NETS: tuple[str, ...] = ("progeny", "dorothea", "hallmark")
MOVE_NULL = (
    "the candidate's effects with gene labels permuted: n_null random target sets of the same "
    "size and weights, the same for every candidate"
)
SPECIFIC_NULL = (
    "the largest |z| of as many independent standard normal effects as genes (no gene changes)"
)
_EPS = 1e-12


@lru_cache(maxsize=4)
def _net_table(net: str) -> pd.DataFrame:
    """Columns source, target, weight of a shared prior-knowledge net."""
    if net == "progeny":
        t = read_progeny(top=100).rename(columns={"pathway": "source", "gene": "target"})
    elif net == "dorothea":
        t = read_dorothea().rename(columns={"tf": "source", "mor": "weight"})
    else:
        sets = read_gene_sets(name="hallmark")
        rows = [(s, g, 1.0) for s, genes in sets.items() for g in genes]
        t = pd.DataFrame(rows, columns=["source", "target", "weight"])
    return t[["source", "target", "weight"]].astype({"weight": float})


def _targets(
    up: Sequence[str], down: Sequence[str], pathway: str | None, net: str | pd.DataFrame
) -> pd.Series:
    """Gene -> signed weight of the targets."""
    if pathway is None:
        if isinstance(up, str) or isinstance(down, str):
            raise ValueError("'up' and 'down' must be lists of gene names, not strings")
        both = sorted(set(up) & set(down))
        if both:
            raise ValueError(f"genes {both[:5]} are in both 'up' and 'down'")
        if not up and not down:
            raise ValueError("name genes to move ('up' and/or 'down') or a 'pathway'")
        return pd.Series([1.0] * len(up) + [-1.0] * len(down), index=[*up, *down], dtype=float)
    if up or down:
        raise ValueError("give either genes ('up'/'down') or a 'pathway', not both")
    if isinstance(net, pd.DataFrame):
        missing = {"source", "target", "weight"} - set(net.columns)
        if missing:
            raise ValueError(
                f"'net' lacks columns {sorted(missing)}; it needs source, target, weight"
            )
        table = net
    elif net in NETS:
        table = _net_table(net)
    else:
        raise ValueError(f"unknown net {net!r}{did_you_mean(str(net), NETS)}; choose one of {NETS}")
    rows = table[table["source"].astype(str) == pathway]
    if rows.empty:
        sources = sorted(set(table["source"].astype(str)))
        raise ValueError(
            f"{pathway!r} is not a source of the {net if isinstance(net, str) else 'given'} net"
            f"{did_you_mean(pathway, sources)} (e.g. {sources[:6]})"
        )
    return rows.groupby(rows["target"].astype(str))["weight"].sum()


def _target_change(
    x: np.ndarray, idx: np.ndarray, w: np.ndarray, abs_total: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(target, off_target) per row for targets ``idx`` (..., t) with weights ``w``."""
    sub = x[:, idx]
    target = (sub * w).sum(axis=-1) / np.abs(w).sum()
    n_off = x.shape[1] - idx.shape[-1]
    off = (abs_total[..., None] if sub.ndim == 3 else abs_total) - np.abs(sub).sum(axis=-1)
    return target, off / max(n_off, 1)


def move(
    up: Sequence[str] = (),
    down: Sequence[str] = (),
    *,
    pathway: str | None = None,
    net: str | pd.DataFrame = "progeny",
    toward: Literal["up", "down"] = "up",
    penalty: float = 1.0,
    min_targets: int = 1,
    n_null: int = OBJECTIVE_N_NULL,
    seed: int = 0,
) -> Objective:
    """Candidates that move named genes, or a pathway's/regulator's activity, the desired way.

    Parameters
    ----------
    up, down
        Genes to raise and to lower.
    pathway
        Instead of genes: a source of ``net`` (a PROGENy pathway such as ``"JAK-STAT"``, a
        DoRothEA TF such as ``"STAT1"``, a Hallmark set such as
        ``"HALLMARK_INTERFERON_GAMMA_RESPONSE"``).
    net
        ``"progeny"`` (top 100 genes per pathway, footprint weights), ``"dorothea"`` (confidence
        A-C, signed), ``"hallmark"`` (unweighted) or a DataFrame ``source, target, weight``.
    toward
        Raise (``"up"``) or lower (``"down"``) the pathway's activity.
    penalty
        Weight of the mean absolute off-target change (see the module notes).
    min_targets
        Fewest targets that must be among the scored genes.
    n_null, seed
        The null of the p-values (random target sets of the same weights).
    """
    if toward not in ("up", "down"):
        raise ValueError(f"'toward' must be 'up' or 'down' (got {toward!r})")
    if not np.isfinite(penalty) or penalty < 0:
        raise ValueError(f"'penalty' must be a finite number >= 0 (got {penalty!r})")
    weights = _targets(list(up), list(down), pathway, net)
    if pathway is not None and toward == "down":
        weights = -weights
    label = pathway if pathway is not None else f"{len(up)} up / {len(down)} down gene(s)"

    def align(genes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        pos = pd.Index(list(genes), dtype=object).get_indexer(weights.index)
        found = pos >= 0
        if found.sum() < max(min_targets, 1):
            raise ValueError(
                f"{int(found.sum())} of the {len(weights)} targets of {label!r} are among the "
                f"{len(genes)} genes scored; at least {max(min_targets, 1)} are needed. Missing e.g. {list(weights.index[~found][:5])}"
            )
        return pos[found], weights.to_numpy()[found]

    def scorer(x: np.ndarray, genes: Sequence[str], _u: np.ndarray | None) -> np.ndarray:
        idx, w = align(genes)
        target, off = _target_change(x, idx, w, np.abs(x).sum(axis=1))
        return target - penalty * off

    def tester(
        x: np.ndarray, genes: Sequence[str], scores: np.ndarray, _u: np.ndarray | None
    ) -> np.ndarray:
        idx, w = align(genes)
        sets = _random_sets(x.shape[1], idx.size, n_null, seed)
        abs_total, hits = np.abs(x).sum(axis=1), np.zeros(x.shape[0])
        step = max(1, 4_000_000 // max(1, x.shape[0] * idx.size))
        for start in range(0, n_null, step):
            target, off = _target_change(x, sets[start : start + step], w, abs_total)
            hits += ((target - penalty * off) >= scores[:, None]).sum(axis=1)
        return (1.0 + hits) / (1.0 + n_null)

    return Objective(
        name="move",
        direction="higher",
        null=MOVE_NULL,
        description=(
            f"move {label}{f' {toward}' if pathway else ''} with off-target penalty {penalty}"
        ),
        scorer=scorer,
        tester=tester,
        params={
            "up": list(up), "down": list(down), "pathway": pathway,
            "net": net if isinstance(net, str) else "custom", "toward": toward,
            "penalty": penalty, "n_null": n_null, "seed": seed,
        },
    )  # fmt: skip


@lru_cache(maxsize=8)
def _random_sets(n_genes: int, size: int, n_null: int, seed: int) -> np.ndarray:
    keys = np.random.default_rng(seed).random((n_null, n_genes))
    out = np.argpartition(keys, size - 1, axis=1)[:, :size]
    out.setflags(write=False)
    return out


def _robust_sd(x: np.ndarray) -> np.ndarray:
    med = np.median(x, axis=1, keepdims=True)
    return 1.4826 * np.median(np.abs(x - med), axis=1, keepdims=True)


def specific_z(x: np.ndarray, uncertainty: np.ndarray | None) -> np.ndarray:
    """Per-gene ``|e| / sd`` (the robust row scale where ``uncertainty`` is missing)."""
    sd = np.broadcast_to(_robust_sd(x), x.shape)
    if uncertainty is not None:
        sd = np.where(np.isfinite(uncertainty) & (uncertainty > 0), uncertainty, sd)
    return np.abs(x) / np.maximum(sd, _EPS)


def specific() -> Objective:
    """Candidates with the largest predicted change relative to its uncertainty.

    Score: ``max_g |e_g| / sd_g`` (see the module notes for ``sd`` without intervals). P-value:
    the chance that the largest of ``G`` independent ``|N(0, 1)|`` is at least the score,
    ``1 - (1 - 2 Phi(-z))^G``.
    """

    def scorer(x: np.ndarray, genes: Sequence[str], u: np.ndarray | None) -> np.ndarray:
        return specific_z(x, u).max(axis=1)

    def tester(
        x: np.ndarray, genes: Sequence[str], scores: np.ndarray, _u: np.ndarray | None
    ) -> np.ndarray:
        tail = 2.0 * norm.sf(scores)
        return -np.expm1(x.shape[1] * np.log1p(-np.minimum(tail, 1.0 - 1e-16)))

    return Objective(
        name="specific",
        direction="higher",
        null=SPECIFIC_NULL,
        description="largest predicted change relative to its uncertainty (max |effect| / sd)",
        scorer=scorer,
        tester=tester,
        params={},
    )
