"""Issue 18, combinations: do the most interacting predicted pairs hold the true interactions?

The world of the ``sim-combinations`` suite (:func:`celltwin.simulate.simulate`: 200 genes,
20 TFs, 16 knockouts, 24 pairs, 500 cells per condition, one context), its folds
(:func:`celltwin.split.split_combinations` with the suite's fractions, seed = fold), one
world per ``--worlds`` seed. Each model is fitted on a fold's training cells; the fold's
held-out pairs are ranked by :func:`celltwin.screen.interactions` (``score``, the residual from
additivity relative to the additive norm). A pair *truly interacts* when the simulator's
true interaction (:attr:`Simulation.interactions`) is at least ``--threshold`` (5%) of the norm
of its true additive expectation. Reported: AUROC of the score for the true interactions
over every held-out (fold, pair) row pooled over worlds, with a 95% bootstrap CI
(:func:`celltwin.eval.bootstrap_ci` of each interacting row's share of non-interacting rows
ranked below it, i.e. the AUROC's mean over positives), and Spearman of the score with the
true relative interaction. ``observed`` is the same ranking from the held-out pairs' measured
cells (what the experiment itself gives: the ceiling). ``additive`` predicts every pair as the
sum of its singles, so its score is 0 for all and its AUROC 0.5 by construction.

    nice -n 10 python benchmarks/screen_combinations.py --worlds 0 1 2 --folds 5 \
        --out /tmp/screen_combinations.csv
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from celltwin._keys import CONTROL, PERTURBATION, split_combination
from celltwin.eval import bootstrap_ci
from celltwin.models import get_model
from celltwin.screen import interactions, observed_interactions
from celltwin.simulate import simulate
from celltwin.split import split_combinations


def _world(seed: int, cells: int):
    return simulate(n_genes=200, n_tfs=20, contexts=("A",), n_perturbations=16,
                    combinations=24, cells_per_condition=cells, seed=seed)  # fmt: skip


def _truth(sim) -> pd.Series:
    """True ||interaction|| / ||additive expectation|| per pair."""
    eff = pd.DataFrame(np.asarray(sim.effects.X), index=sim.effects.obs[PERTURBATION].astype(str))
    out = {}
    for pair, row in zip(
        sim.interactions.obs[PERTURBATION].astype(str), sim.interactions.X, strict=True
    ):
        a, b = split_combination(pair)
        out[pair] = np.linalg.norm(row) / np.linalg.norm(eff.loc[a] + eff.loc[b])
    return pd.Series(out)


def _fold(sim, fold: int, models: dict[str, dict]) -> pd.DataFrame:
    adata = sim.adata.copy()
    split_combinations(adata, test_single_fraction=0.25, test_seen2_fraction=0.25,
                       val_fraction=0.0, seed=fold)  # fmt: skip
    test = adata.obs[adata.obs["split"] == "test"]
    cats = test.drop_duplicates(PERTURBATION).set_index(PERTURBATION)["split_category"]
    pairs = [p for p in cats.index.astype(str) if len(split_combination(p)) == 2]
    train = adata[adata.obs["split"] == "train"].copy()
    controls = adata[adata.obs[PERTURBATION] == CONTROL].copy()
    frames = []
    for name, params in models.items():
        t0 = time.time()
        model = get_model(name, **params).fit(train)
        # additive refuses pairs with a held-out single: it ranks the combo_seen2 pairs only.
        asked = pairs if name != "additive" else [p for p in pairs if cats[p] == "combo_seen2"]
        table = interactions(model, controls, pairs=asked, context="A", method="ols")
        table["model"], table["seconds"] = name, time.time() - t0
        frames.append(table)
    observed = observed_interactions(adata, context="A", pairs=pairs, method="ols")
    observed["model"], observed["seconds"] = "observed", 0.0
    frames.append(observed)
    out = pd.concat(frames, ignore_index=True)
    out["fold"] = fold
    out["category"] = out["pair"].map(cats)
    return out


def _auroc(score: np.ndarray, label: np.ndarray) -> tuple[float, float, float, float, float]:
    """AUROC (ties count one half), the CI of :func:`celltwin.eval.bootstrap_ci` over each
    interacting row's placement (its share of non-interacting rows ranked below it: the AUROC
    is their mean; the non-interacting rows held fixed), and a stratified bootstrap CI that
    resamples both classes."""
    pos, neg = score[label], score[~label]
    if pos.size == 0 or neg.size == 0:
        return (np.nan,) * 5
    wins = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    low, high = bootstrap_ci(wins.mean(axis=1), seed=0)
    rng = np.random.default_rng(0)
    boots = [
        wins[
            np.ix_(rng.integers(0, pos.size, pos.size), rng.integers(0, neg.size, neg.size))
        ].mean()
        for _ in range(2000)
    ]
    s_low, s_high = np.percentile(boots, [2.5, 97.5])
    return float(wins.mean()), low, high, float(s_low), float(s_high)


def summarize(rows: pd.DataFrame, threshold: float) -> pd.DataFrame:
    # A reference ranking with no interaction in it: the size of the pair's additive
    # expectation (transition's), since the simulator's strong pairs interact more.
    size = rows[rows["model"] == "transition"].assign(model="size ||A+B||")
    rows = pd.concat([rows, size.assign(score=size["norm_additive"])], ignore_index=True)
    subsets = {"all held-out pairs": rows, "combo_seen2": rows[rows["category"] == "combo_seen2"]}
    out = []
    for subset, part in subsets.items():
        for (model, world), grp in [
            *((k, g) for k, g in part.assign(w="pooled").groupby(["model", "w"])),
            *part.groupby(["model", "world"]),
        ]:
            label = grp["true_relative"].to_numpy() >= threshold
            auc, low, high, s_low, s_high = _auroc(grp["score"].to_numpy(float), label)
            const = grp["score"].nunique() < 2
            rho = np.nan if const else spearmanr(grp["score"], grp["true_relative"]).statistic
            out.append({"model": model, "subset": subset, "world": world, "rows": len(grp),
                        "pairs": grp["pair"].nunique(), "interacting": int(label.sum()),
                        "auroc": auc, "ci_low": low, "ci_high": high, "strat_low": s_low,
                        "strat_high": s_high, "spearman": rho,
                        "fit_seconds": grp.groupby(["world", "fold"])["seconds"].first().mean()})  # fmt: skip
    return pd.DataFrame(out)


def _classes(rows: pd.DataFrame) -> None:
    print("\nclasses (transition vs observed, same rows):")
    both = rows[rows["model"] == "transition"].merge(
        rows[rows["model"] == "observed"], on=["world", "fold", "pair"], suffixes=("", "_obs")
    )
    print(pd.crosstab(both["gi_class"], both["gi_class_obs"]))


# --- Norman 2019 subset -------------------------------------------------------------------------

#: Measures compared, as (this table's column, the paper's column in norman2019_gi_labels.csv).
PAPER = {"magnitude": "ts_norm", "model_fit": "corr_fit", "dcor": "dcor", "c1": "ts_coef_first",
         "c2": "ts_coef_second", "dcor_singles": "dcor_singles"}  # fmt: skip


def _spearman_ci(x: np.ndarray, y: np.ndarray, n_boot: int = 2000) -> tuple[float, float, float]:
    """Spearman r and a percentile bootstrap CI over the rows (NaN when < 3 rows)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3:
        return (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, x.size, x.size)
        if np.unique(x[i]).size > 1 and np.unique(y[i]).size > 1:
            boots.append(spearmanr(x[i], y[i]).statistic)
    low, high = np.nanpercentile(boots, [2.5, 97.5])
    return float(spearmanr(x, y).statistic), float(low), float(high)


