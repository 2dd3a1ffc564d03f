"""Regulator and pathway activity of an effect, through decoupler (issue 19, point 1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from ..priors import read_dorothea, read_progeny

#: Methods of decoupler that :func:`activity` runs.
METHODS: tuple[str, ...] = ("ulm", "mlm", "viper")
#: Networks read by name from the shared priors (any other net is a DataFrame).
NETS: tuple[str, ...] = ("dorothea", "progeny")
_NET_COLUMNS = ("source", "target", "weight")


@dataclass(frozen=True)
class Activity:
    """Activity scores of the sources (regulators, pathways) of one net, per condition.

    Attributes
    ----------
    scores
        Conditions x sources: the method's score (for ``ulm``, the t-value of the weight slope).
    pvalues
        Same shape: decoupler's p-values (BH-adjusted over sources per condition, except ``mlm``).
    sizes
        Measured targets per kept source.
    dropped
        Sources dropped, indexed by source, with columns ``measured``, ``targets``, ``reason``.
    method
        decoupler method name.
    net
        Network name (``"dorothea"``, ``"progeny"`` or ``"custom"``).
    """

    scores: pd.DataFrame
    pvalues: pd.DataFrame
    sizes: pd.Series
    dropped: pd.DataFrame
    method: str
    net: str

    def summary(self) -> str:
        """One paragraph: what was scored, how many sources were kept and dropped, and the top one."""
        n_cond, n_kept = self.scores.shape
        text = (
            f"{self.method} activity over the {self.net} net for {n_cond} condition(s): "
            f"{n_kept} source(s) scored, {len(self.dropped)} dropped for fewer than the minimum "
            "number of measured targets"
        )
        if n_kept:
            text += f" (median {int(self.sizes.median())} measured targets per kept source)"
            # the strongest score over all conditions, not the first condition's
            values = self.scores.abs().to_numpy()
            row, col = np.unravel_index(np.nanargmax(values), values.shape)
            top, score = self.scores.columns[col], self.scores.iat[row, col]
            text += f". Strongest: {top} in {self.scores.index[row]!r} ({score:+.3g})"
        return text + "."


def _effects_frame(effects: pd.Series | pd.DataFrame | AnnData) -> pd.DataFrame:
    """Conditions x genes float frame from a Series, a DataFrame or an AnnData."""
    if isinstance(effects, pd.Series):
        frame = effects.to_frame(name=effects.name if effects.name is not None else "effect").T
    elif isinstance(effects, pd.DataFrame):
        frame = effects
    elif isinstance(effects, AnnData):
        # pp.pseudobulk keeps the effect (group mean minus matched control) in layers['delta'].
        x = effects.layers["delta"] if "delta" in effects.layers else effects.X
        x = x.toarray() if sparse.issparse(x) else np.asarray(x)
        frame = pd.DataFrame(x, index=effects.obs_names, columns=effects.var_names)
    else:
        raise TypeError(
            "effects must be a genes-indexed pandas Series, a conditions x genes DataFrame or an "
            f"AnnData, not {type(effects).__name__}"
        )
    frame = frame.astype(float)
    frame.index = frame.index.astype(str)
    frame.columns = frame.columns.astype(str)
    if frame.columns.duplicated().any():
        raise ValueError(
            f"effects has duplicated genes: {sorted(set(frame.columns[frame.columns.duplicated()]))[:5]}"
        )
    if not np.isfinite(frame.to_numpy()).all():
        raise ValueError("effects holds NaN or infinite values; drop or fill those genes first")
    return frame


def _read_net(
    net: str | pd.DataFrame, confidence: Sequence[str], top_progeny: int
) -> tuple[pd.DataFrame, str]:
    """The net as columns source, target, weight, and its name."""
    if isinstance(net, pd.DataFrame):
        missing = [c for c in _NET_COLUMNS if c not in net.columns]
        if missing:
            raise ValueError(f"net is missing column(s) {missing}; it needs source, target, weight")
        table, name = net[list(_NET_COLUMNS)].copy(), "custom"
    elif net == "dorothea":
        d = read_dorothea(confidence="".join(confidence))
        table, name = d.rename(columns={"tf": "source", "mor": "weight"}), net
    elif net == "progeny":
        p = read_progeny(top=np.iinfo(np.int64).max)
        p = p.assign(abs_w=p["weight"].abs()).sort_values("abs_w", ascending=False, kind="stable")
        p = p.groupby("pathway", sort=True).head(top_progeny)
        table, name = p.rename(columns={"pathway": "source", "gene": "target"}), net
    else:
        raise ValueError(f"unknown net {net!r}; choose one of {list(NETS)} or pass a DataFrame")
    table = table[list(_NET_COLUMNS)].astype({"source": str, "target": str, "weight": float})
    if table.duplicated(["source", "target"]).any():
        raise ValueError(f"the {name} net has duplicated (source, target) edges; keep one per pair")
    return table.reset_index(drop=True), name


def _split_sources(
    table: pd.DataFrame, genes: pd.Index, min_size: int, name: str
) -> tuple[pd.Series, pd.DataFrame]:
    """Measured targets per kept source, and the dropped sources with their reason."""
    targets = table.groupby("source").size()
    measured = table[table["target"].isin(genes)].groupby("source").size()
    measured = measured.reindex(targets.index, fill_value=0)
    if measured.sum() == 0:
        raise ValueError(
            f"no gene of the effects is a target in the {name} net (e.g. effects "
            f"{list(genes[:3])}, net {list(table['target'].iloc[:3])}); use the same gene "
            "identifiers (HGNC symbols for the shared priors), e.g. var_names from the symbol column"
        )
    keep = measured >= min_size
    drop = pd.DataFrame({"measured": measured[~keep], "targets": targets[~keep]})
    drop["reason"] = [
        f"fewer than min_size={min_size} measured targets ({k} of {n})"
        for k, n in zip(drop["measured"], drop["targets"], strict=True)
    ]
    drop.index.name = "source"
    sizes = measured[keep].rename("measured")
    sizes.index.name = "source"
    return sizes, drop


def activity(
    effects: pd.Series | pd.DataFrame | AnnData,
    *,
    net: str | pd.DataFrame = "dorothea",
    method: str = "ulm",
    min_size: int = 5,
    confidence: Sequence[str] = ("A", "B", "C"),
    top_progeny: int = 500,
) -> Activity:
    """Regulator or pathway activity of effects with decoupler (``ulm`` by default).

    Parameters
    ----------
    effects
        A genes-indexed Series (one effect), a conditions x genes DataFrame, or an AnnData with
        one condition per row: ``layers['delta']`` when present (the effect in
        :func:`celltwin.pp.pseudobulk`'s output), otherwise ``X``.
    net
        ``"dorothea"`` (TF regulons, signed), ``"progeny"`` (pathway footprints) or a DataFrame
        with columns ``source``, ``target``, ``weight``.
    method
        One of :data:`METHODS`: ``"ulm"`` (univariate linear model: per source, the t-value of the
        slope of effect on weight over all measured genes, non-targets weighing 0), ``"mlm"``
        (all sources in one multivariate model) or ``"viper"``.
    min_size
        Sources with fewer measured targets are dropped and listed in :attr:`Activity.dropped`.
    confidence
        DoRothEA confidence levels kept (A most reliable).
    top_progeny
        PROGENy genes kept per pathway, the largest by absolute weight.

    Returns
    -------
    Activity
        Scores, p-values, measured targets per source, and the dropped sources with their reason.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 1:
        raise ValueError(f"min_size must be a positive integer, not {min_size!r}")
    try:
        import decoupler as dc
    except ImportError as err:  # optional dependency
        raise ImportError(
            "celltwin.explain needs decoupler: pip install 'celltwin[explain]'"
        ) from err
    frame = _effects_frame(effects)
    table, name = _read_net(net, confidence, top_progeny)
    sizes, dropped = _split_sources(table, frame.columns, min_size, name)
    if sizes.empty:
        raise ValueError(
            f"every source of the {name} net has fewer than min_size={min_size} measured targets "
            "(see the genes measured); lower min_size or measure more genes"
        )
    run = getattr(dc.mt, method)
    try:
        scores, pvalues = run(data=frame, net=table, tmin=min_size, empty=False, verbose=False)
    except ValueError as err:
        if method != "viper":
            raise
        # decoupler 2.2's viper pleiotropy correction can produce p-values outside [0, 1] on nets
        # whose sources share many targets (PROGENy's footprints do).
        raise ValueError(
            f"decoupler's viper failed on the {name} net ({err}); its pleiotropy correction "
            "breaks on sources sharing many targets: use method='ulm' or 'mlm'"
        ) from err
    scores = scores.reindex(index=frame.index, columns=sizes.index)
    pvalues = pvalues.reindex(index=frame.index, columns=sizes.index)
    return Activity(scores, pvalues, sizes, dropped, method, name)
