"""Gene regulatory networks for the simulator: random scale-free-ish, or a DoRothEA subnetwork.

A network is a signed, weighted, sparse TF -> gene graph, plus cooperative terms: some pairs of
TFs that share targets act jointly on them (a term ``v * a_j * a_k`` in each shared target's
input: cooperative binding when ``v > 0``, redundancy / competition when ``v < 0``). These make
the pair's combined effect genuinely non-additive. The TF -> TF part is rescaled
so the steady state of :mod:`._model` is a contraction (unique, found by fixed-point iteration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..priors import read_dorothea

#: Fraction of activating edges in random networks (DoRothEA A-C is ~75 % activating).
_P_ACTIVATING = 0.75
#: Mean number of regulators per gene in random networks (Poisson, so ~13 % are unregulated).
_MEAN_IN_DEGREE = 2.0
#: Pareto shape of TF "hubness": a few TFs regulate many genes, most regulate few.
_HUB_SHAPE = 1.2
#: Edge magnitudes are log-normal around this value (units of the target's logistic input).
_WEIGHT_MEDIAN, _WEIGHT_LOG_SD = 2.5, 0.4
#: Largest summed |weight| into a TF. With Hill coefficient 2 (max slope 1/2 in log space) the
#: TF -> TF map has Lipschitz constant <= 0.8, so its fixed point is unique (see ``_model``).
MAX_TF_INPUT = 1.6
#: Probability that two TFs sharing targets cooperate (jointly regulate all their shared targets).
_P_COOPERATIVE = 0.5
#: Cooperative magnitudes are this many times an edge's: ``a_j * a_k`` is about a third of
#: ``a_j`` at typical activities, so a cooperative term then weighs about as much as an edge.
_COOPERATIVE_SCALE = 3.0
#: Edge columns of :attr:`Network.edges`; cooperative terms are in :attr:`Network.cooperative`.
EDGE_COLUMNS = ("source", "target", "weight", "sign")
COOPERATIVE_COLUMNS = ("source_a", "source_b", "target", "weight")


@dataclass(frozen=True)
class Network:
    """A signed TF -> gene network over ``genes``; the first ``n_tfs`` genes are the TFs."""

    genes: list[str]
    n_tfs: int
    weights: np.ndarray  # (n_genes, n_tfs): weights[i, j] = effect of TF j's activity on gene i
    edges: pd.DataFrame  # EDGE_COLUMNS (+ ``confidence`` for DoRothEA), one row per edge
    pairs: np.ndarray  # (n_pairs, 3) int: TF j, TF k, target gene i of each cooperative term
    pair_weights: np.ndarray  # (n_pairs,) v

    @property
    def n_genes(self) -> int:
        """Number of genes."""
        return len(self.genes)

    @property
    def cooperative(self) -> pd.DataFrame:
        """Cooperative terms as a table (COOPERATIVE_COLUMNS)."""
        names = np.asarray(self.genes, dtype=object)
        j, k, i = self.pairs.T
        return pd.DataFrame(
            {
                "source_a": names[j],
                "source_b": names[k],
                "target": names[i],
                "weight": self.pair_weights,
            }
        )


def _finish(genes: list[str], n_tfs: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray,
            rng: np.random.Generator, extra: dict[str, np.ndarray] | None = None) -> Network:  # fmt: skip
    weights = np.zeros((len(genes), n_tfs))
    weights[dst, src] = w
    # Rescale the rows of TF genes so the TF -> TF map is a contraction.
    row_sum = np.abs(weights[:n_tfs]).sum(axis=1)
    factor = np.minimum(1.0, MAX_TF_INPUT / np.maximum(row_sum, 1e-12))
    weights[:n_tfs] *= factor[:, None]
    w = weights[dst, src]
    names = np.asarray(genes, dtype=object)
    edges = pd.DataFrame(
        {"source": names[src], "target": names[dst], "weight": w, "sign": np.sign(w).astype(int)}
    )
    for key, values in (extra or {}).items():
        edges[key] = values
    order = np.lexsort((dst, src))
    # Cooperating TF pairs (complexes, co-binding) act jointly on every non-TF target they share;
    # TF genes get none, so the TF -> TF contraction bound is untouched.
    regulated = weights[n_tfs:] != 0
    shared = regulated.T.astype(np.int64) @ regulated.astype(np.int64)
    pairs, pair_weights = [], []
    for j in range(n_tfs):
        for k in range(j + 1, n_tfs):
            if shared[j, k] == 0 or rng.random() >= _P_COOPERATIVE:
                continue
            targets = n_tfs + np.flatnonzero(regulated[:, j] & regulated[:, k])
            sign = 1.0 if rng.random() < 0.5 else -1.0
            pairs += [(j, k, int(i)) for i in targets]
            pair_weights += list(sign * _COOPERATIVE_SCALE * _magnitudes(rng, targets.size))
    return Network(
        genes=list(genes), n_tfs=n_tfs, weights=weights,
        edges=edges.iloc[order].reset_index(drop=True),
        pairs=np.asarray(pairs, dtype=np.int64).reshape(-1, 3),
        pair_weights=np.asarray(pair_weights, dtype=float),
    )  # fmt: skip


def _magnitudes(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.exp(rng.normal(np.log(_WEIGHT_MEDIAN), _WEIGHT_LOG_SD, size=n))


def random_network(*, n_genes: int, n_tfs: int, rng: np.random.Generator) -> Network:
    """A random network: Poisson in-degree, heavy-tailed TF out-degree, ~75 % activating edges.

    TFs are named ``TF01``..., other genes ``G0001``...; TFs may regulate each other (cycles
    included) but not themselves.
    """
    width_tf, width_g = len(str(n_tfs)) + 1, len(str(n_genes - n_tfs)) + 1
    genes = [f"TF{j + 1:0{width_tf}d}" for j in range(n_tfs)]
    genes += [f"G{i + 1:0{width_g}d}" for i in range(n_genes - n_tfs)]
    hub = 1.0 + rng.pareto(_HUB_SHAPE, size=n_tfs)
    src_list, dst_list = [], []
    for i in range(n_genes):
        allowed = np.arange(n_tfs) if i >= n_tfs else np.delete(np.arange(n_tfs), i)
        k = min(int(rng.poisson(_MEAN_IN_DEGREE)), allowed.size)
        if k == 0:
            continue
        p = hub[allowed] / hub[allowed].sum()
        regs = rng.choice(allowed, size=k, replace=False, p=p)
        src_list.append(regs)
        dst_list.append(np.full(k, i))
    src = np.concatenate(src_list) if src_list else np.zeros(0, dtype=int)
    dst = np.concatenate(dst_list) if dst_list else np.zeros(0, dtype=int)
    sign = np.where(rng.random(src.size) < _P_ACTIVATING, 1.0, -1.0)
    return _finish(genes, n_tfs, src, dst, sign * _magnitudes(rng, src.size), rng)


def dorothea_network(
    *, n_genes: int, n_tfs: int, rng: np.random.Generator, confidence: str = "AB"
) -> Network:
    """A subnetwork of DoRothEA (real gene symbols, real signs) with ``n_genes`` genes.

    TFs are drawn with probability proportional to the square root of their number of targets;
    genes are then the targets with the most regulators among the chosen TFs (ties broken at
    random), topped up with other DoRothEA genes (unregulated in the subset) when too few.
    Magnitudes are random as in :func:`random_network`; signs are DoRothEA's ``mor``.
    """
    table = read_dorothea(confidence=confidence)
    table = table[table["tf"] != table["target"]].drop_duplicates(["tf", "target"])
    degree = table.groupby("tf").size().sort_index()
    if n_tfs > degree.size:
        raise ValueError(
            f"'n_tfs' is {n_tfs} but DoRothEA at confidence {confidence!r} has only "
            f"{degree.size} TFs: lower n_tfs or add confidence levels (e.g. 'ABC')"
        )
    p = np.sqrt(degree.to_numpy(dtype=float))
    tfs = sorted(rng.choice(degree.index.to_numpy(), size=n_tfs, replace=False, p=p / p.sum()))
    sub = table[table["tf"].isin(tfs) & ~table["target"].isin(tfs)]
    n_regs = sub.groupby("target").size()
    # Random tie-break: shuffle, then a stable sort by number of regulators.
    n_regs = n_regs.iloc[rng.permutation(n_regs.size)].sort_values(ascending=False, kind="stable")
    targets = list(n_regs.index[: n_genes - n_tfs])
    if len(targets) < n_genes - n_tfs:
        known = sorted(set(table["target"]) | set(table["tf"]))
        pool = np.asarray([g for g in known if g not in set(tfs) | set(targets)], dtype=object)
        need = n_genes - n_tfs - len(targets)
        if need > pool.size:
            raise ValueError(
                f"'n_genes' is {n_genes} but DoRothEA at confidence {confidence!r} has only "
                f"{pool.size + len(tfs) + len(targets)} genes: lower n_genes"
            )
        targets += sorted(rng.choice(pool, size=need, replace=False))
    genes = list(tfs) + sorted(targets)
    index = {g: i for i, g in enumerate(genes)}
    kept = table[table["tf"].isin(tfs) & table["target"].isin(index)]
    src = kept["tf"].map(index).to_numpy()
    dst = kept["target"].map(index).to_numpy()
    w = kept["mor"].to_numpy(dtype=float) * _magnitudes(rng, len(kept))
    return _finish(genes, n_tfs, src, dst, w, rng, {"confidence": kept["confidence"].to_numpy()})
