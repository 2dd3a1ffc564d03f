"""Kang 2018: do the predicted IFN-beta responses carry the measured responses' regulators?

For every fold of ``kang2018-heldout-celltype`` (a held-out cell type), ``transition`` and
``context_shift`` are fitted on the fold's training cells (the suite's parameters) and predict the
held-out type's stimulated cells from its control cells. The predicted effect (mean of the
predicted cells minus the mean of the type's control cells) and the measured effect (the held-out
stimulated cells' mean minus the same controls' mean; truth only, never shown to a model) are
scored with :func:`celltwin.explain.activity` (DoRothEA A-C, ``ulm``) and compared with
:func:`celltwin.explain.activity_agreement`: Spearman over regulators with at least 10 measured
targets among the fold's 2,000 genes, and whether the measured top-5 regulators (most activated)
are in the predicted top-10. Also printed: what ``transition``'s prediction borrowed from
(:func:`celltwin.explain.sources`).

    PYTHONPATH=src .venv/bin/python benchmarks/explain_kang.py [--folds B,DC] [--out DIR] [--min-size 10]

With ``--expected 5,3`` it fits nothing: per fold it prints, for the measured effect only, the
ranks of the regulators biology expects (STAT1, STAT2, IRF9, IRF1) at those ``min_size`` values.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from celltwin._keys import CONTROL, PERTURBATION
from celltwin.benchmark import get_suite, predict_conditions
from celltwin.eval import bootstrap_ci, paired_comparison
from celltwin.explain import activity, activity_agreement, describe_sources, sources

SUITE = "kang2018-heldout-celltype"
MODELS = ("transition", "context_shift")
EXPECTED = ("STAT1", "STAT2", "IRF9", "IRF1")


def _mean(x) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(x.mean(axis=0)).ravel()


def fold_effects(fold: str) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, list[str]]:
    """Predicted effects per model, the measured effect and the transition sources' lines."""
    suite = get_suite(SUITE).task
    assert suite is not None
    data = suite.fold_data(fold)
    genes = list(map(str, data.genes))
    truth = data.truth
    is_ctrl = truth.obs[PERTURBATION].astype(str).to_numpy() == CONTROL
    control = _mean(truth.X[is_ctrl])
    measured = pd.DataFrame([_mean(truth.X[~is_ctrl]) - control], index=[fold], columns=genes)
    query_ctrl = _mean(data.query.X)
    predicted, lines = {}, []
    for name in MODELS:
        params = {
            **suite.model_params(name, {}),
            **({"progress": False} if name == "transition" else {}),
        }
        model = suite.make_model(name, seed=0, params=params)
        start = time.monotonic()
        model.fit(data.train)
        pred, refused = predict_conditions(model, data.query, conditions=data.conditions, seed=0)
        assert pred is not None and not refused, refused
        keep = pred.obs[PERTURBATION].astype(str).to_numpy() != CONTROL
        effect = _mean(pred.X[keep]) - query_ctrl
        predicted[name] = pd.DataFrame([effect], index=[fold], columns=genes)
        print(f"  {fold} {name}: fit+predict {time.monotonic() - start:.0f} s", flush=True)
        if name == "transition":
            table = sources(model, data.query, conditions=data.conditions, top=3)
            lines = list(describe_sources(table)) + [
                f"    {r.context} {r.kind} {r.weight:.3f}" for r in table.itertuples()
            ]
    return predicted, measured, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", default="", help="comma-separated folds (default: all 7)")
    parser.add_argument("--out", default="", help="folder for per-fold CSVs")
    parser.add_argument("--min-size", type=int, default=10, help="min measured targets")
    parser.add_argument("--expected", default="", help="min_size values: expected ranks only")
    args = parser.parse_args()
    folds = args.folds.split(",") if args.folds else get_suite(SUITE).folds()
    if args.expected:
        for fold in folds:
            expected_ranks(fold, [int(m) for m in args.expected.split(",")])
        return
    rows = []
    for fold in folds:
        predicted, measured, lines = fold_effects(fold)
        print("\n".join(lines), flush=True)
        act = activity(measured, min_size=args.min_size)
        ranks = act.scores.iloc[0].rank(ascending=False)
        where = {
            g: f"rank {int(ranks[g])}/{len(ranks)}" if g in ranks.index
            else f"dropped ({act.dropped.loc[g, 'measured']} measured targets)"
            for g in EXPECTED
        }  # fmt: skip
        print(f"  {fold} measured: expected regulators {where}", flush=True)
        for name, effect in predicted.items():
            table = activity_agreement(effect, measured, min_size=args.min_size)
            rows.append(table.assign(model=name, fold=fold).reset_index(drop=True))
            print(f"  {fold} {name}: {table.iloc[0].to_dict()}", flush=True)
    result = pd.concat(rows, ignore_index=True)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        result.to_csv(Path(args.out) / "kang_activity_agreement.csv", index=False)
    report(result)


