"""``transition``'s in-domain score and interval coverage on unseen knockouts (Papalexi 2021).

For each fold of ``papalexi2021-heldout-ko`` (5 folds of held-out THP-1 knockouts) ``transition``
is fitted on the fold's training cells with the suite's settings (GO+STRING features of the
targets), and its effect intervals (:meth:`TransitionModel.predict_effects`) are scored on the
held-out knockouts: the share of genes whose true effect (held-out cells' mean minus the
controls' mean) lies inside the interval, per condition, per fold and pooled; and the Spearman
correlation of the in-domain score (obs ``in_domain``) with each condition's error (RMSE over
genes of predicted minus true effect; secondary: the RMSE relative to the true effect's RMS, and
the Pearson r of predicted and true effect), with a bootstrap 95% CI over conditions and, over the
per-fold correlations, a Student's t 95% CI. Knockouts the model refuses (no prior features)
are listed.

    nice -n 10 .venv/bin/python benchmarks/domain_papalexi.py [--folds fold0 ...] > out.md

``--suite kang2018-heldout-celltype`` runs the same on another cell suite (there the score
comes from the context distances: one condition per fold).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import stats

from celltwin._keys import CONTEXT, CONTROL, IN_DOMAIN, PERTURBATION
from celltwin.benchmark import get_suite
from celltwin.eval import interval_coverage
from celltwin.models import UnseenConditionError

SUITE = "papalexi2021-heldout-ko"
N_BOOT = 2000


def dense(x: object) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)  # type: ignore[union-attr]


def run_fold(
    fold: str, params: dict[str, object], suite: str = SUITE
) -> tuple[pd.DataFrame, dict[str, float]]:
    """One row per held-out condition: score, error, coverage; and the model's fitted slope."""
    task = get_suite(suite).task
    data = task.fold_data(fold)
    model = task.make_model(
        "transition", seed=0, params={**task.model_params("transition", {}), **params}
    )
    start = time.monotonic()
    model.fit(data.train, **task.model_fit_kwargs("transition", data, {}))
    fit_s = time.monotonic() - start
    truth_pert = data.truth.obs[PERTURBATION].astype(str).to_numpy()
    truth_ctx = data.truth.obs[CONTEXT].astype(str).to_numpy()
    x = dense(data.truth.X)
    rows = []
    for _, cond in data.conditions.iterrows():
        query = [(cond[CONTEXT], cond[PERTURBATION])]
        try:
            pred = model.predict_effects(data.query, conditions=query)
        except UnseenConditionError:
            rows.append({"fold": fold, "perturbation": cond[PERTURBATION], "refused": True})
            continue
        in_context = truth_ctx == cond[CONTEXT]
        control = x[in_context & (truth_pert == CONTROL)].mean(axis=0)
        true = x[in_context & (truth_pert == cond[PERTURBATION])].mean(axis=0) - control
        effect = np.asarray(pred.X[0], dtype=np.float64)
        cover = interval_coverage(
            true, lower=pred.layers["lower"][0], upper=pred.layers["upper"][0]
        )
        rows.append(
            {
                "fold": fold,
                "context": cond[CONTEXT],
                "perturbation": cond[PERTURBATION],
                "refused": False,
                "in_domain": float(pred.obs[IN_DOMAIN].iloc[0]),
                "rmse": float(np.sqrt(np.mean((effect - true) ** 2))),
                "true_norm": float(np.sqrt(np.mean(true**2))),
                "relative_rmse": float(np.sqrt(np.mean((effect - true) ** 2) / np.mean(true**2))),
                "pearson": float(np.corrcoef(effect, true)[0, 1]),
                "coverage": float(cover[0]),
                "half_width": float(np.mean(pred.layers["upper"][0] - pred.layers["lower"][0]) / 2),
            }
        )
    info = {"slope": float(model.domain_["slope"]), "q": float(model.calibration_), "fit_s": fit_s}
    return pd.DataFrame(rows), info


def spearman_ci(table: pd.DataFrame, column: str, seed: int = 0) -> tuple[float, float, float]:
    """Spearman of in-domain score with ``column``, bootstrap 95% CI over conditions."""
    rho = float(stats.spearmanr(table["in_domain"], table[column]).statistic)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(N_BOOT):
        sample = table.iloc[rng.integers(0, len(table), len(table))]
        if sample["in_domain"].nunique() > 1:
            boots.append(stats.spearmanr(sample["in_domain"], sample[column]).statistic)
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return rho, float(lo), float(hi)


def t_ci(values: np.ndarray) -> tuple[float, float, float]:
    values = values[np.isfinite(values)]
    mean = float(values.mean())
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def report(table: pd.DataFrame, infos: dict[str, dict[str, float]], nominal: float) -> str:
    ok = table[~table["refused"]]
    lines = [
        f"Nominal coverage {nominal:.2f}.\n",
        "| fold | knockouts | coverage | mean in_domain | slope | q | fit s |",
        "|---|---|---|---|---|---|---|",
    ]
    for fold, part in ok.groupby("fold"):
        info = infos[str(fold)]
        lines.append(
            f"| {fold} | {len(part)} | {part['coverage'].mean():.3f} | {part['in_domain'].mean():.3f} "
            f"| {info['slope']:.3f} | {info['q']:.3f} | {info['fit_s']:.0f} |"
        )
    per_fold = ok.groupby("fold")["coverage"].mean().to_numpy()
    mean, lo, hi = t_ci(per_fold)
    lines.append(
        f"| pooled | {len(ok)} | {ok['coverage'].mean():.3f} | {ok['in_domain'].mean():.3f} | | | |\n"
    )
    lines.append(f"Coverage, mean over folds: {mean:.3f} (t 95% CI [{lo:.3f}, {hi:.3f}]).\n")
    for column in ("rmse", "relative_rmse", "pearson", "coverage", "true_norm"):
        rho, lo, hi = spearman_ci(ok, column)
        lines.append(
            f"Spearman(in_domain, {column}) over {len(ok)} knockouts: {rho:.3f} [bootstrap 95% CI {lo:.3f}, {hi:.3f}]"
        )
    fold_rho = np.array(
        [
            stats.spearmanr(p["in_domain"], p["rmse"]).statistic if len(p) > 2 else np.nan
            for _, p in ok.groupby("fold")
        ]
    )
    if np.isfinite(fold_rho).sum() >= 2:
        mean, lo, hi = t_ci(fold_rho)
        lines.append(
            f"\nSpearman(in_domain, rmse) within folds, mean of {np.isfinite(fold_rho).sum()}: "
            f"{mean:.3f} (t 95% CI [{lo:.3f}, {hi:.3f}])\n"
        )
    low = ok["in_domain"] <= ok["in_domain"].median()
    lines.append(
        f"Coverage of the lower half of scores: {ok.loc[low, 'coverage'].mean():.3f}; upper half: "
        f"{ok.loc[~low, 'coverage'].mean():.3f}. Refused: {sorted(table.loc[table['refused'], 'perturbation'])}\n"
    )
    lines.append(ok.round(3).to_markdown(index=False))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=SUITE, help=f"a cell suite (default {SUITE})")
    parser.add_argument("--folds", nargs="*", default=None)
    args = parser.parse_args()
    folds = args.folds or get_suite(args.suite).task.folds()
    tables, infos = [], {}
    for fold in folds:
        table, info = run_fold(fold, {"progress": False}, args.suite)
        tables.append(table)
        infos[fold] = info
    print(report(pd.concat(tables, ignore_index=True), infos, nominal=0.9))


if __name__ == "__main__":
    main()
