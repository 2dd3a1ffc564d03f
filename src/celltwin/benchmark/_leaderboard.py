"""The leaderboard of a run: per-fold aggregates, means over folds with bootstrap CIs, files.

:class:`Leaderboard` holds a run's per-unit results and their per-fold aggregates
(:func:`~celltwin.benchmark._aggregate.fold_table`); it summarises them over folds, ranks the
models, compares the best learned model with the best baseline and with each peer, and writes
the run's files. The markdown and HTML are laid out by :mod:`celltwin.pl`
(:func:`~celltwin.pl.leaderboard_markdown`, :func:`~celltwin.pl.leaderboard_html`) from
:meth:`Leaderboard.tables`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._keys import CONTEXT, PERTURBATION
from ..eval import METRICS, MIN_CI_UNITS, PairedComparison, Verdict, paired_comparison, summarize
from ..pl import LeaderboardTables, leaderboard_html, leaderboard_markdown
from ._aggregate import (
    COVERAGE,
    N_BOOT,
    PEER_METRIC,
    REFERENCE_ROWS,
    fold_table,
    higher_is_better,
    is_unit,
    role,
)
from ._folds import FoldRun
from ._scoring import EFFECT_INTERVAL_COVERAGE
from ._suites._registry import Suite


@dataclass
class Leaderboard:
    """A suite's results: per unit, per fold, summarised over folds, and the run record.

    Attributes
    ----------
    suite, version, description
        The suite.
    metrics
        The suite's metrics, primary first.
    results
        Per-unit results (``fold, model, context, perturbation, metric, value, category``).
    table
        Per-fold aggregates (:data:`LEADERBOARD_COLUMNS`).
    timings
        One row per fold and model: status, reason, seconds, peak memory.
    record
        What ``run.json`` holds (command, versions, machine, timings).
    seed
        Seed of the run (the bootstrap CIs use it).
    folds
        Per-fold objects (cell suites): the fold's data and predictions, for the report.
    """

    suite: str
    version: str
    description: str
    metrics: list[str]
    results: pd.DataFrame
    table: pd.DataFrame
    timings: pd.DataFrame
    record: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    folds: list[FoldRun] = field(default_factory=list, repr=False)

    @classmethod
    def from_results(
        cls,
        results: pd.DataFrame,
        *,
        suite: Suite,
        timings: pd.DataFrame,
        record: dict[str, Any],
        seed: int = 0,
        folds: list[FoldRun] | None = None,
    ) -> Leaderboard:
        """Aggregate per-unit results into a leaderboard."""
        return cls(
            suite=suite.name,
            version=suite.version,
            description=suite.description,
            metrics=list(suite.metrics),
            results=results,
            table=fold_table(results, suite=suite.name),
            timings=timings,
            record=record,
            seed=seed,
            folds=list(folds or []),
        )

    @property
    def primary_metric(self) -> str:
        """The metric models are ranked by."""
        return self.metrics[0]

    def summary(self) -> pd.DataFrame:
        """Mean over folds of every (model, metric), with a bootstrap 95% CI over folds.

        Returns a long DataFrame: ``model, role, metric, n_folds, mean, ci_low, ci_high``.
        """
        rows = []
        for (model, metric), group in self.table.groupby(["model", "metric"], sort=True):
            s = summarize(group["value"].to_numpy(dtype=float), n_boot=N_BOOT, seed=self.seed)
            rows.append((model, role(str(model)), metric, s.n, s.mean, s.ci_low, s.ci_high))
        return pd.DataFrame(
            rows, columns=["model", "role", "metric", "n_folds", "mean", "ci_low", "ci_high"]
        )

    def ranking(self) -> list[str]:
        """Models (reference rows excluded) best first by the primary metric; NaN last."""
        summary = self.summary()
        prim = summary[summary["metric"] == self.primary_metric].set_index("model")["mean"]
        models = [m for m in self.models() if m not in REFERENCE_ROWS]
        sign = -1.0 if higher_is_better(self.primary_metric) else 1.0

        def key(m: str) -> tuple[bool, float, str]:
            v = float(prim.get(m, np.nan))
            return (not math.isfinite(v), sign * v if math.isfinite(v) else 0.0, m)

        return sorted(models, key=key)

    def models(self) -> list[str]:
        """Every model with results, sorted."""
        return sorted(set(self.table["model"].astype(str)))

    def comparison(self) -> dict[str, Any] | None:
        """Paired comparison of the best learned model with the best baseline (primary metric).

        Without a learned model, the best baseline is compared with the runner-up. Units are
        paired across folds (per-unit values when the metric has them, else per-fold values).
        Peers are neither (see :meth:`peer_comparisons`). Returns ``None`` when fewer than two
        models have results.
        """
        ranked = self.ranking()
        learned = [m for m in ranked if role(m) == "model"]
        baselines = [m for m in ranked if role(m) == "baseline"]
        if learned and baselines:
            a, b, kind = learned[0], baselines[0], "best learned model vs best baseline"
        elif len(baselines) >= 2:
            a, b, kind = baselines[0], baselines[1], "no learned model: best two baselines"
        else:
            return None
        return self._paired(a, b, metric=self.primary_metric, kind=kind)

    def peer_comparisons(self) -> list[dict[str, Any]]:
        """Paired comparisons of celltwin's best learned model with each peer.

        One per peer with results (best first) and metric: the primary metric and, when the
        suite reports it, :data:`PEER_METRIC` (energy distance, the distributional view State
        is trained for). Paired as in :meth:`comparison`; ``a`` is the learned model. Empty
        without a learned model or a peer.
        """
        ranked = self.ranking()
        learned = [m for m in ranked if role(m) == "model"]
        peers = [m for m in ranked if role(m) == "peer"]
        if not learned:
            return []
        metrics = [self.primary_metric]
        if PEER_METRIC != self.primary_metric and PEER_METRIC in set(self.results["metric"]):
            metrics.append(PEER_METRIC)
        out = []
        for peer in peers:
            for metric in metrics:
                found = self._paired(learned[0], peer, metric=metric, kind="learned model vs peer")
                if found is not None:
                    out.append(found)
        return out

    def _paired(self, a: str, b: str, *, metric: str, kind: str) -> dict[str, Any] | None:
        """Paired comparison of ``a`` and ``b`` on ``metric`` (``None`` if one has no values)."""
        found = self._compare(a, b, metric=metric)
        if found is None:
            return None
        pc, unit = found
        return {"kind": kind, "metric": metric, "a": a, "b": b, "unit": unit, **pc.__dict__}

    def _compare(self, a: str, b: str, *, metric: str) -> tuple[PairedComparison, str] | None:
        """``a`` vs ``b`` on ``metric``, paired by unit (or by fold), and the unit's name."""
        res = self.results[self.results["metric"] == metric]
        unit = is_unit(res)
        keys = ["fold", CONTEXT, PERTURBATION] if unit.any() else ["fold"]
        if not unit.any():
            res = self.table[self.table["metric"] == metric]
        wide = res.pivot_table(index=keys, columns="model", values="value", aggfunc="mean")
        if a not in wide.columns or b not in wide.columns:
            return None
        pc = paired_comparison(
            wide[a].to_numpy(),
            wide[b].to_numpy(),
            higher_is_better=higher_is_better(metric),
            n_boot=N_BOOT,
            seed=self.seed,
        )
        return pc, "unit" if len(keys) > 1 else "fold"

    def verdict(self, *, metrics: Sequence[str] | None = None) -> list[Verdict]:
        """The headline: the best model against the best baseline and the ceiling, per metric.

        The best model is the best learned model by the primary metric (the best of all when
        none is learned). Per metric, its mean over folds with the bootstrap CI over folds
        (none below :data:`~celltwin.eval.MIN_CI_UNITS` folds), the best baseline on that
        metric and the split-half ceiling, each compared with it paired by unit
        (:meth:`comparison`'s pairing).

        Parameters
        ----------
        metrics
            Metrics judged; default: the suite's metrics with values, in the suite's order
            (a headline writes out the first three, :data:`celltwin.pl.HEADLINE_SIZE`).
        """
        ranked = self.ranking()
        learned = [m for m in ranked if role(m) == "model"] or ranked
        if not learned:
            return []
        best = learned[0]
        summary = self.summary().set_index(["model", "metric"])
        have = set(summary.index.get_level_values("metric"))
        chosen = list(metrics) if metrics is not None else [m for m in self.metrics if m in have]
        out = []
        for metric in chosen:
            if (best, metric) not in summary.index:
                continue
            row = summary.loc[(best, metric)]
            higher = higher_is_better(metric)
            base, base_mean = _best_baseline(summary, metric, higher, besides=best)
            vs_base = self._compare(best, base, metric=metric) if base else None
            vs_ceiling = self._compare(best, "ceiling", metric=metric)
            ceiling = summary["mean"].get(("ceiling", metric), np.nan)
            n = int(row["n_folds"])
            out.append(
                Verdict(
                    model=best,
                    metric=metric,
                    higher_is_better=higher,
                    n=n,
                    mean=float(row["mean"]),
                    ci_low=float(row["ci_low"]) if n >= MIN_CI_UNITS else np.nan,
                    ci_high=float(row["ci_high"]) if n >= MIN_CI_UNITS else np.nan,
                    baseline=base,
                    baseline_mean=base_mean,
                    vs_baseline=vs_base[0] if vs_base else None,
                    ceiling_mean=float(ceiling),
                    vs_ceiling=vs_ceiling[0] if vs_ceiling else None,
                )
            )
        return out

    # --- output -------------------------------------------------------------------------------

    def tables(self) -> LeaderboardTables:
        """What the leaderboard shows (summary, ranking, comparisons, timings), for :mod:`celltwin.pl`."""
        summary = self.summary()
        models = self.models()
        refs = [m for m in REFERENCE_ROWS if m in models]
        metrics = set(summary["metric"]) | set(self.metrics)
        return LeaderboardTables(
            suite=self.suite,
            version=self.version,
            description=self.description,
            metrics=list(self.metrics),
            summary=summary,
            order=refs + self.ranking(),
            directions={m: higher_is_better(m) for m in sorted(metrics)},
            n_folds=int(self.table["fold"].nunique()),
            coverage_metric=COVERAGE,
            intervals=summary[summary["metric"] == EFFECT_INTERVAL_COVERAGE],
            comparison=self.comparison(),
            peer_comparisons=self.peer_comparisons(),
            timings=self.timings,
            record=self.record,
            seed=self.seed,
            verdicts=self.verdict(),
        )

    def to_markdown(self) -> str:
        """The suite's section of BENCHMARKS.md (:func:`celltwin.pl.leaderboard_markdown`)."""
        return leaderboard_markdown(self.tables())

    def write(self, out: str | os.PathLike[str], *, report: bool = True) -> None:
        """Write ``leaderboard.csv``, ``results.csv``, ``timings.csv``, ``leaderboard.md``,
        ``run.json`` and (``report=True``) ``report.html``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(out / "leaderboard.csv", index=False)
        results = self.results.copy()
        results.insert(0, "suite", self.suite)
        results.to_csv(out / "results.csv", index=False)
        self.timings.to_csv(out / "timings.csv", index=False)
        tables = self.tables()
        (out / "leaderboard.md").write_text(leaderboard_markdown(tables))
        if report:
            html = leaderboard_html(tables, report_tables(self))
            (out / "report.html").write_text(html, encoding="utf-8")
        record = dict(self.record)
        record["comparison"] = tables.comparison
        record["peer_comparisons"] = list(tables.peer_comparisons)
        (out / "run.json").write_text(json.dumps(_jsonable(record), indent=2) + "\n")


def _best_baseline(
    summary: pd.DataFrame, metric: str, higher: bool, *, besides: str
) -> tuple[str, float]:
    """The baseline other than ``besides`` with the best mean over folds on ``metric``
    (``("", nan)`` if none); ``summary`` indexed by model and metric."""
    rows = summary.xs(metric, level="metric")
    rows = rows[(rows["role"] == "baseline") & rows["mean"].notna() & (rows.index != besides)]
    if rows.empty:
        return "", np.nan
    name = str(rows["mean"].idxmax() if higher else rows["mean"].idxmin())
    return name, float(rows.loc[name, "mean"])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- the report's per-model tables ---------------------------------------------------------------


def report_tables(board: Leaderboard) -> dict[str, dict[str, pd.DataFrame]]:
    """Per-model tables for :func:`celltwin.pl.leaderboard_html`, pooled over every fold.

    ``metrics``: the model's per-unit values with a ``fold`` column; ``summary``: mean, median
    and bootstrap CI over all units of all folds (role ``model``), and, in the first model's
    table, the split-half ceiling (role ``ceiling``); ``deltas``: predicted vs true changes on
    the top DE genes, from the evaluations. Models in the order of :meth:`Leaderboard.ranking`.
    """
    res = board.results
    res = res[res[PERTURBATION].fillna("").astype(str) != ""]
    metric_order = [m for m in board.metrics if m in set(res["metric"])]
    metric_order += sorted(set(res["metric"]) - set(metric_order))
    deltas: dict[str, list[pd.DataFrame]] = {}
    for run in board.folds:
        for model, evaluation in run.evaluations.items():
            if len(evaluation.deltas):
                deltas.setdefault(model, []).append(evaluation.deltas)
    out: dict[str, dict[str, pd.DataFrame]] = {}
    ceiling = res[res["model"] == "ceiling"]
    for model in board.ranking():
        mine = res[res["model"] == model]
        if mine.empty:
            continue
        rows = _summary_rows(mine, "model", metric_order, seed=board.seed)
        if not out and not ceiling.empty:
            rows += _summary_rows(ceiling, "ceiling", metric_order, seed=board.seed)
        metrics = mine.loc[:, [CONTEXT, PERTURBATION, "fold", "metric", "value"]]
        tables = {"metrics": metrics.reset_index(drop=True), "summary": pd.DataFrame(rows)}
        if model in deltas:
            tables["deltas"] = pd.concat(deltas[model], ignore_index=True)
        out[model] = tables
    return out


def _summary_rows(
    frame: pd.DataFrame, tag: str, metric_order: list[str], *, seed: int
) -> list[dict[str, Any]]:
    """Mean, median and bootstrap CI of each metric over the units of ``frame``."""
    rows = []
    for metric in metric_order:
        values = frame.loc[frame["metric"] == metric, "value"].to_numpy(dtype=float)
        if values.size == 0:
            continue
        s = summarize(values, n_boot=N_BOOT, seed=seed)
        registered = METRICS.get(metric)
        rows.append(
            {
                "source": tag,
                "role": tag,
                "metric": metric,
                "mean": s.mean,
                "median": s.median,
                "ci_low": s.ci_low,
                "ci_high": s.ci_high,
                "n": s.n,
                "higher_is_better": higher_is_better(metric),
                "description": registered.description if registered else "",
            }
        )
    return rows