def _paper(labels: pd.DataFrame) -> pd.DataFrame:
    """The paper's fits by canonical pair label, coefficients in this table's (sorted) order."""
    rows = {}
    for key, row in labels.iterrows():
        name = str(row["name"]) if "_" in str(row["name"]) else str(key)  # 2 rows lack a name
        first, second = name.split("_")
        values = {ours: float(row[theirs]) for ours, theirs in PAPER.items()}
        if first > second:  # the paper's first single is our second
            values["c1"], values["c2"] = values["c2"], values["c1"]
        values["gi_class"] = row["gears_gi_class"] if isinstance(row["gears_gi_class"], str) else ""
        rows["+".join(sorted([first, second]))] = values
    return pd.DataFrame(rows).T


def _norman_splits(adata, design: str, folds: int):
    """(fold, split labels): the suite's GEARS folds, or one pair out at a time (``lopo``)."""
    pairs = sorted(p for p in set(adata.obs[PERTURBATION].astype(str)) if "+" in p)
    for fold in range(len(pairs) if design == "lopo" else folds):
        ad = adata.copy()
        if design == "lopo":
            held = ad.obs[PERTURBATION].astype(str).to_numpy() == pairs[fold]
            ad.obs["split"] = np.where(held, "test", "train")
        else:
            split_combinations(ad, test_single_fraction=0.2, test_seen2_fraction=0.4,
                               val_fraction=0.0, seed=fold)  # fmt: skip
        yield fold, ad


