"""The result of :func:`~celltwin.eval.evaluate`: tables, summaries, comparison, files on disk."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._keys import CONTEXT, DOSE, PERTURBATION
from ._registry import get_metric
from ._stats import paired_comparison, summarize

__all__ = ["Evaluation", "summary_dict"]

METRIC = "metric"
VALUE = "value"
#: Columns of a summary entry, in order.
SUMMARY_FIELDS = ("mean", "median", "ci_low", "ci_high", "n")
#: Files :meth:`Evaluation.write` produces.
FILES = (
    "metrics.csv",
    "summary.json",
    "baselines.csv",
    "ceiling.csv",
    "aggregate.csv",
    "top_de_deltas.csv",
)


def summary_dict(
    values: pd.DataFrame, aggregate: pd.DataFrame, *, n_boot: int, seed: int
) -> dict[str, dict[str, float]]:
    """``{metric: {mean, median, ci_low, ci_high, n}}`` from long per-perturbation values.

    Perturbation-level metrics are summarised over (context, perturbation) pairs, aggregate ones
    over contexts; the CI is a percentile bootstrap of the mean (:func:`~celltwin.eval.summarize`).
    """
    out: dict[str, dict[str, float]] = {}
    for frame in (values, aggregate):
        if frame.empty:
            continue
        for name, group in frame.groupby(METRIC, sort=False):
            s = summarize(group[VALUE].to_numpy(dtype=np.float64), n_boot=n_boot, seed=seed)
            out[str(name)] = {
                "mean": s.mean,
                "median": s.median,
                "ci_low": s.ci_low,
                "ci_high": s.ci_high,
                "n": s.n,
            }
    return out


def _json_ready(value: Any) -> Any:
    """Plain JSON values: NaN and infinities become null, numpy scalars become numbers."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(eq=False)  # holds DataFrames: compare tables explicitly
