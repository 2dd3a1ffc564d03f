"""Regulator and pathway activities fast enough for one request: decoupler's ``ulm`` in numpy.

:func:`celltwin.explain.activity` runs decoupler, about 0.5 s per call on this machine (it
rebuilds the net each time), too slow for a prediction answered in well under 200 ms. The
server builds each net once, as a genes x sources weight matrix over the model's genes, and
scores an effect with the same univariate linear model (per source, the t-value of the slope
of the effect on the source's weights over all the model's genes, non-targets weighing 0); a
test checks it equals :func:`celltwin.explain.activity` with ``method="ulm"``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..priors import priors_available, read_dorothea, read_progeny

__all__ = ["ActivityNet", "activity_nets"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActivityNet:
    """One prior net as a weight matrix over a model's genes.

    Attributes
    ----------
    name
        ``"dorothea"`` (regulators) or ``"progeny"`` (pathways).
    sources
        Names of the kept sources (those with at least ``min_size`` targets among the genes).
    weights
        Genes x sources weights (0 where a gene is no target of the source).
    """

    name: str
    sources: list[str]
    weights: np.ndarray

    @classmethod
    def build(
        cls, name: str, table: pd.DataFrame, genes: Sequence[str], *, min_size: int = 5
    ) -> ActivityNet:
        """The net ``table`` (columns ``source``, ``target``, ``weight``) over ``genes``."""
        table = table.drop_duplicates(["source", "target"])
        position = pd.Index(list(genes))
        at = position.get_indexer(table["target"].astype(str))
        table = table[at >= 0].assign(at=at[at >= 0])
        sizes = table.groupby("source").size()
        sources = sorted(str(s) for s in sizes.index[sizes >= min_size])
        kept = table[table["source"].isin(sources)]
        weights = np.zeros((len(position), len(sources)))
        column = pd.Index(sources).get_indexer(kept["source"].astype(str))
        weights[kept["at"].to_numpy(), column] = kept["weight"].to_numpy(dtype=np.float64)
        return cls(name, sources, weights)

    def scores(self, effects: np.ndarray) -> np.ndarray:
        """ulm t-values: rows of ``effects`` (conditions x genes) x sources."""
        y = np.nan_to_num(np.atleast_2d(np.asarray(effects, dtype=np.float64)))
        x = self.weights
        n = x.shape[0]
        xm = x - x.mean(axis=0)
        ym = y - y.mean(axis=1, keepdims=True)
        sxx = (xm**2).sum(axis=0)
        sxy = ym @ xm
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = sxy / sxx
            residual = np.maximum((ym**2).sum(axis=1, keepdims=True) - slope * sxy, 0.0)
            t = slope / np.sqrt(residual / max(n - 2, 1) / sxx)
        return np.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0)


def _net_table(name: str, top_progeny: int = 500) -> pd.DataFrame:
    """The net as columns source, target, weight (as :func:`celltwin.explain.activity` reads it)."""
    if name == "dorothea":
        d = read_dorothea(confidence="ABC")
        return d.rename(columns={"tf": "source", "mor": "weight"})[["source", "target", "weight"]]
    p = read_progeny(top=np.iinfo(np.int64).max)
    p = p.assign(abs_w=p["weight"].abs()).sort_values("abs_w", ascending=False, kind="stable")
    p = p.groupby("pathway", sort=True).head(top_progeny)
    return p.rename(columns={"pathway": "source", "gene": "target"})[["source", "target", "weight"]]


def activity_nets(genes: Sequence[str]) -> dict[str, ActivityNet]:
    """DoRothEA and PROGENy over ``genes``; a net whose file is absent or that keeps no source
    is left out (logged), so a model of unnamed genes simply has no activities."""
    nets = {}
    for name in ("dorothea", "progeny"):
        if not priors_available(name):
            logger.info("no %s activities: the prior file is not here", name)
            continue
        net = ActivityNet.build(name, _net_table(name), genes)
        if net.sources:
            nets[name] = net
        else:
            logger.info("no %s activities: no source has 5 targets among the genes", name)
    return nets