def run_norman(*, folds: int, members: int, steps: int, out: str, design: str) -> None:
    """Held-out pairs predicted; their measures against the observed ones and the paper's."""
    from celltwin.data import load

    adata = load("norman2019_subset", progress=False)
    paper = _paper(adata.uns["gi_labels"])
    observed = observed_interactions(adata, context="K562")
    frames = [observed.assign(model="observed", fold=-1)]
    for fold, ad in _norman_splits(adata, design, folds):
        test = ad.obs[ad.obs["split"] == "test"].drop_duplicates(PERTURBATION)
        pairs = [p for p in test[PERTURBATION].astype(str) if len(split_combination(p)) == 2]
        train = ad[ad.obs["split"] == "train"].copy()
        trained = set(train.obs[PERTURBATION].astype(str))
        controls = ad[ad.obs[PERTURBATION] == CONTROL].copy()
        for name, params in (("transition", {"n_members": members, "max_steps": steps,
                                             "progress": False}), ("additive", {})):  # fmt: skip
            asked = pairs if name != "additive" else [
                p for p in pairs if set(split_combination(p)) <= trained]  # fmt: skip
            if not asked:
                continue
            model = get_model(name, **params).fit(train)
            table = interactions(model, controls, pairs=asked, context="K562")
            frames.append(table.assign(model=name, fold=fold))
        print(f"fold {fold}: {len(pairs)} held-out pairs", flush=True)
    rows = pd.concat(frames, ignore_index=True)
    rows.to_csv(out, index=False)
    _norman_report(rows, paper)


def _norman_report(rows: pd.DataFrame, paper: pd.DataFrame) -> None:
    observed = rows[rows["model"] == "observed"].set_index("pair")
    print("observed (5 pairs with both singles measured):")
    print(observed[["score", "magnitude", "model_fit", "c1", "c2", "gi_class"]].round(3))
    out = []
    for model in ("transition", "additive", "observed"):
        pred = rows[rows["model"] == model]
        for ref_name, ref in (("observed", observed), ("paper", paper)):
            if model == ref_name:
                continue
            both = pred[pred["pair"].isin(ref.index)]
            if both.empty:
                continue
            for m in ("magnitude", "model_fit", "c1", "c2", "dcor"):
                r, lo, hi = _spearman_ci(both[m].to_numpy(float),
                                         ref.loc[both["pair"], m].to_numpy(float))  # fmt: skip
                out.append({"model": model, "against": ref_name, "measure": m, "rows": len(both),
                            "pairs": both["pair"].nunique(), "spearman": r, "ci_low": lo, "ci_high": hi})  # fmt: skip
            has = ref.loc[both["pair"], "gi_class"].astype(str).to_numpy() != ""
            agree = (
                both["gi_class"].to_numpy()[has]
                == ref.loc[both["pair"], "gi_class"].to_numpy()[has]
            )
            out.append({"model": model, "against": ref_name, "measure": "class agreement",
                        "rows": int(has.sum()), "pairs": both["pair"][has].nunique(),
                        "spearman": float(agree.mean()) if has.any() else np.nan})  # fmt: skip
    print(pd.DataFrame(out).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for model in ("transition", "additive"):
        pred = rows[rows["model"] == model]
        lab = pred[pred["pair"].isin(paper.index)]
        lab = lab[paper.loc[lab["pair"], "gi_class"].to_numpy() != ""]
        print(f"\n{model} class vs the paper's GEARS class (rows):")
        print(pd.crosstab(lab["gi_class"], paper.loc[lab["pair"], "gi_class"].to_numpy()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("world", choices=["sim", "norman"], nargs="?", default="sim")
    parser.add_argument("--worlds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cells", type=int, default=500)
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", default="/tmp/screen_combinations.csv")
    parser.add_argument("--from-csv", help="sim: summarise the rows of an earlier run")
    parser.add_argument("--design", choices=["folds", "lopo"], default="folds",
                        help="norman: the suite's folds or leave one pair out")  # fmt: skip
    args = parser.parse_args()
    if args.from_csv:
        _report(pd.read_csv(args.from_csv), args)
        return
    if args.world == "norman":
        run_norman(folds=args.folds, members=args.members, steps=args.steps, out=args.out,
                   design=args.design)  # fmt: skip
        return
    models = {
        "transition": {"n_members": args.members, "max_steps": args.steps, "progress": False},
        "additive": {},
    }
    frames = []
    for world in args.worlds:
        sim = _world(world, args.cells)
        truth = _truth(sim)
        for fold in range(args.folds):
            rows = _fold(sim, fold, models)
            rows["world"] = world
            rows["true_relative"] = rows["pair"].map(truth)
            frames.append(rows)
            print(f"world {world} fold {fold}: {rows['pair'].nunique()} pairs", flush=True)
        pd.concat(frames).to_csv(args.out, index=False)
    _report(pd.concat(frames, ignore_index=True), args)


def _report(rows: pd.DataFrame, args: argparse.Namespace) -> None:
    summary = summarize(rows, args.threshold)
    summary.to_csv(args.out.replace(".csv", "_summary.csv"), index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    _classes(rows)


if __name__ == "__main__":
    main()
