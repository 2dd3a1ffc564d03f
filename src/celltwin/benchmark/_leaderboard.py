"""The leaderboard: per-fold aggregates, means over folds with bootstrap CIs, files on disk.

From the per-unit results of a run (:data:`celltwin.benchmark._runner.UNIT_COLUMNS`) the
leaderboard derives, per fold and model:

* each metric's mean over the fold's units (fold-level metrics such as ``vcc_score`` as they are);
* ``<metric>[<category>]``: the same over the units of one category (``combo_seen2`` ...);
* ``<metric>/ceiling``: the fold's value as a fraction of the split-half noise ceiling, ``model /
  ceiling`` for metrics where higher is better and ``ceiling / model`` for errors, so 1 means
  "as good as a replicate of the experiment" either way (NaN where the ceiling is <= 0);
* ``coverage``: the share of the fold's units the model predicted (models may refuse some).

The summary averages each over folds, with a percentile-bootstrap 95% CI over folds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from .._keys import CONTEXT, PERTURBATION
from ..eval import paired_comparison, summarize
from ..models._registry import MODELS, PEERS_EXTRA

if TYPE_CHECKING:
    from ._runner import FoldRun
    from ._suite import Suite

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
    from ..eval import METRICS
    from ._cell_suites import SUITE_METRICS

    if name.endswith("/ceiling") or name == COVERAGE:
        return True
    base = base_metric(name)
    metric = METRICS.get(base) or SUITE_METRICS.get(base)
    return True if metric is None else bool(metric.higher_is_better)


def role(model: str) -> str:
    """``ceiling``, ``reference``, ``baseline``, ``peer`` (:data:`PEER_MODELS`) or ``model``
    (celltwin's learned models and any other model)."""
    if model in REFERENCE_ROWS:
        return model
    if model in BASELINE_MODELS:
        return "baseline"
    return "peer" if model in PEER_MODELS else "model"


# --- per-fold aggregation ---------------------------------------------------------------------


def _is_unit(results: pd.DataFrame) -> pd.Series:
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
    unit = _is_unit(res)
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

    # Coverage: units with a finite value among all units of the fold.
    finite = res.loc[unit & np.isfinite(res["value"].astype(float))]
    units = (
        res.loc[unit]
        .groupby("fold")[[CONTEXT, PERTURBATION]]
        .apply(lambda g: len(g.drop_duplicates()))
    )
    covered = finite.groupby(["fold", "model"])[[CONTEXT, PERTURBATION]].apply(
        lambda g: len(g.drop_duplicates())
    )
    if len(covered):
        cov = covered.rename("value").reset_index()
        cov["value"] = cov["value"] / cov["fold"].map(units)
        cov["metric"] = COVERAGE
        table = pd.concat([table, cov], ignore_index=True)

    # Fractions of the ceiling, per fold.
    main = table[~table["metric"].str.contains(r"[\[/]", regex=True)]
    ceiling = main[main["model"] == "ceiling"].set_index(["fold", "metric"])["value"]
    if len(ceiling):
        rows = main[(main["model"] != "ceiling") & (main["metric"] != COVERAGE)]
        rows = rows[rows.set_index(["fold", "metric"]).index.isin(ceiling.index)]
        if len(rows):
            c = ceiling.reindex(pd.MultiIndex.from_frame(rows[["fold", "metric"]])).to_numpy()
            v = rows["value"].to_numpy(dtype=float)
            up = np.array([higher_is_better(m) for m in rows["metric"]])
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = np.where(up, v / c, c / v)
            # A ceiling at or below 0 (a correlation lost in noise) makes the ratio meaningless.
            frac = np.where(np.isfinite(frac) & np.where(up, c > 0, v > 0), frac, np.nan)
            table = pd.concat(
                [
                    table,
                    pd.DataFrame(
                        {
                            "fold": rows["fold"].to_numpy(),
                            "model": rows["model"].to_numpy(),
                            "metric": rows["metric"].to_numpy() + "/ceiling",
                            "value": frac,
                        }
                    ),
                ],
                ignore_index=True,
            )
    table.insert(0, "suite", suite)
    table = table.sort_values(["fold", "model", "metric"], kind="stable").reset_index(drop=True)
    return table.loc[:, list(LEADERBOARD_COLUMNS)]


# --- the leaderboard ----------------------------------------------------------------------------


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
        res = self.results[self.results["metric"] == metric]
        unit = _is_unit(res)
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
        return {
            "kind": kind,
            "metric": metric,
            "a": a,
            "b": b,
            "unit": "unit" if len(keys) > 1 else "fold",
            **pc.__dict__,
        }

    # --- output -------------------------------------------------------------------------------

    def to_markdown(self) -> str:
        """The suite's section of BENCHMARKS.md (see :func:`markdown_section`)."""
        return markdown_section(self)

    def write(self, out: str | Path, *, report: bool = True) -> None:
        """Write ``leaderboard.csv``, ``results.csv``, ``timings.csv``, ``leaderboard.md``,
        ``run.json`` and (``report=True``) ``report.html``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(out / "leaderboard.csv", index=False)
        results = self.results.copy()
        results.insert(0, "suite", self.suite)
        results.to_csv(out / "results.csv", index=False)
        self.timings.to_csv(out / "timings.csv", index=False)
        (out / "leaderboard.md").write_text(self.to_markdown())
        if report:
            (out / "report.html").write_text(report_html(self), encoding="utf-8")
        record = dict(self.record)
        record["comparison"] = self.comparison()
        record["peer_comparisons"] = self.peer_comparisons()
        (out / "run.json").write_text(json.dumps(_jsonable(record), indent=2) + "\n")


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


# --- markdown ----------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 10 ** (-digits)):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def _cell(summary: pd.DataFrame, model: str, metric: str, *, ci: bool = True) -> str:
    row = summary[(summary["model"] == model) & (summary["metric"] == metric)]
    if row.empty:
        return "—"
    r = row.iloc[0]
    if not ci or r["n_folds"] < 2:
        return _fmt(r["mean"])
    return f"{_fmt(r['mean'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"


def _seeds(board: Leaderboard) -> str:
    """``"seed 0"``, or for :func:`~celltwin.benchmark.average_seeds` the seeds averaged."""
    seeds = board.record.get("seeds")
    if not seeds:
        return f"seed {board.seed}"
    return f"seeds {', '.join(map(str, seeds))} (each unit's values averaged over them)"


def _small_n(c: dict[str, Any]) -> str:
    """The comparison's checks that do not lean on the bootstrap (narrow with few units);
    nothing for a single unit, where neither is defined."""
    if c["n"] < 2:
        return ""
    return (
        f"Student's t 95% CI [{_fmt(c['t_low'])}, {_fmt(c['t_high'])}]; Wilcoxon signed-rank "
        f"p = {_fmt(c['wilcoxon_p'])}."
    )


def _count(n: int, noun: str) -> str:
    """``"1 unit"``, ``"8 units"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _label(model: str) -> str:
    tag = role(model)
    if tag == "ceiling":
        return "*ceiling (split-half)*"
    if tag == "reference":
        return "*reference (measured elsewhere)*"
    if tag in ("baseline", "peer"):
        return f"{model} ({tag})"
    return f"**{model}**"


#: Metric name of the effect-interval coverage rows (see ``_runner.effect_interval_coverage``).
EFFECT_INTERVAL_COVERAGE = "effect_interval_coverage"


def markdown_section(board: Leaderboard) -> str:
    """Markdown for one suite: models x metrics (mean over folds, 95% CI), ceiling, timings."""
    summary = board.summary()
    metrics = [m for m in board.metrics if m in set(summary["metric"])]
    arrows = {m: "↑" if higher_is_better(m) else "↓" for m in metrics}
    refs = [m for m in REFERENCE_ROWS if m in board.models()]
    order = refs + board.ranking()
    n_folds = board.table["fold"].nunique()
    lines = [
        f"## {board.suite} (v{board.version})",
        "",
        board.description,
        "",
        f"{n_folds} folds, {_seeds(board)}. Mean over folds [bootstrap 95% CI over folds]; "
        f"ranked by **{board.primary_metric}** {arrows.get(board.primary_metric, '')}.",
        "",
    ]
    left_out = board.record.get("left_out") or {}
    if left_out:
        names = [f"{model} ({', '.join(folds)})" for model, folds in left_out.items()]
        lines += ["Left out, not run at every seed: " + "; ".join(names) + ".", ""]
    header = ["model", *[f"{m} {arrows[m]}" for m in metrics], "coverage"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    # Folds with any value: a model that cannot produce the primary metric at all (``linear``
    # has no cells for the VCC score) still ran on every fold.
    ran = summary.groupby("model")["n_folds"].max()
    partial = []
    for model in order:
        cells = [_cell(summary, model, m) for m in metrics]
        cov = "" if model in refs else _cell(summary, model, COVERAGE, ci=False)
        label = _label(model)
        # A model run on some folds only is not comparable with the others' means: say so.
        k = int(ran.get(model, n_folds))
        if model not in refs and k < n_folds:
            label += f" ({k} of {n_folds} folds)"
            partial.append(model)
        lines.append("| " + " | ".join([label, *cells, cov]) + " |")
    if partial:
        lines += [
            "",
            f"{', '.join(partial)}: run on fewer folds than the others; compare them with the "
            "paired differences below (same folds only), not with the means above.",
        ]
    intervals = summary[summary["metric"] == EFFECT_INTERVAL_COVERAGE]
    if len(intervals):
        nominal = board.record.get("interval_nominal")
        lines += [
            "",
            "Effect intervals: share of held-out true gene effects inside the model's interval"
            + (f" (nominal {nominal:.0%}): " if nominal else ": ")
            + "; ".join(
                f"{r.model} {_fmt(r.mean)} [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
                for r in intervals.itertuples()
            )
            + ".",
        ]

    fractions = [f"{m}/ceiling" for m in metrics if f"{m}/ceiling" in set(summary["metric"])]
    if fractions:
        lines += [
            "",
            "Fraction of the split-half noise ceiling (1 = as good as a replicate; "
            "model/ceiling, or ceiling/model for errors):",
            "",
            "| model | " + " | ".join(fractions) + " |",
            "|" + "---|" * (len(fractions) + 1),
        ]
        for model in board.ranking():
            cells = [_cell(summary, model, f) for f in fractions]
            lines.append("| " + " | ".join([_label(model), *cells]) + " |")

    # Per-category values of the first two metrics (the primary and the suite's own score).
    categorised = sorted(
        {
            m
            for m in summary["metric"]
            if "[" in m and "/" not in m and base_metric(m) in board.metrics[:2]
        },
        key=lambda m: (metrics.index(base_metric(m)) if base_metric(m) in metrics else 99, m),
    )
    if categorised:
        lines += [
            "",
            "By category:",
            "",
            "| model | " + " | ".join(categorised) + " |",
            "|" + "---|" * (len(categorised) + 1),
        ]
        for model in order:
            cells = [_cell(summary, model, c) for c in categorised]
            lines.append("| " + " | ".join([_label(model), *cells]) + " |")

    comparison = board.comparison()
    if comparison is not None and comparison["n"] > 0:
        c = comparison
        lines += [
            "",
            f"Paired comparison ({c['kind']}), {c['metric']}: **{c['a']}** − **{c['b']}** = "
            f"{_fmt(c['mean_diff'])} [95% CI {_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}] over "
            f"{_count(c['n'], 'paired ' + c['unit'])}; {c['a']} better on "
            f"{c['share_a_better']:.0%}, "
            f"{c['b']} on {c['share_b_better']:.0%}. {_small_n(c)}".rstrip(),
        ]
    peer_rows = [c for c in board.peer_comparisons() if c["n"] > 0]
    if peer_rows:
        lines += [
            "",
            "Paired comparisons (celltwin's best learned model vs each peer; difference = learned "
            "− peer, 95% bootstrap CI; with few units, also Student's t 95% CI and the Wilcoxon "
            "signed-rank p):",
            "",
            "| learned − peer | metric | difference [95% CI] | paired | learned better | "
            "peer better | t 95% CI | Wilcoxon p |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in peer_rows:
            arrow = "↑" if higher_is_better(c["metric"]) else "↓"
            lines.append(
                f"| {c['a']} − {c['b']} | {c['metric']} {arrow} | {_fmt(c['mean_diff'])} "
                f"[{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}] | {_count(c['n'], c['unit'])} | "
                f"{c['share_a_better']:.0%} | {c['share_b_better']:.0%} | "
                f"[{_fmt(c['t_low'])}, {_fmt(c['t_high'])}] | {_fmt(c['wilcoxon_p'])} |"
            )

    timing = board.timings
    if len(timing):
        lines += [
            "",
            "| model | status | fit+predict wall s (sum over folds) | CPU s | peak Δ memory MB (max) |",
            "|---|---|---|---|---|",
        ]
        for model, group in timing.groupby("model", sort=True):
            statuses = ", ".join(sorted(set(group["status"].astype(str))))
            total = group["total_s"].astype(float)
            delta = group["peak_delta_mb"].astype(float)
            cpu = group["cpu_s"].astype(float)
            seconds = f"{float(total.sum()):.1f}" if total.notna().any() else "n/a"
            cpu_text = f"{float(cpu.sum()):.1f}" if cpu.notna().any() else "n/a"
            memory = f"{float(delta.max()):.0f}" if delta.notna().any() else "n/a"
            lines.append(f"| {model} | {statuses} | {seconds} | {cpu_text} | {memory} |")
        notes = timing[timing["status"].astype(str) != "ok"].drop_duplicates("model")
        for _, row in notes.iterrows():
            lines.append(f"\n- {row['model']}: {row['status']} — {row['reason']}")
    record = board.record.get("timings", {})
    if record.get("total_s") is not None:
        runs = board.record.get("merged_from") or board.record.get("averaged_from") or []
        combined = len(runs) > 1
        if combined:
            # Combined runs may have run side by side: their wall times do not add up.
            text = f"Wall time of the longest of the {len(runs)} combined runs: "
        else:
            text = "Wall time of the run: "
        text += f"{record['total_s']:.0f} s"
        if record.get("cpu_s") is not None:
            text += f" ({record['cpu_s']:.0f} CPU s" + (" over all of them" if combined else "")
            load = record.get("load_average_start")
            text += f"; load average at start {load[0]:.1f})." if load else ")."
        lines += ["", text]
    return "\n".join(lines) + "\n"


# --- html ----------------------------------------------------------------------------------------


def report_tables(board: Leaderboard) -> dict[str, dict[str, pd.DataFrame]]:
    """Per-model tables for :func:`celltwin.pl.render_report`, pooled over every fold.

    ``metrics``: the model's per-unit values with a ``fold`` column; ``summary``: mean, median
    and bootstrap CI over all units of all folds (role ``model``), and, in the first model's
    table, the split-half ceiling (role ``ceiling``); ``deltas``: predicted vs true changes on
    the top DE genes, from the evaluations. Baseline models are named ``<name> (baseline)``.
    """
    from ..eval import METRICS

    res = board.results
    res = res[res[PERTURBATION].fillna("").astype(str) != ""]
    metric_order = [m for m in board.metrics if m in set(res["metric"])]
    metric_order += sorted(set(res["metric"]) - set(metric_order))

    def summary_rows(frame: pd.DataFrame, source: str, tag: str) -> list[dict[str, Any]]:
        rows = []
        for metric in metric_order:
            values = frame.loc[frame["metric"] == metric, "value"].to_numpy(dtype=float)
            if values.size == 0:
                continue
            s = summarize(values, n_boot=N_BOOT, seed=board.seed)
            registered = METRICS.get(metric)
            rows.append(
                {
                    "source": source,
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
        rows = summary_rows(mine, "model", "model")
        if not out and not ceiling.empty:
            rows += summary_rows(ceiling, "ceiling", "ceiling")
        metrics = mine.loc[:, [CONTEXT, PERTURBATION, "fold", "metric", "value"]]
        tables = {"metrics": metrics.reset_index(drop=True), "summary": pd.DataFrame(rows)}
        if model in deltas:
            tables["deltas"] = pd.concat(deltas[model], ignore_index=True)
        out[_label(model).strip("*")] = tables
    return out


def report_html(board: Leaderboard) -> str:
    """The suite's HTML report: models side by side (95% CIs), the ceiling, notes."""
    from ..pl._report import render_report

    models = report_tables(board)
    notes = [
        board.description,
        f"{board.table['fold'].nunique()} folds; values pooled over the units of every fold "
        "(the leaderboard averages per fold first). Baseline models are marked (baseline), "
        "other groups' models run through their own packages (peer); "
        "the ceiling is real data predicting itself (split halves).",
    ]
    issues = board.timings[~board.timings["status"].astype(str).isin(["ok", "nan"])]
    for (model, status), group in issues.groupby(["model", "status"], sort=True):
        folds = ", ".join(map(str, group["fold"]))
        notes.append(
            f"{model}: {status} in {len(group)} fold(s) ({folds}) — {group['reason'].iloc[0]}"
        )
    if not models:
        return (
            "<!DOCTYPE html><html><body><h1>"
            f"{board.suite}</h1><p>No model produced results.</p></body></html>"
        )
    return render_report(
        models, title=f"celltwin benchmark: {board.suite} (v{board.version})", notes=notes
    )
