"""Issue 18, dose-response: predicted Hill curves of held-out drugs against the measured ones.

Data: the ``lincs-doses`` suite's plate (LINCS L1000 LJP005, A375, 55 kinase inhibitors at six
doses 0.04-10 uM, one well each, robust z-scores against the plate over 978 landmark genes).
Folds: the suite's ``new_drug/fold0..4`` (every dose of a fifth of the drugs with a structure
hidden; drug features are Morgan fingerprints) and ``extrapolation`` (each drug's highest dose
hidden). Each dose-signature model (:data:`celltwin.models.DOSE_MODELS`) is fitted on the
fold's training wells and :func:`celltwin.screen.dose_response` predicts the hidden drugs'
whole grid (their six doses) and fits a Hill curve per feature. The same fit on the measured
wells is the truth.

Features per drug: PROGENy pathway scores (the pathways with >= 10 of their top-1000 genes among
the landmarks; weighted mean of z-scores) and the drug's 10 genes of largest measured |z|.
A response is *measurable* when the feature moves by more than ``k`` (default 3) times its
standard deviation over the 26 DMSO wells at some dose and the Hill fit gives an EC50
(``status == "ok"``: monotone enough, R^2 >= 0.5, EC50 within the grid).

Reported: how many drugs have a measurable response at all (measured, predicted); over the
(drug, feature) rows with both EC50s, Spearman of log EC50 and the median |log10| ratio; over
all rows, Spearman of ``top``; agreement of the measurable/not call; with bootstrap CIs.

    nice -n 10 python benchmarks/screen_dose.py --models dose_response,mean_other_drugs \
        --out /tmp/screen_dose.csv
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from celltwin._keys import CONTROL, DOSE, PERTURBATION
from celltwin.benchmark._suites._lincs import DATASET, drug_features, held_out, plate
from celltwin.data import load
from celltwin.eval import bootstrap_ci
from celltwin.models import DOSE_MODELS
from celltwin.priors import read_progeny
from celltwin.screen import dose_response, fit_hill


def _pathways(genes: pd.Index) -> pd.DataFrame:
    table = read_progeny(top=1000)
    table = table[table["gene"].isin(genes)]
    keep = table.groupby("pathway")["gene"].size()
    return table[table["pathway"].isin(keep[keep >= 10].index)]


def _scores(x: np.ndarray, genes: pd.Index, pathways: pd.DataFrame) -> pd.DataFrame:
    """Pathway scores of rows ``x`` as dose_response computes them (weighted mean)."""
    out = {}
    for name, grp in pathways.groupby("pathway"):
        w = grp["weight"].to_numpy(float)
        out[name] = x[:, genes.get_indexer(grp["gene"])] @ w / np.abs(w).sum()
    return pd.DataFrame(out)


def _features(wells: pd.DataFrame, n_genes: int) -> list[str]:
    return list(wells.abs().max(axis=0).sort_values(ascending=False).index[:n_genes])


def _measured(drug_wells, genes, pathways, noise, k: float, n_genes: int) -> pd.DataFrame:
    """Hill fits of a drug's measured wells per feature (its top genes, every pathway)."""
    doses = drug_wells.obs[DOSE].to_numpy(float)
    x = np.asarray(drug_wells.X, dtype=np.float64)
    tables = {"gene": pd.DataFrame(x, columns=genes), "pathway": _scores(x, genes, pathways)}
    chosen = {"gene": _features(tables["gene"], n_genes), "pathway": list(tables["pathway"])}
    rows = []
    for kind, features in chosen.items():
        for f in features:
            y = tables[kind][f].to_numpy()
            fit = fit_hill(doses, y, min_effect=k * noise[kind][f], n_samples=0)
            rows.append({"feature": f, "kind": kind, **fit.to_dict()})
    return pd.DataFrame(rows)


def _predicted(model, drug, doses, genes, pathways) -> pd.DataFrame:
    """Hill fits of the predicted grid. No ``flat`` call (``min_effect`` 0): the learned model's
    rows may be rank-transformed (values in [-1, 1], not z-scores), so the DMSO noise floor of
    the measured wells does not apply; EC50s and the ranks of ``top`` compare all the same."""
    frames = []
    for kind, kw in (("gene", {"genes": genes}), ("pathway", {"genes": [], "pathways": pathways})):
        result = dose_response(model, None, drug=drug, doses=doses, min_effect=0.0,
                               n_samples=0, **kw)  # fmt: skip
        frames.append(result.fits[result.fits["kind"] == kind])
    return pd.concat(frames, ignore_index=True)


