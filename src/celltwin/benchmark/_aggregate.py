"""Aggregation of a run's per-unit results into per-fold leaderboard rows; the roles of models.

From the per-unit results of a run (:data:`celltwin.benchmark._folds.UNIT_COLUMNS`) the
leaderboard derives, per fold and model:

* each metric's mean over the fold's units (fold-level metrics such as ``vcc_score`` as they are);
* ``<metric>[<category>]``: the same over the units of one category (``combo_seen2`` ...);
* ``<metric>/ceiling``: the fold's value as a fraction of the split-half noise ceiling, ``model /
  ceiling`` for metrics where higher is better and ``ceiling / model`` for errors, so 1 means
  "as good as a replicate of the experiment" either way (NaN where the ceiling is <= 0);
* ``coverage``: the share of the fold's units the model predicted (models may refuse some).

The leaderboard (:mod:`._leaderboard`) averages each over folds, with a percentile-bootstrap 95%
CI over folds.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from .._keys import CONTEXT, PERTURBATION
from ..eval import METRICS
from ..models import MODELS, PEERS_EXTRA

#: Columns of ``leaderboard.csv``.
LEADERBOARD_COLUMNS: Final = ("suite", "fold", "model", "metric", "value")
#: Models reported as baselines (the simple models every learned model must beat).
BASELINE_MODELS: Final = frozenset(
    {
        "control",
        "mean",
        "additive",
        "linear",
        "context_shift",
        "nearest_perturbation",
        "nearest_dose",
        "mean_other_contexts",
        "mean_other_perturbations",
        "linear_log_dose",
        "mean_other_drugs",
    }
)
#: Peers: other groups' models run through their own packages (registered with the ``peers``
#: extra, e.g. State and scGen). Neither baselines nor celltwin's learned models.
PEER_MODELS: Final = frozenset(name for name, spec in MODELS.items() if spec.extra == PEERS_EXTRA)
#: The distributional metric of the peer comparisons (besides the suite's primary metric).
PEER_METRIC: Final = "energy_distance"
#: Reference rows that are not models: the split-half ceiling and the signature reference.
REFERENCE_ROWS: Final = ("ceiling", "reference")
COVERAGE: Final = "coverage"
#: Bootstrap resamples of the CIs over folds.
N_BOOT: Final = 2000


def base_metric(name: str) -> str:
    """``pearson_delta[combo_seen2]`` / ``mae/ceiling`` -> the metric it is derived from."""
    return name.split("[", 1)[0].split("/", 1)[0]


def higher_is_better(name: str) -> bool:
    """Direction of a metric of a leaderboard (derived names follow their base metric).

    Fractions of the ceiling (``/ceiling``) and coverage are always higher-is-better.
    """
    if name.endswith("/ceiling") or name == COVERAGE:
        return True
    base = base_metric(name)
    metric = METRICS.get(base)
    return True if metric is None else bool(metric.higher_is_better)


def role(model: str) -> str:
    """``ceiling``, ``reference``, ``baseline``, ``peer`` (:data:`PEER_MODELS`) or ``model``
    (celltwin's learned models and any other model)."""
    if model in REFERENCE_ROWS:
        return model
    if model in BASELINE_MODELS:
        return "baseline"
    return "peer" if model in PEER_MODELS else "model"


def is_unit(results: pd.DataFrame) -> pd.Series:
    """Rows of one unit (a perturbation); the others are fold-level (aggregate) values."""
    return results[PERTURBATION].fillna("").astype(str) != ""


def fold_table(results: pd.DataFrame, *, suite: str) -> pd.DataFrame:
    """Per-fold aggregates (see the module docstring) in the long ``leaderboard.csv`` layout."""
    if results.empty:
        return pd.DataFrame(columns=list(LEADERBOARD_COLUMNS))
    res = results.copy()
    res[CONTEXT] = res[CONTEXT].fillna("").astype(str)
    res[PERTURBATION] = res[PERTURBATION].fillna("").astype(str)
    res["category"] = res.get("category", pd.Series("", index=res.index)).fillna("").astype(str)
    unit = is_unit(res)
    keys = ["fold", "model", "metric"]
    # Units are averaged; fold-level values (one per context) too.
    frames = [
        res.loc[unit].groupby(keys, sort=True)["value"].mean().reset_index(),
        res.loc[~unit].groupby(keys, sort=True)["value"].mean().reset_index(),
    ]
    by_cat = res.loc[unit & (res["category"] != "")]
    if not by_cat.empty:
        cat = by_cat.groupby([*keys, "category"], sort=True)["value"].mean().reset_index()
        cat["metric"] = cat["metric"] + "[" + cat["category"] + "]"
        frames.append(cat.drop(columns="category"))
    table = pd.concat(frames, ignore_index=True)
    coverage = _coverage(res, unit)
    if coverage is not None:
        table = pd.concat([table, coverage], ignore_index=True)
    fractions = _ceiling_fractions(table)
    if fractions is not None:
        table = pd.concat([table, fractions], ignore_index=True)
    table.insert(0, "suite", suite)
    table = table.sort_values(["fold", "model", "metric"], kind="stable").reset_index(drop=True)
    return table.loc[:, list(LEADERBOARD_COLUMNS)]


def _coverage(res: pd.DataFrame, unit: pd.Series) -> pd.DataFrame | None:
    """Per fold and model: units with a finite value among all units of the fold."""
    finite = res.loc[unit & np.isfinite(res["value"].astype(float))]
    units = (
        res.loc[unit]
        .groupby("fold")[[CONTEXT, PERTURBATION]]
        .apply(lambda g: len(g.drop_duplicates()))
    )
    covered = finite.groupby(["fold", "model"])[[CONTEXT, PERTURBATION]].apply(
        lambda g: len(g.drop_duplicates())
    )
    if not len(covered):
        return None
    cov = covered.rename("value").reset_index()
    cov["value"] = cov["value"] / cov["fold"].map(units)
    cov["metric"] = COVERAGE
    return cov


def _ceiling_fractions(table: pd.DataFrame) -> pd.DataFrame | None:
    """Per fold, each model's metrics as fractions of the ceiling (``<metric>/ceiling``)."""
    main = table[~table["metric"].str.contains(r"[\[/]", regex=True)]
    ceiling = main[main["model"] == "ceiling"].set_index(["fold", "metric"])["value"]
    if not len(ceiling):
        return None
    rows = main[(main["model"] != "ceiling") & (main["metric"] != COVERAGE)]
    rows = rows[rows.set_index(["fold", "metric"]).index.isin(ceiling.index)]
    if not len(rows):
        return None
    c = ceiling.reindex(pd.MultiIndex.from_frame(rows[["fold", "metric"]])).to_numpy()
    v = rows["value"].to_numpy(dtype=float)
    up = np.array([higher_is_better(m) for m in rows["metric"]])
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(up, v / c, c / v)
    # A ceiling at or below 0 (a correlation lost in noise) makes the ratio meaningless.
    frac = np.where(np.isfinite(frac) & np.where(up, c > 0, v > 0), frac, np.nan)
    return pd.DataFrame(
        {
            "fold": rows["fold"].to_numpy(),
            "model": rows["model"].to_numpy(),
            "metric": rows["metric"].to_numpy() + "/ceiling",
            "value": frac,
        }
    )
