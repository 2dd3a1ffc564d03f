"""Do two effects carry the same regulators, and does activity recover the perturbed one?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from ._activity import _effects_frame, activity


def activity_agreement(
    predicted: pd.DataFrame,
    measured: pd.DataFrame,
    *,
    net: str | pd.DataFrame = "dorothea",
    method: str = "ulm",
    min_size: int = 10,
    top: tuple[int, int] = (5, 10),
    confidence: Sequence[str] = ("A", "B", "C"),
) -> pd.DataFrame:
    """Agreement of the regulator activities of predicted and measured effects, per condition.

    Both effects are scored by :func:`activity` on their common genes (so the same sources
    pass ``min_size``); per condition the Spearman correlation of the two score vectors over
    the sources, and whether the measured effect's top regulators (highest scores, i.e. most
    activated) are among the predicted effect's.

    Parameters
    ----------
    predicted, measured
        Conditions x genes effects with the same conditions (index).
    net, method, confidence
        As in :func:`activity`.
    min_size
        Sources with fewer measured targets (among the common genes) are left out.
    top
        ``(k, m)``: the measured top ``k`` are looked for in the predicted top ``m``.

    Returns
    -------
    pandas.DataFrame
        Indexed by condition: ``spearman``, ``n_sources``, ``found`` (how many of the measured
        top ``k`` are in the predicted top ``m``), ``all_found``, ``measured_top`` and
        ``predicted_top`` (comma-separated names, best first).
    """
    pred, meas = _effects_frame(predicted), _effects_frame(measured)
    if sorted(pred.index) != sorted(meas.index):
        raise ValueError(
            "predicted and measured must hold the same conditions (index); got "
            f"{sorted(pred.index)[:3]} vs {sorted(meas.index)[:3]}"
        )
    genes = pred.columns.intersection(meas.columns)
    if len(genes) == 0:
        raise ValueError("predicted and measured share no gene (columns)")
    k, m = top
    kw = dict(net=net, method=method, min_size=min_size, confidence=confidence)
    a = activity(pred.loc[meas.index, genes], **kw).scores  # type: ignore[arg-type]
    b = activity(meas[genes], **kw).scores  # type: ignore[arg-type]
    rows = []
    for condition in meas.index:
        x, y = a.loc[condition], b.loc[condition]
        both = x.notna() & y.notna()
        rho = spearmanr(x[both], y[both]).statistic if both.sum() > 2 else np.nan
        measured_top = list(y[both].sort_values(ascending=False, kind="stable").index[:k])
        predicted_top = list(x[both].sort_values(ascending=False, kind="stable").index[:m])
        found = len(set(measured_top) & set(predicted_top))
        rows.append(
            (condition, float(rho), int(both.sum()), found, found == len(measured_top),
             ", ".join(measured_top), ", ".join(predicted_top))
        )  # fmt: skip
    columns = ["condition", "spearman", "n_sources", "found", "all_found", "measured_top"]
    return pd.DataFrame(rows, columns=[*columns, "predicted_top"]).set_index("condition")


def recovery_auroc(
    scores: pd.DataFrame,
    truth: Mapping[str, str | Sequence[str]] | pd.Series,
    *,
    sign: float = 1.0,
) -> float:
    """AUROC of activity scores at recovering each condition's perturbed source.

    As decoupler's benchmark computes it: the scores of every (condition, source) pair,
    multiplied by ``sign`` (``-1`` for knockouts and inhibitions, whose source should lose
    activity), are one ranking in which a condition's true source(s) are positives and every
    other source of that condition a negative. True sources that are not scored are left
    out, and so are conditions with none left.

    Parameters
    ----------
    scores
        Conditions x sources, e.g. :attr:`Activity.scores`.
    truth
        Condition -> its perturbed source, or several for a combination (e.g.
        ``{"KLF1": "KLF1", "FOXL2+HOXB9": ["FOXL2", "HOXB9"]}``).
    sign
        ``1`` (activation) or ``-1`` (inhibition).

    Returns
    -------
    float
        The AUROC (0.5: no better than chance; 1: every true source above every other score).
    """
    given = dict(truth.items())
    positives = {
        str(c): {t} if isinstance(t, str) else set(t) for c, t in given.items()
    }  # fmt: skip
    keep = [c for c in scores.index if positives.get(c, set()) & set(scores.columns)]
    if not keep:
        raise ValueError(
            "no condition's true source is among the scored sources (e.g. "
            f"{list(given.items())[:2]} vs sources {list(scores.columns[:3])})"
        )
    values = scores.loc[keep].to_numpy(dtype=float) * float(sign)
    labels = np.vstack([scores.columns.isin(list(positives[c])) for c in keep])
    finite = np.isfinite(values)
    if labels[finite].all():
        raise ValueError("every scored pair is a positive: an AUROC needs other sources")
    return float(roc_auc_score(labels[finite], values[finite]))