def run(models: list[str], folds: list[str], k: float, n_genes: int) -> pd.DataFrame:
    wells = plate()
    genes = pd.Index(wells.var_names)
    pathways = _pathways(genes)
    full = load(DATASET, progress=False)
    dmso = np.asarray(full[full.obs[PERTURBATION].astype(str) == CONTROL].X, dtype=np.float64)
    noise = {
        "gene": pd.Series(dmso.std(axis=0), index=genes),
        "pathway": _scores(dmso, genes, pathways).std(axis=0),
    }
    rows = []
    for fold in folds:
        hidden = held_out(wells, fold)
        train = wells[~hidden]
        drugs = sorted(set(wells.obs.loc[hidden, PERTURBATION].astype(str)))
        fitted = {m: DOSE_MODELS[m]().fit(train, features=drug_features()) for m in models}
        for drug in drugs:
            own = wells[wells.obs[PERTURBATION].astype(str) == drug]
            own = own[np.argsort(own.obs[DOSE].to_numpy(float))]
            truth = _measured(own, genes, pathways, noise, k, n_genes)
            truth["model"] = "measured"
            frames = [truth]
            for name, model in fitted.items():
                top = list(truth.loc[truth["kind"] == "gene", "feature"])
                pred = _predicted(model, drug, own.obs[DOSE].to_numpy(float), top, pathways)
                frames.append(pred.assign(model=name))
            table = pd.concat(frames, ignore_index=True)
            rows.append(table.assign(fold=fold, task=fold.partition("/")[0], drug=drug))
        print(f"{fold}: {len(drugs)} drugs", flush=True)
    return pd.concat(rows, ignore_index=True)


def _ci(values: np.ndarray) -> str:
    low, high = bootstrap_ci(values, seed=0)
    return f"{np.nanmean(values):.3f} [{low:.3f}, {high:.3f}]"


def _rank_ci(x: np.ndarray, y: np.ndarray, n_boot: int = 2000) -> str:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 4:
        return f"n={x.size}"
    rng = np.random.default_rng(0)
    boots = [spearmanr(x[i], y[i]).statistic for i in rng.integers(0, x.size, (n_boot, x.size))]
    low, high = np.nanpercentile(boots, [2.5, 97.5])
    return f"{spearmanr(x, y).statistic:.3f} [{low:.3f}, {high:.3f}] (n={x.size})"


def report(rows: pd.DataFrame) -> pd.DataFrame:
    # An EC50 below the lowest dose (0.04 uM) is no EC50: the response is saturated at every
    # dose (fit_hill calls it ``below_range``; rows of runs before that status are recoded).
    rows = rows.copy()
    low = (rows["status"] == "ok") & (rows["ec50"].astype(float) < 0.04)
    rows.loc[low, "status"] = "below_range"
    key = ["task", "fold", "drug", "feature", "kind"]
    truth = rows[rows["model"] == "measured"].set_index(key)
    out = []
    for (task, model, kind), grp in rows[rows["model"] != "measured"].groupby(
        ["task", "model", "kind"]
    ):
        pred = grp.set_index(key)
        t = truth.loc[pred.index]
        ok_t, ok_p = (t["status"] == "ok").to_numpy(), (pred["status"] == "ok").to_numpy()
        both = ok_t & ok_p
        ratio = np.abs(
            np.log10(pred["ec50"].to_numpy(float)[both] / t["ec50"].to_numpy(float)[both])
        )
        out.append({
            "task": task, "model": model, "kind": kind, "rows": len(pred),
            "drugs": pred.index.get_level_values("drug").nunique(),
            "drugs measurable (measured)": t[ok_t].index.get_level_values("drug").nunique(),
            "drugs measurable (predicted)": pred[ok_p].index.get_level_values("drug").nunique(),
            "rows ok measured/predicted/both": f"{ok_t.sum()}/{ok_p.sum()}/{both.sum()}",
            "call agreement": _ci((ok_t == ok_p).astype(float)),
            "spearman log EC50": _rank_ci(np.log10(pred["ec50"].to_numpy(float)[both]),
                                          np.log10(t["ec50"].to_numpy(float)[both])),
            "median |log10 EC50 ratio|": float(np.median(ratio)) if ratio.size else np.nan,
            "spearman top": _rank_ci(pred["top"].to_numpy(float), t["top"].to_numpy(float)),
        })  # fmt: skip
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="dose_response,mean_other_drugs")
    parser.add_argument("--folds", default="new_drug/fold0,new_drug/fold1,new_drug/fold2,"
                        "new_drug/fold3,new_drug/fold4,extrapolation")  # fmt: skip
    parser.add_argument("--k", type=float, default=3.0)
    parser.add_argument("--genes", type=int, default=10)
    parser.add_argument("--out", default="/tmp/screen_dose.csv")
    parser.add_argument("--from-csv", help="summarise the rows of an earlier run")
    args = parser.parse_args()
    if args.from_csv:
        rows = pd.read_csv(args.from_csv)
    else:
        rows = run(args.models.split(","), args.folds.split(","), args.k, args.genes)
        rows.to_csv(args.out, index=False)
    summary = report(rows)
    summary.to_csv(args.out.replace(".csv", "_summary.csv"), index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(summary.T.to_string())


if __name__ == "__main__":
    main()