class Evaluation:
    """A prediction scored against the truth, with baselines and a ceiling.

    Attributes
    ----------
    per_perturbation
        Long table: ``perturbation, context, metric, value`` (plus ``dose`` when the data have
        doses), one row per (context, perturbation, metric) of the model.
    summary
        ``{metric: {mean, median, ci_low, ci_high, n}}`` of the model (CI: bootstrap of the mean
        over perturbations; aggregate metrics over contexts).
    baselines
        ``{"control": summary, "mean": summary}`` (``mean`` only with training data), the same
        metrics for the floors.
    ceiling
        Summary of the split-half ceiling (empty when not computed).
    skipped
        ``{metric: reason}`` for requested metrics that could not be computed.
    params
        What was computed and how (JSON values): metrics, seeds, which control the prediction's
        deltas use, dropped perturbations, notes.
    aggregate
        ``context, metric, value`` for aggregate-level metrics (one value per context).
    baseline_values
        Long per-perturbation values of the baselines (column ``baseline``).
    ceiling_values
        Long per-perturbation ceiling values (mean over split repeats).
    deltas
        ``perturbation, context, gene, true_delta, pred_delta`` on each perturbation's top DE
        genes in the truth (the report's scatter plots).
    scores
        Single-number scores: ``vcc_score`` (against the mean baseline) when computable.
    """

    per_perturbation: pd.DataFrame
    summary: dict[str, dict[str, float]]
    baselines: dict[str, dict[str, dict[str, float]]]
    ceiling: dict[str, dict[str, float]]
    skipped: dict[str, str]
    params: dict[str, Any]
    aggregate: pd.DataFrame = field(default_factory=pd.DataFrame)
    baseline_values: pd.DataFrame = field(default_factory=pd.DataFrame)
    ceiling_values: pd.DataFrame = field(default_factory=pd.DataFrame)
    deltas: pd.DataFrame = field(default_factory=pd.DataFrame)
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """Columns identifying a perturbation: ``perturbation, context`` (and ``dose``)."""
        cols = [PERTURBATION, CONTEXT]
        return [*cols, DOSE] if DOSE in self.per_perturbation.columns else cols

    def to_frame(self) -> pd.DataFrame:
        """Wide table of the model's values: one row per (context, perturbation), one column per
        metric (in the order computed)."""
        order = list(dict.fromkeys(self.per_perturbation[METRIC]))
        wide = self.per_perturbation.pivot(
            index=[CONTEXT, *[k for k in self.keys if k != CONTEXT]], columns=METRIC, values=VALUE
        ).sort_index()
        wide.columns.name = None
        return wide[order]

    def summary_frame(self) -> pd.DataFrame:
        """One row per metric: the model's mean, median and CI, each baseline's and the ceiling's
        mean, and which way is better."""
        rows = []
        for name, s in self.summary.items():
            row: dict[str, Any] = {METRIC: name, **{k: s[k] for k in SUMMARY_FIELDS}}
            for base, summary in self.baselines.items():
                row[f"baseline_{base}"] = summary.get(name, {}).get("mean", np.nan)
            if self.ceiling:
                row["ceiling"] = self.ceiling.get(name, {}).get("mean", np.nan)
            row["higher_is_better"] = self.params.get("higher_is_better", {}).get(name)
            rows.append(row)
        return pd.DataFrame(rows).set_index(METRIC)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables :func:`celltwin.pl.render_report` consumes (see
        :func:`celltwin.pl.evaluation_report`).

        ``metrics`` (long per-perturbation values), ``summary`` (one row per source and metric:
        columns ``source, role, metric, mean, median, ci_low, ci_high, n, higher_is_better,
        description``; roles ``model``, ``baseline``, ``ceiling``), ``deltas`` and ``aggregate``.
        """
        higher = self.params.get("higher_is_better", {})
        descriptions = self.params.get("descriptions", {})
        rows = []
        sources = [("model", "model", self.summary)]
        sources += [(name, "baseline", s) for name, s in self.baselines.items()]
        if self.ceiling:
            sources.append(("ceiling", "ceiling", self.ceiling))
        for source, role, summary in sources:
            for name, s in summary.items():
                rows.append(
                    {
                        "source": source,
                        "role": role,
                        METRIC: name,
                        **{k: s[k] for k in SUMMARY_FIELDS},
                        "higher_is_better": higher.get(name),
                        "description": descriptions.get(name, ""),
                    }
                )
        return {
            "metrics": self.per_perturbation,
            "summary": pd.DataFrame(rows),
            "deltas": self.deltas,
            "aggregate": self.aggregate,
        }

    def to_dict(self) -> dict[str, Any]:
        """Summary, scores, baselines, ceiling, skipped metrics and parameters (JSON values)."""
        return _json_ready(
            {
                "summary": self.summary,
                "scores": self.scores,
                "baselines": self.baselines,
                "ceiling": self.ceiling,
                "skipped": self.skipped,
                "params": self.params,
            }
        )

    def write(
        self,
        path: str | os.PathLike[str],
        *,
        extra_files: Mapping[str, str] | None = None,
    ) -> Path:
        """Write the result into directory ``path`` (created if needed).

        Files: ``metrics.csv`` (long: ``perturbation, context, metric, value``),
        ``summary.json`` (summary, scores, baselines, ceiling, skipped, params),
        ``baselines.csv``, ``ceiling.csv``, ``aggregate.csv`` and ``top_de_deltas.csv``. They are
        written into a temporary folder next to ``path`` and moved in only when all succeeded,
        so a failure leaves ``path`` as it was.

        Parameters
        ----------
        path
            Output directory.
        extra_files
            ``{file name: text}``: more text files written with the tables, as part of the same
            all-or-nothing write (:func:`celltwin.pl.write_evaluation` adds ``report.html`` so).

        Returns
        -------
        Path
            The directory written.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{path} is a file; pass a directory to write the result into")
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            self.per_perturbation.to_csv(staging / "metrics.csv", index=False)
            (staging / "summary.json").write_text(
                json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
            )
            self.baseline_values.to_csv(staging / "baselines.csv", index=False)
            self.ceiling_values.to_csv(staging / "ceiling.csv", index=False)
            self.aggregate.to_csv(staging / "aggregate.csv", index=False)
            self.deltas.to_csv(staging / "top_de_deltas.csv", index=False)
            extra = dict(extra_files or {})
            for name, text in extra.items():
                (staging / name).write_text(text, encoding="utf-8")
            path.mkdir(exist_ok=True)
            for name in (*FILES, *extra):
                os.replace(staging / name, path / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return path

    def compare(self, other: Evaluation, *, n_boot: int | None = None) -> pd.DataFrame:
        """Paired comparison with another evaluation on the same perturbations, per metric.

        ``mean_diff`` and its CI are of ``self - other`` (see
        :func:`~celltwin.eval.paired_comparison`); ``share_self_better`` respects each metric's
        direction. Only (context, perturbation) pairs both scored enter.

        Returns
        -------
        DataFrame
            One row per perturbation-level metric both computed: ``n, mean_self, mean_other,
            mean_diff, ci_low, ci_high, t_low, t_high, wilcoxon_p, share_self_better,
            share_other_better, share_tied, higher_is_better``.
        """
        if not isinstance(other, Evaluation):
            raise TypeError(f"'other' must be an Evaluation (got {type(other).__name__})")
        keys = [k for k in self.keys if k in other.per_perturbation.columns]
        merged = self.per_perturbation.merge(
            other.per_perturbation, on=[*keys, METRIC], suffixes=("_self", "_other")
        )
        if merged.empty:
            raise ValueError(
                "the two evaluations share no (context, perturbation, metric); compare "
                "evaluations of the same truth"
            )
        boot = n_boot if n_boot is not None else int(self.params.get("n_boot", 1000))
        seed = int(self.params.get("seed", 0))
        rows = []
        for name, group in merged.groupby(METRIC, sort=False):
            higher = get_metric(str(name)).higher_is_better
            a = group[f"{VALUE}_self"].to_numpy(dtype=np.float64)
            b = group[f"{VALUE}_other"].to_numpy(dtype=np.float64)
            c = paired_comparison(a, b, higher_is_better=higher, n_boot=boot, seed=seed)
            both = np.isfinite(a) & np.isfinite(b)  # the pairs paired_comparison keeps
            rows.append(
                {
                    METRIC: name,
                    "n": c.n,
                    "mean_self": float(a[both].mean()) if both.any() else np.nan,
                    "mean_other": float(b[both].mean()) if both.any() else np.nan,
                    "mean_diff": c.mean_diff,
                    "ci_low": c.ci_low,
                    "ci_high": c.ci_high,
                    "t_low": c.t_low,
                    "t_high": c.t_high,
                    "wilcoxon_p": c.wilcoxon_p,
                    "share_self_better": c.share_a_better,
                    "share_other_better": c.share_b_better,
                    "share_tied": c.share_tied,
                    "higher_is_better": higher,
                }
            )
        return pd.DataFrame(rows).set_index(METRIC)