def expected_ranks(fold: str, min_sizes: list[int]) -> None:
    """Ranks of the expected regulators in the measured effect's activities (no model)."""
    suite = get_suite(SUITE).task
    assert suite is not None
    data = suite.fold_data(fold)
    truth = data.truth
    is_ctrl = truth.obs[PERTURBATION].astype(str).to_numpy() == CONTROL
    effect = _mean(truth.X[~is_ctrl]) - _mean(truth.X[is_ctrl])
    measured = pd.DataFrame([effect], index=[fold], columns=list(map(str, data.genes)))
    for min_size in min_sizes:
        act = activity(measured, min_size=min_size)
        ranks = act.scores.iloc[0].rank(ascending=False)
        where = {g: int(ranks[g]) if g in ranks.index else "dropped" for g in EXPECTED}
        top = list(act.scores.iloc[0].sort_values(ascending=False).index[:5])
        print(f"| {fold} | {min_size} | {len(ranks)} | {where} | {', '.join(top)} |", flush=True)


def report(result: pd.DataFrame) -> None:
    cols = ["fold", "model", "spearman", "n_sources", "found", "measured_top", "predicted_top"]
    print("\n" + result[cols].to_markdown(index=False, floatfmt=".3f"))
    wide = result.pivot(index="fold", columns="model", values="spearman")
    print(
        "\n| model | mean Spearman | 95% bootstrap CI over folds | folds with all top-5 in top-10 |"
    )
    print("|---|---|---|---|")
    for name in MODELS:
        low, high = bootstrap_ci(wide[name].to_numpy())
        n_all = int(result.loc[result["model"] == name, "all_found"].sum())
        print(
            f"| {name} | {wide[name].mean():.3f} | [{low:.3f}, {high:.3f}] | {n_all} / {len(wide)} |"
        )
    cmp = paired_comparison(wide["transition"], wide["context_shift"], higher_is_better=True)
    print(
        f"\ntransition - context_shift: {cmp.mean_diff:+.3f} [{cmp.ci_low:.3f}, {cmp.ci_high:.3f}], "
        f"transition higher on {cmp.share_a_better * len(wide):.0f}/{len(wide)} folds, "
        f"Wilcoxon p = {cmp.wilcoxon_p:.3f}"
    )
    for name in ("measured", *MODELS):
        column = "measured_top" if name == "measured" else "predicted_top"
        sub = result if name == "measured" else result[result["model"] == name]
        tops = sub[column].str.split(", ")
        if name == "measured":
            tops = tops.iloc[:: len(MODELS)]
        counts = pd.Series([g for t in tops for g in t]).value_counts()
        seen = {g: int(counts.get(g, 0)) for g in EXPECTED}
        print(f"{name}: most frequent leaders {counts.head(8).to_dict()}; expected ones {seen}")


if __name__ == "__main__":
    main()
